"""Re-score a finished run's responses with the personasim on ``PYTHONPATH`` and print the
headline: summary alignment per tier and model with its interval, and the report's reading.

Run it once with this checkout's ``src`` and once with an older commit's (a ``git worktree``)
to compare the headline numbers before and after a scoring change; nothing in the run directory
is written. ``--n-boot`` defaults to the study's ``[score] n_boot``.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/headline_before_after.py RUN_DIR
[--n-boot N]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import personasim
from personasim.report.reading import headline_reading
from personasim.scoring.score import score, summarize
from personasim.spec.study import load_study
from personasim.truth import load_truth

SHOWN = ["tier", "model", "metric", "value", "ci_low", "ci_high", "questions"]
"""Summary columns printed (those the scoring code writes)."""


def headline(run: Path, n_boot: int | None) -> None:
    """Score every survey with ground truth in ``run`` and print its summary and reading."""
    spec = load_study(run / "study.toml")
    population = pd.read_parquet(run / "population.parquet")
    personas = pd.read_parquet(run / "personas.parquet")
    print(f"personasim from {Path(personasim.__file__).parent}")
    tables = {}
    for entry in spec.surveys:
        path = run / f"responses_{entry.id}.parquet"
        if entry.truth_spec is None or not path.exists():
            continue
        start = time.perf_counter()
        result = score(
            pd.read_parquet(path),
            load_truth(str(entry.truth_spec), entry.load()),
            population,
            n_boot=n_boot or spec.score.n_boot,
            seed=spec.seed,
            personas=personas,
            min_valid_mass=spec.simulate.min_valid_mass,
        )
        summary = summarize(result.scores)
        tables[entry.id] = summary
        rows = summary[summary["metric"].isin(["alignment", "national_abs_error"])]
        print(f"\n{entry.id} ({time.perf_counter() - start:.1f} s to score)")
        print(rows[[c for c in SHOWN if c in rows]].to_string(index=False))
    print()
    for paragraph in headline_reading(tables, spec.simulate.simulators):
        print(paragraph)


def main() -> None:
    """Parse the run directory and replicate count, print the headline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory with responses_<id>.parquet")
    parser.add_argument("--n-boot", type=int, help="bootstrap replicates (default: the study's)")
    args = parser.parse_args()
    headline(args.run, args.n_boot)


if __name__ == "__main__":
    main()
