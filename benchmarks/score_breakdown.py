"""Where the seconds of scoring elections from parts go, per step, at one replicate count.

Builds the responses folder of ``benchmarks/score_memory.py`` (census-drawn persons of all
states answering the three election questions, Dirichlet answers, Parquet parts), then runs
``personasim.scoring.score.score`` in this process with timers around its steps: opening the
folder (the duplicate-key check), reading and grouping the cells, the per-state joint
bootstrap draws (and, inside them, drawing counts and forming the replicate means), the
per-cell interval math, the year rows and the summary intervals. Steps nest: the counts and
means are inside the state draws, the interval math inside the year rows and the summary.

    .venv/bin/python benchmarks/score_breakdown.py [--answers 1000000] [--boot 0,1000]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

STEPS = {
    "personasim.scoring.score": (
        "collect_cells",
        "_state_draws",
        "_estimated",
        "_election_rows",
        "_summary_intervals",
    ),
    "personasim.scoring.intervals": ("_draw_means", "bootstrap_counts"),
}
"""Module -> functions timed (``bootstrap_counts`` is a generator: its time is that of the
draws, counted as the loop over it pulls each chunk)."""


def _timed(function: Callable[..., Any], name: str, seconds: Counter[str]) -> Callable[..., Any]:
    """``function`` adding its wall time to ``seconds[name]`` (per yielded chunk for a
    generator)."""
    if name == "bootstrap_counts":

        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any) -> Any:
            chunks = function(*args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                finally:
                    seconds[name] += time.perf_counter() - started
                yield chunk

        return generator

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - started

    return wrapper


def main() -> None:
    """Build the folder once, then score it at each replicate count and print the steps."""
    import importlib

    from score_memory import build

    from personasim.scoring.stream import ResponseSource
    from personasim.truth import load_truth

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--boot", default="0,1000")
    args = parser.parse_args()
    seconds: Counter[str] = Counter()
    for module_name, names in STEPS.items():
        module = importlib.import_module(module_name)
        for name in names:
            setattr(module, name, _timed(getattr(module, name), name, seconds))
    score = importlib.import_module("personasim.scoring.score").score
    truth = load_truth("elections")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "responses"
        build(args.answers, folder)
        for boot in (int(b) for b in args.boot.split(",")):
            seconds.clear()
            started = time.perf_counter()
            source = ResponseSource(folder)
            opened = time.perf_counter() - started
            score(source, truth, n_boot=boot)
            total = time.perf_counter() - started
            print(f"{args.answers:,} answers, n_boot {boot}: {total:.2f} s in all")
            print(f"  {'open the folder (key check)':<32} {opened:6.2f} s")
            for name in (n for names in STEPS.values() for n in names):
                print(f"  {name:<32} {seconds[name]:6.2f} s")


if __name__ == "__main__":
    main()
