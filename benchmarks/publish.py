"""Publishing a stage table from its parts: seconds and peak memory, streamed vs all at once.

Writes ``--parts`` synthetic response parts (``--rows`` rows each, the columns of a responses
table with a list column of probabilities; no model involved) once, then, each in its own
subprocess so that the peak resident memory printed is that run's alone:

* ``streamed``: :func:`personasim.core.parts.publish` (one part at a time, ParquetWriter);
* ``at once``: every part read into one frame, then ``write_atomic`` (what publishing did before).

    .venv/bin/python benchmarks/publish.py [--parts 200] [--rows 10000]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_parts(folder: Path, parts: int, rows: int) -> None:
    """``parts`` response-like parts of ``rows`` rows each."""
    from personasim.core.parts import commit_part

    rng = np.random.default_rng(0)
    for number in range(parts):
        ids = np.arange(number * rows, (number + 1) * rows)
        probs = rng.dirichlet(np.ones(4), size=rows)
        commit_part(
            pd.DataFrame(
                {
                    "person_id": ids,
                    "tier": "descriptive",
                    "generator": "gen",
                    "simulator": "sim",
                    "question_id": [f"q{i % 20}" for i in ids],
                    "estimator": "logprobs",
                    "probs": list(probs),
                    "answer": "A",
                    "valid_mass": rng.random(rows),
                    "valid": True,
                    "invalid": 0,
                    "raw": '{"top": ["A", "B"]}' * 3,
                }
            ),
            folder,
            number,
        )


def child(mode: str, folder: Path, table: Path) -> None:
    """In the subprocess: publish ``folder`` into ``table``; print seconds and peak MB."""
    from personasim.core import parts
    from personasim.core.tables import write_atomic

    started = time.perf_counter()
    if mode == "streamed":
        parts.publish(folder, table)
    else:
        write_atomic(parts.read_parts(folder), table)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{mode:<9} {seconds:7.1f} s  peak RSS {peak:7.0f} MB  "
        f"table {table.stat().st_size / 1e6:.0f} MB"
    )


def main() -> None:
    """Write the parts once, then time each way of publishing them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=200)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "parts"
        make_parts(folder, args.parts, args.rows)
        print(f"{args.parts} parts x {args.rows} rows = {args.parts * args.rows:,} rows")
        for mode in ("streamed", "at once"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    mode,
                    str(folder),
                    str(Path(tmp) / f"{mode.replace(' ', '_')}.parquet"),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
