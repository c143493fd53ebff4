"""Seconds to score a large simulated population, bootstrap CIs included.

Real census persons (``sample_population`` over all states) get random answer distributions for
the three built-in election questions (the model is not involved: this times the scoring only),
then :func:`personasim.scoring.score.score` runs against the packaged election results with
``--n-boot`` replicates (per-state and national shares, winner, electoral votes, each with a
bootstrap CI over persons). A second run scores the same persons on an ordinal question against
a distribution truth built here, to time the distribution path (WD, refusal rate) too.

Run: ``.venv/bin/python benchmarks/scoring.py [--persons 100000 1000000] [--n-boot 1000]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from personasim.census import sample_population
from personasim.scoring.score import score
from personasim.survey.questions import Question, Survey
from personasim.truth import OVERALL, Truth, load_truth


def responses_for(persons: pd.DataFrame, question_ids: list[str], options: int) -> pd.DataFrame:
    """One row per person and question with a random (Dirichlet) answer distribution."""
    rng = np.random.default_rng(0)
    n, q = len(persons), len(question_ids)
    return pd.DataFrame(
        {
            "person_id": np.repeat(persons["person_id"].to_numpy(), q),
            "tier": "meta",
            "generator": "",
            "simulator": "bench",
            "question_id": np.tile(question_ids, n),
            "estimator": "logprobs",
            "probs": list(rng.dirichlet(np.ones(options), size=n * q)),
        }
    )


def ordinal_truth() -> Truth:
    """A 4-point ordinal question with a refusal option and made-up overall counts."""
    question = Question.model_validate(
        {
            "id": "scale",
            "text": "How much?",
            "kind": "ordinal",
            "options": [
                {"label": label, "text": text, "position": position}
                for label, text, position in [
                    ("A", "A lot", 1),
                    ("B", "Some", 2),
                    ("C", "Little", 3),
                    ("D", "None", 4),
                ]
            ]
            + [{"label": "E", "text": "Refused", "refusal": True}],
        }
    )
    table = pd.DataFrame(
        {
            "question_id": "scale",
            "attribute": OVERALL[0],
            "group": OVERALL[1],
            "option": question.texts,
            "weight": [30.0, 40.0, 20.0, 8.0, 2.0],
        }
    )
    return Truth("distribution", Survey(id="bench", questions=(question,)), table)


def main() -> None:
    """Time both scoring paths for each population size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    elections = load_truth("elections")
    ids = [q.id for q in elections.survey.questions]
    for n in args.persons:
        persons = sample_population(states="all", per_state=-(-n // 51), seed=0).head(n)
        persons = persons.assign(person_id=persons["person_id"].astype(str))
        timings = []
        for truth, qids, options in ((elections, ids, 2), (ordinal_truth(), ["scale"], 5)):
            responses = responses_for(persons, qids, options)
            started = time.perf_counter()
            result = score(responses, truth, persons, n_boot=args.n_boot)
            timings.append((time.perf_counter() - started, len(responses), len(result.scores)))
        (e_s, e_rows, e_scores), (o_s, o_rows, o_scores) = timings
        print(
            f"{n:>9,} persons, n_boot {args.n_boot}: elections {e_rows:,} responses -> "
            f"{e_scores:,} score rows in {e_s:.1f} s; ordinal {o_rows:,} -> {o_scores} in "
            f"{o_s:.1f} s"
        )


if __name__ == "__main__":
    main()
