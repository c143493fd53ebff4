"""``simulate`` into Parquet parts at 1M and 10M answers: overhead per answer and peak memory.

The model is ``InstantStandIn`` (from ``benchmarks/simulate_overhead.py``), a stand-in named as
such that answers at once: a million answers cannot go through the embedded model here, and what
this measures is everything around the model (planning, rows, committing parts, done keys). Each
size runs in its own subprocess, so the peak resident memory printed is that run's alone; then a
rerun of the finished folder shows the cost of reading the done keys back (no model calls).

    .venv/bin/python benchmarks/simulate_parts.py [--answers 1000000,10000000] [--questions 10]
    .venv/bin/python benchmarks/simulate_parts.py --rerun-only   # parts written directly
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def child(persons: int, questions: int, folder: Path, batch: int) -> None:
    """Run in the subprocess: simulate into ``folder`` and print seconds, rows, peak MB."""
    sys.path.insert(0, str(HERE))
    from simulate_overhead import InstantStandIn, personas_table, survey_of

    from personasim.executor.base import ExecutorSpec
    from personasim.pipeline.jobs import simulate_to_parts

    personas, survey = personas_table(persons), survey_of(questions)
    started = time.perf_counter()
    run = simulate_to_parts(
        personas,
        survey,
        folder,
        backend=InstantStandIn(),
        executor=ExecutorSpec(batch_persons=batch),
        show_progress=False,
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(seconds, run.report.rows, run.skipped, run.report.parts, peak)


def prebuild(persons: int, questions: int, folder: Path, batch: int) -> None:
    """Write the parts a finished first run would leave (same keys and columns, fixed answers),
    without running it: for ``--rerun-only``."""
    import numpy as np

    from personasim.core.parts import commit_part

    sys.path.insert(0, str(HERE))
    from simulate_overhead import InstantStandIn

    simulator = InstantStandIn().display_name
    ids = [f"q{i}" for i in range(questions)]
    for start in range(0, persons, batch):
        people = np.arange(start, min(start + batch, persons))
        n = len(people) * questions
        commit_part(
            pd.DataFrame(
                {
                    "person_id": np.repeat(people, questions),
                    "tier": "meta",
                    "generator": "census",
                    "simulator": simulator,
                    "question_id": np.tile(ids, len(people)),
                    "estimator": "logprobs",
                    "probs": [[0.5, 0.5]] * n,
                    "answer": "A",
                    "valid_mass": 1.0,
                    "valid": True,
                    "invalid": 0,
                    "option_order": [[0, 1]] * n,
                    "raw": '{"presented": [0.5, 0.5], "top_tokens": {}}',
                    "weight": 1.0,
                    "state": "CA",
                }
            ),
            folder,
        )


def measure(persons: int, questions: int, folder: Path, batch: int) -> list[float]:
    """Seconds, rows, skipped, parts and peak MB of one child run."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(persons),
            str(questions),
            str(folder),
            str(batch),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [float(x) for x in done.stdout.split()[-5:]]


def main() -> None:
    """Print overhead per answer and peak memory for each size, first run and rerun."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", default="1000000,10000000")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--batch-persons", type=int, default=2000)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rerun-only",
        action="store_true",
        help="write the parts of a finished run directly, then time the rerun",
    )
    args = parser.parse_args()
    if args.child:
        persons, questions, folder, batch = args.child
        child(int(persons), int(questions), Path(folder), int(batch))
        return
    print(
        f"model: InstantStandIn (a stand-in, not a model); batches of {args.batch_persons} persons"
    )
    for answers in (int(a) for a in args.answers.split(",")):
        persons = answers // args.questions
        with tempfile.TemporaryDirectory() as tmp:
            labels = ("first run", "rerun (all done)")
            if args.rerun_only:
                prebuild(persons, args.questions, Path(tmp), args.batch_persons)
                labels = ("rerun (all done)",)
            for label in labels:
                seconds, rows, skipped, parts, peak = measure(
                    persons, args.questions, Path(tmp), args.batch_persons
                )
                per = f"{seconds / rows * 1e6:.0f} us/answer" if rows else "no new answers"
                print(
                    f"{answers:>12,} answers, {label:17}: {seconds:7.1f} s ({per}); "
                    f"{int(rows):,} written in {int(parts)} parts, {int(skipped):,} skipped; "
                    f"peak RSS {peak:,.0f} MB"
                )


if __name__ == "__main__":
    main()
