"""Fidelity and speed of census-grounded populations (same as ``personasim population check``).

Prints (1) per-state TVD of sampled marginals vs the ACS 2023 targets beside sampling noise,
(2) the paper's joint checks and a leave-one-state-out comparison with a chained-marginals
sampler, (2c) the same leave-one-state-out before and after the S2301 cross-tabulated controls,
(3) implausible-combination counts, and personas/s for 1,000,000 draws.

    .venv/bin/python benchmarks/census_fidelity.py [--states all] [--per-state 20000]
"""

from __future__ import annotations

import argparse
import sys

from personasim.census import tables
from personasim.census.sample import resolve_states
from personasim.cli.census import check_cross_controls, run_check
from personasim.core.errors import PersonasimError


def main() -> int:
    """Parse arguments and print every fidelity figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", default="all")
    parser.add_argument("--per-state", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        run_check(
            resolve_states(args.states.split(",")), args.per_state, args.seed, True, True, print
        )
        check_cross_controls(tables.load_seed(), tables.load_targets(), print)
    except PersonasimError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
