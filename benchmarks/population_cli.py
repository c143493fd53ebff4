"""End-to-end seconds of ``personasim population --states all --total 1000000``: cold vs cached.

Runs the real CLI in a subprocess three times against a fresh weights cache: the first run rakes
all 51 states and fills the cache; the next two read the raked weights from it. Prints wall time
and peak memory (RSS) per run.

    .venv/bin/python benchmarks/population_cli.py [--total 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(total: int, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one CLI run."""
    command = [
        sys.executable,
        "-m",
        "personasim.cli.main",
        "population",
        "--states",
        "all",
        "--total",
        str(total),
        "--out",
        str(out),
        "--quiet",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return seconds, peak


def main() -> None:
    """Time a cold and two cached runs of the population CLI and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PERSONASIM_WEIGHTS_CACHE": str(Path(folder) / "weights")}
        for label in ("cold (rakes 51 states)", "cached", "cached"):
            seconds, peak = run_once(args.total, Path(folder) / "population.parquet", env)
            print(
                f"{label:24} {args.total:,} personas in {seconds:5.2f} s "
                f"(peak RSS so far {peak:,.0f} MB)"
            )


if __name__ == "__main__":
    main()
