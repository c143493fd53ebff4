"""personasim's own cost per answer in ``simulate`` at scale, without the model's.

A million personas cannot be run through the embedded model here (about 17 days on 2 cores), so
this benchmark answers with ``InstantStandIn``, a stand-in backend that returns a fixed
distribution at once: what it times is everything around the model (planning, the cache
bookkeeping of ``Backend``, building rows, committing parts), which is what would remain on a
fast GPU endpoint. Prints wall seconds, microseconds per answer and the peak resident memory.

Run: ``.venv/bin/python benchmarks/simulate_overhead.py [--personas 100000] [--questions 10]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from personasim.llm.base import Backend, ChoiceRequest, ChoiceResult, label_distribution
from personasim.pipeline.jobs import simulate_to_parts
from personasim.simulate.plan import SimulateOptions
from personasim.survey.loaders import builtin_survey
from personasim.survey.questions import Question, Survey


class InstantStandIn(Backend):
    """Stand-in for a model (named as such): every label gets the same probability, at once."""

    name = "instant-stand-in"

    @property
    def model_identity(self) -> str:
        """A fixed identity: the stand-in has no weights."""
        return "stand-in"

    def _run_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        return [label_distribution({label: 1.0 for label in r.labels}) for r in requests]

    def _run_generate(self, requests: list) -> list:
        raise NotImplementedError("the stand-in only scores choices")


def personas_table(n: int) -> pd.DataFrame:
    """``n`` short meta-like personas."""
    return pd.DataFrame(
        {
            "person_id": range(n),
            "tier": "meta",
            "generator": "census",
            "text": [
                f"- Age: {18 + i % 70} years\n- Sex: {'Female' if i % 2 else 'Male'}"
                for i in range(n)
            ],
            "weight": 1.0,
            "state": "CA",
        }
    )


def survey_of(count: int) -> Survey:
    """``count`` questions: the election questions repeated under new ids."""
    base = builtin_survey("elections").questions
    questions: list[Question] = [
        base[i % len(base)].model_copy(update={"id": f"q{i}"}) for i in range(count)
    ]
    return Survey(id="overhead", questions=tuple(questions))


def main() -> None:
    """Simulate with the stand-in, into parts (the production path), and print the costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=100_000)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    personas, survey = personas_table(args.personas), survey_of(args.questions)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run = simulate_to_parts(
            personas,
            survey,
            Path(folder),
            options=SimulateOptions(),
            backend=InstantStandIn(),
            show_progress=False,
        )
        seconds = time.perf_counter() - started
    answers = run.report.rows
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"{args.personas:,} personas x {args.questions} questions = {answers:,} answers "
        f"in {seconds:.1f} s ({seconds / answers * 1e6:.0f} us/answer besides the model); "
        f"peak memory {peak_gb:.2f} GB"
    )


if __name__ == "__main__":
    main()
