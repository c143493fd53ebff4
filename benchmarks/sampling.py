"""Personas/s for 1,000,000 census-grounded personas across all states, and the load time.

"Load" is reading the shipped tables and raking the pooled seed to every state's targets (once
per run); the draw is the vectorized weighted sampling of whole people plus their attributes.

    .venv/bin/python benchmarks/sampling.py [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from personasim.census import tables
from personasim.cli.census import check_throughput


def main() -> None:
    """Time table loading, then raking + drawing 1,000,000 personas, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    seed_table, targets = tables.load_seed(), tables.load_targets()
    print(
        f"loading the shipped tables took {time.perf_counter() - started:.2f} s "
        f"({len(seed_table):,} seed persons)"
    )
    check_throughput(seed_table, targets, args.seed, print)


if __name__ == "__main__":
    main()
