"""Start-up cost of the CLI and of ``import personasim``: wall seconds and heavy imports.

Each case runs in a fresh Python process, 5 times; the median wall time is printed with the
heavy modules (scipy, matplotlib, llama_cpp, pandas, pyarrow) the process had imported when it
exited. The population case uses a weights cache warmed by one uncounted run, so it measures
start-up plus a cached draw of 5 persons, not the raking.

    PYTHONPATH=src .venv/bin/python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("scipy", "matplotlib", "llama_cpp", "pandas", "pyarrow")

#: Runs ``personasim.cli.main.main(argv)`` (or only the import when argv is None) and writes the
#: heavy modules present at exit to the file named by the first argument.
PROBE = """
import atexit, json, sys
heavy, out, argv = {heavy!r}, sys.argv[1], json.loads(sys.argv[2])
atexit.register(lambda: open(out, "w").write(
    json.dumps(sorted(name for name in heavy if name in sys.modules))))
if argv is None:
    import personasim
else:
    from personasim.cli.main import main
    sys.exit(main(argv))
"""


def run_case(argv: list[str] | None, folder: Path, repeat: int) -> tuple[float, list[str]]:
    """Median wall seconds over ``repeat`` fresh processes, and the heavy modules imported."""
    modules = folder / "modules.json"
    command = [sys.executable, "-c", PROBE.format(heavy=HEAVY), str(modules), json.dumps(argv)]
    env = {**os.environ, "PERSONASIM_WEIGHTS_CACHE": str(folder / "weights")}
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), json.loads(modules.read_text())


def main() -> None:
    """Print the median start-up time and the heavy imports of each case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        population = [
            "population",
            "--states",
            "VT",
            "--per-state",
            "5",
            "--out",
            str(folder / "population.parquet"),
            "--quiet",
        ]
        cases: list[tuple[str, list[str] | None]] = [
            ("python -c 'import personasim'", None),
            ("personasim --help", ["--help"]),
            ("personasim population --help", ["population", "--help"]),
            ("personasim score --help", ["score", "--help"]),
            ("personasim population VT x5", population),
        ]
        run_case(population, folder, 1)  # warms the raked-weights cache
        print(f"median of {args.repeat} fresh processes (python {sys.version.split()[0]})")
        for label, argv in cases:
            seconds, heavy = run_case(argv, folder, args.repeat)
            print(f"{label:32} {seconds:6.3f} s   heavy imports: {', '.join(heavy) or '-'}")


if __name__ == "__main__":
    main()
