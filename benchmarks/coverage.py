"""Coverage and mean width of 95 % intervals, before (percentile bootstrap) and after
(:mod:`personasim.scoring.intervals`), on the known-answer stand-in simulator.

Every scenario (``tests/support/coverage.py``) draws ``--datasets`` simulated datasets with fixed
seeds from population distributions we set, so the true distance is known; n = 100 persons per
question (elections: 4 states x 40 voters), K = 5 options. "before" is today's scorer: the
percentile interval of the plug-in distance over ``--n-boot`` person-resampling replicates.
With ``--mc`` it also prints the Monte Carlo error of the endpoints (standard deviation over
bootstrap seeds on one fixed dataset) as a share of the interval width, per number of replicates.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/coverage.py [--datasets 400] [--n-boot 1000]
[--after-only] [--only NAME ...] [--mc]``; ``--after-only`` skips the "before" columns (the old
scorer's replicates cost more than the new interval), ``--only`` runs the named scenarios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personasim.scoring import intervals as I  # noqa: E402
from tests.support.coverage import SCENARIOS, coverage  # noqa: E402
from tests.support.known_answer import single  # noqa: E402


def coverage_table(
    datasets: int, n_boot: int, only: list[str] | None = None, before: bool = True
) -> None:
    """Print one row per scenario (those named in ``only``, default all) and label; the slow
    "before" columns only when ``before``."""
    print(f"{datasets} datasets per scenario, {n_boot} replicates, 95 % intervals")
    old = f" {'before':>7} {'width':>7}" if before else ""
    print(f"{'scenario':34} {'label':18}{old} {'after':>7} {'width':>7}")
    for name in only or SCENARIOS:
        start = time.perf_counter()
        for label, (cb, wb, ca, wa) in coverage(name, datasets, n_boot, before=before).items():
            old = f" {cb:7.3f} {wb:7.3f}" if before else ""
            print(f"{name:34} {label:18}{old} {ca:7.3f} {wa:7.3f}", flush=True)
        print(f"{'':34} ({time.perf_counter() - start:.1f} s)", flush=True)


def mc_error(seeds: int) -> None:
    """Endpoint MC error over bootstrap seeds, as a share of the width, per replicate count."""
    q = np.array([0.10, 0.20, 0.30, 0.25, 0.15])
    cases = {
        "at truth": q,
        "near ~2 SE": q + np.array([0.045, 0, 0, 0, -0.045]),
        "far": q + np.array([0.12, 0.05, -0.05, -0.05, -0.07]),
    }
    print(f"\nMonte Carlo error of the endpoints over {seeds} bootstrap seeds (one dataset each)")
    print(f"{'case':12} {'n_boot':>7} {'sd(low)/width':>14} {'sd(high)/width':>15} {'width':>7}")
    for name, p in cases.items():
        keys, rows, w = single(p).draw(100, np.random.default_rng(7))
        p_hat = I.weighted_mean(rows[0], w)
        for n_boot in (250, 500, 1000, 2000):
            ends = np.array(
                [
                    (e.ci_low, e.ci_high)
                    for e in (
                        I.estimate(
                            "wd",
                            p_hat,
                            I.replicate_means(keys, rows[0], w, n_boot, s),
                            q,
                            100,
                            np.arange(5.0),
                        )
                        for s in range(seeds)
                    )
                ]
            )
            width = float(np.mean(ends[:, 1] - ends[:, 0]))
            sd = ends.std(axis=0, ddof=1) / width
            print(f"{name:12} {n_boot:7d} {sd[0]:14.3f} {sd[1]:15.3f} {width:7.3f}")


def main() -> None:
    """Parse flags, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=400, help="datasets per scenario")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--mc", action="store_true", help="also print endpoint MC error")
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), help="these scenarios")
    parser.add_argument(
        "--after-only", action="store_true", help="skip the slow 'before' (percentile) columns"
    )
    parser.add_argument("--no-table", action="store_true", help="skip the coverage table")
    parser.add_argument("--mc-seeds", type=int, default=40, help="bootstrap seeds for --mc")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.no_table:
        coverage_table(args.datasets, args.n_boot, args.only, before=not args.after_only)
    if args.mc:
        mc_error(args.mc_seeds)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
