"""What rewriting ``responses.parquet`` costs, per chunk vs every ``checkpoint_seconds``.

Times :func:`personasim.core.tables.write_atomic` on response tables of growing size (rows shaped
like
the simulate stage's: ids, tier, models, a 4-option ``probs`` list, JSON ``raw``), fits seconds per
row, and prints the total time spent rewriting the file over a run of ``--personas`` x
``--questions`` answers:

- per chunk (the old behaviour): one rewrite of all rows so far after every ``--chunk`` personas,
  so the cost grows with the square of the run;
- checkpointed (``simulate``'s policy): the next rewrite waits ``--checkpoint`` seconds of model
  time and at least 20x the last rewrite's duration, at ``--answers-per-second`` (default: 1,000,
  a GPU endpoint; the embedded model on 2 cores does ~7).

Run: ``.venv/bin/python benchmarks/checkpoints.py [--personas 1000000] [--questions 10]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core.tables import write_atomic
from personasim.simulate.run import REWRITE_SHARE


def response_rows(n: int, questions: int = 10) -> pd.DataFrame:
    """``n`` rows shaped like the simulate stage's output."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=n)
    raw = json.dumps({"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25, "top": {" A": 0.2}})
    return pd.DataFrame(
        {
            "person_id": (np.arange(n) // questions).astype(str),
            "tier": "meta",
            "generator": "census",
            "simulator": "llamacpp:SmolLM2-135M-Instruct.Q4_1",
            "question_id": [f"q{i % questions}" for i in range(n)],
            "estimator": "logprobs",
            "probs": list(probs),
            "answer": "A",
            "valid_mass": rng.random(n),
            "invalid": 0,
            "option_order": [[0, 1, 2, 3]] * n,
            "raw": raw,
        }
    )


def seconds_per_row(sizes: list[int]) -> float:
    """Least-squares seconds per row of ``write_atomic`` over tables of ``sizes`` rows."""
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        write_atomic(response_rows(1000), Path(folder) / "warm.parquet")
        for size in sizes:
            frame = response_rows(size)
            started = time.perf_counter()
            write_atomic(frame, Path(folder) / "responses.parquet")
            timings.append(time.perf_counter() - started)
            print(f"write_atomic {size:>9,} rows: {timings[-1]:.3f} s")
    return float(np.polyfit(sizes, timings, 1)[0])


def checkpointed_seconds(
    per_row: float, total_rows: int, rate: float, checkpoint: float
) -> tuple[float, int]:
    """Seconds spent rewriting, and rewrites, under ``simulate``'s checkpoint policy."""
    clock, writing, rewrites = 0.0, 0.0, 0
    model_seconds = total_rows / rate
    next_save = checkpoint
    while next_save < model_seconds:
        clock = next_save
        cost = per_row * rate * clock
        writing, rewrites = writing + cost, rewrites + 1
        next_save = clock + max(checkpoint, REWRITE_SHARE * cost)
    return writing + per_row * total_rows, rewrites + 1  # and the final write


def main() -> None:
    """Measure the write cost and print both policies' totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=1_000_000)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=32, help="personas per chunk")
    parser.add_argument("--checkpoint", type=float, default=30.0, help="checkpoint_seconds")
    parser.add_argument("--answers-per-second", type=float, default=1000.0)
    args = parser.parse_args()
    per_row = seconds_per_row([250_000, 500_000, 1_000_000])
    total_rows = args.personas * args.questions
    model_seconds = total_rows / args.answers_per_second
    chunks = -(-args.personas // args.chunk)
    # per chunk: rows written = chunk_rows * (1 + 2 + ... + chunks)
    per_chunk = per_row * args.chunk * args.questions * chunks * (chunks + 1) / 2
    checkpointed, rewrites = checkpointed_seconds(
        per_row, total_rows, args.answers_per_second, args.checkpoint
    )
    print(
        f"{per_row * 1e6:.2f} us per row written; run of {total_rows:,} answers at "
        f"{args.answers_per_second:,.0f}/s = {model_seconds / 3600:.1f} h of model time"
    )
    print(f"rewrite after each chunk of {args.chunk} personas: {per_chunk / 3600:,.1f} h writing")
    print(
        f"checkpoints (>= {args.checkpoint:.0f} s, >= {REWRITE_SHARE}x the last rewrite): "
        f"{rewrites:,} rewrites, {checkpointed / 3600:,.2f} h writing "
        f"({checkpointed / model_seconds:.1%} of the model time)"
    )


if __name__ == "__main__":
    main()
