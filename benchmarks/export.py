"""Peak memory and seconds of ``personasim export`` for 1,000,000 personas (hf, parquet, jsonl).

Builds the input once: 1,000,000 census-drawn people (all states), their meta personas (the tier
that needs no model; each row holds the same columns as an LLM tier's) written as 10 Parquet
parts of 100,000 rows. Then runs the real CLI in a subprocess per format and prints its wall time
and peak RSS, beside the size of the input, so "bounded memory" can be read off directly.

    .venv/bin/python benchmarks/export.py [--persons 1000000] [--formats hf,parquet]
    .venv/bin/python benchmarks/export.py --input DIR   # reuse DIR/personas from an earlier build
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

PART = 100_000


def build_input(persons: int, folder: Path) -> Path:
    """Meta personas of ``persons`` people as Parquet parts under ``folder/personas``."""
    from personasim.census import sample_population
    from personasim.personas.generate import generate_personas

    population = sample_population("all", total=persons, seed=0)
    parts = folder / "personas"
    parts.mkdir()
    for start in range(0, persons, PART):
        chunk = population.iloc[start : start + PART]
        table = generate_personas(chunk, tiers=["meta"])
        table.to_parquet(parts / f"part-{start // PART:05d}.parquet", index=False)
    return parts


def _rows(parts: Path) -> int:
    """Rows of the input parts (from the Parquet footers)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in parts.glob("*.parquet"))


def run_export(parts: Path, out: Path, fmt: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``personasim export`` subprocess."""
    command = [
        sys.executable,
        "-m",
        "personasim.cli.main",
        "export",
        "--personas",
        str(parts),
        "--format",
        fmt,
        "--out",
        str(out),
    ]
    script = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, *command],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    return time.perf_counter() - started, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    """Build the input, export it in each format, print seconds and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--formats", default="hf,parquet,jsonl")
    parser.add_argument("--input", type=Path, default=None, help="keep/reuse the input here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        if args.input and (args.input / "personas").is_dir():
            parts = args.input / "personas"
        else:
            (args.input or Path(tmp)).mkdir(parents=True, exist_ok=True)
            parts = build_input(args.persons, args.input or Path(tmp))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"(building the input took {peak:,.0f} MB here; not part of the export)")
        size = sum(p.stat().st_size for p in parts.iterdir()) / 2**20
        print(
            f"input: {_rows(parts):,} meta personas in {len(list(parts.iterdir()))} parts, "
            f"{size:,.0f} MB on disk (built in {time.perf_counter() - started:.0f} s)"
        )
        for fmt in args.formats.split(","):
            seconds, peak = run_export(parts, Path(tmp) / f"out-{fmt}", fmt)
            written = (
                sum(p.stat().st_size for p in (Path(tmp) / f"out-{fmt}").rglob("*") if p.is_file())
                / 2**20
            )
            print(
                f"export --format {fmt:8} {seconds:6.1f} s, peak RSS {peak:6.0f} MB, "
                f"{written:,.0f} MB written"
            )


if __name__ == "__main__":
    main()
