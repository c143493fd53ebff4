"""What the one-writer lock costs: microseconds to take and release a directory's lock, and a
part committed with its number taken under the lock (``commit_part`` as it is) against the
same write without the lock (``write_atomic`` of the numbered path, what committing did before).

No model involved; everything in a temporary folder on the machine's temporary disk.

    .venv/bin/python benchmarks/lock.py [--repeats 2000] [--parts 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd


def lock_cycle(folder: Path, repeats: int) -> float:
    """Mean seconds of one take-and-release of ``folder``'s lock (first entry, not re-entrant)."""
    from personasim.core.lock import directory_lock

    start = time.perf_counter()
    for _ in range(repeats):
        with directory_lock(folder):
            pass
    return (time.perf_counter() - start) / repeats


def reentry(folder: Path, repeats: int) -> float:
    """Mean seconds of a nested (re-entrant) take-and-release while the lock is held."""
    from personasim.core.lock import directory_lock

    with directory_lock(folder):
        start = time.perf_counter()
        for _ in range(repeats):
            with directory_lock(folder):
                pass
        return (time.perf_counter() - start) / repeats


def commits(folder: Path, parts: int, locked: bool) -> float:
    """Mean seconds of committing one small part (100 rows), with or without the lock."""
    from personasim.core.parts import commit_part, next_part_number, part_name
    from personasim.core.tables import write_atomic

    frame = pd.DataFrame({"person_id": range(100), "answer": ["A"] * 100})
    start = time.perf_counter()
    for _ in range(parts):
        if locked:
            commit_part(frame, folder)
        else:
            write_atomic(frame, folder / part_name(next_part_number(folder)))
    return (time.perf_counter() - start) / parts


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--parts", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(
            f"take + release a lock: {lock_cycle(root / 'a', args.repeats) * 1e6:.0f} us "
            f"(mean of {args.repeats})"
        )
        print(f"re-entrant take + release: {reentry(root / 'b', args.repeats) * 1e6:.1f} us")
        bare = commits(root / "bare", args.parts, locked=False)
        locked = commits(root / "locked", args.parts, locked=True)
        print(
            f"commit a 100-row part: {locked * 1e3:.2f} ms with the lock, "
            f"{bare * 1e3:.2f} ms without (mean of {args.parts}; the folder grows to "
            f"{args.parts} parts)"
        )


if __name__ == "__main__":
    main()
