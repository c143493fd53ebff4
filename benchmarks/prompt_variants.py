"""What the ``Possible answers: A, B.`` line of the question prompt buys, on the embedded model.

Dropping that line would save about ten tokens per answer (the logprobs estimator's whole cost
is the tokens it evaluates), so this measures what it would cost in answer quality: the same
personas and questions as ``benchmarks/simulate.py`` are scored with and without it, and the
script prints the evaluated tokens per answer, the mean ``valid_mass`` (probability the model puts
on the option letters at all) and the mean absolute change of each option's probability.

Run: ``.venv/bin/python benchmarks/prompt_variants.py [--personas 20] [--questions 10]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
from simulate import make_personas, make_survey  # benchmarks/simulate.py, beside this file

import personasim.simulate.prompt as prompt
import personasim.simulate.run as sim
from personasim.llm import get_backend
from personasim.llm.base import BackendStats
from personasim.simulate.plan import SimulateOptions
from personasim.survey.questions import Question


def without_letter_line(question: Question, order: Sequence[int] | None = None) -> str:
    """The standard question text minus its last paragraph, ``Possible answers: ...``."""
    return STANDARD(question, order).rsplit("\n\nPossible answers", 1)[0]


STANDARD = prompt.format_question


def main() -> None:
    """Score both variants and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10)
    args = parser.parse_args()
    personas, survey = make_personas(args.personas, "meta"), make_survey(args.questions)
    backend = get_backend("llamacpp", cache=None)
    probs = {}
    for name, formatter in (("with the line", STANDARD), ("without it", without_letter_line)):
        prompt.format_question = formatter  # build_messages looks it up at call time
        backend.stats = BackendStats()
        rows = sim.simulate(personas, survey, backend, SimulateOptions()).responses
        fresh = backend.stats.prompt_tokens - backend.stats.reused_prompt_tokens
        probs[name] = np.concatenate([np.asarray(p, dtype=float) for p in rows["probs"]])
        print(
            f"{name:<14} {fresh / len(rows):5.1f} tokens evaluated/answer, "
            f"mean valid_mass {rows['valid_mass'].mean():.3f}"
        )
    prompt.format_question = STANDARD
    change = np.abs(probs["with the line"] - probs["without it"]).mean()
    print(f"mean |change| of an option's probability when the line is dropped: {change:.3f}")
    backend.close()


if __name__ == "__main__":
    main()
