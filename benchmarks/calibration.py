"""Calibration speed and what it buys (prints figures; asserts nothing).

1. Time to calibrate 1,000,000 persons to 10 controls (the nine national census variables of
   ``--targets census`` plus Pew party identification), split into deriving the variables,
   raking, and the diagnostics; the goal is under 10 s on 2 cores.
2. The population stage's fidelity before/after the S2301 cross-tabulated census controls
   (issue 12, section 4): the leave-one-state-out check of ``benchmarks/census_fidelity.py``
   with and without them (about 30 s; ``--no-fidelity`` skips it).

    PYTHONPATH=src .venv/bin/python benchmarks/calibration.py [--n 1000000] [--no-fidelity]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from personasim.calibrate import CalibrateOptions, calibrate, load_targets
from personasim.calibrate import diagnostics as D
from personasim.calibrate.methods import build_variables, rake_group
from personasim.census import tables


def pool_of(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` adults resampled from the shipped seed, with made-up political views (seeded)."""
    rng = np.random.default_rng(seed)
    base = tables.load_seed()
    base = base[base["age"] >= 18].reset_index(drop=True)
    rows = rng.integers(0, len(base), n)
    pool = base.iloc[rows].reset_index(drop=True)
    views = rng.choice(
        ["Democrat", "Republican", "Independent", "Other"], n, p=[0.5, 0.25, 0.2, 0.05]
    )
    return pool.assign(person_id=np.arange(n), weight=1.0, political_views=views)


def timing(n: int) -> None:
    """Print the time of each step of calibrating ``n`` persons to 10 controls."""
    pool = pool_of(n)
    targets = load_targets("census,party")
    national = targets[targets["group"] == ""]
    print(
        f"pool: {n:,} persons; controls: {national['variable'].nunique()} "
        f"({', '.join(national['variable'].unique())})"
    )
    t0 = time.perf_counter()
    variables = build_variables(pool, national)
    t1 = time.perf_counter()
    outcome = rake_group(np.ones(n), variables, "all", CalibrateOptions())
    t2 = time.perf_counter()
    rows = D.group_rows({}, np.ones(n), outcome, variables)
    t3 = time.perf_counter()
    print(
        f"derive variables {t1 - t0:.2f} s, rake {t2 - t1:.2f} s ({outcome.iterations} sweeps, "
        f"{outcome.status}), diagnostics {t3 - t2:.2f} s; total {t3 - t0:.2f} s"
    )
    t4 = time.perf_counter()
    result = calibrate(pool, targets)
    t5 = time.perf_counter()
    d = result.diagnostics
    print(f"calibrate() end to end (checks, derive, rake, diagnostics): {t5 - t4:.2f} s")
    print(
        f"deff {rows[0]['deff']:.3f}, ESS {rows[0]['ess']:,.0f}, max abs margin error after "
        f"{d['max_abs_error_after'].max():.2e}, worst ASMD before "
        f"{d['asmd_before'].max():.3f} ({d.loc[d['asmd_before'].idxmax(), 'variable']})"
    )


def main() -> int:
    """Parse arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--no-fidelity", dest="fidelity", action="store_false")
    args = parser.parse_args()
    timing(args.n)
    if args.fidelity:
        from personasim.cli.census import check_cross_controls

        check_cross_controls(tables.load_seed(), tables.load_targets(), print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
