"""The paper protocols of the PERSONA testbed on the embedded model, cold (no LLM cache): the
leave-one-out of §4.1 (critique and revision per persona version) and the items of the role-play
agreement (§4.2) made from prompts and labelled by the model. Prints model calls, run times
and the figures.

    PYTHONPATH=src .venv/bin/python benchmarks/testbed_paper.py --personas personas.parquet \
        [--attributes religion,age] [--pairs 2] [--questions 2] [--items 2]
"""

from __future__ import annotations

import argparse
import time

from personasim.cli.testbed_loo import pick_prompts
from personasim.cli.testbed_roleplay import generated_items
from personasim.llm import get_backend
from personasim.testbed.common import persona_tier
from personasim.testbed.loo_paper import PaperLooOptions, baseline_answers, paper_leave_one_out
from personasim.testbed.pairs import PairsOptions
from personasim.testbed.roleplay import model_item_labels


def main() -> None:
    """Run both protocols once and print what they cost and gave."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--personas", required=True)
    parser.add_argument("--attributes", default="religion,age")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--questions", type=int, default=2)
    parser.add_argument("--items", type=int, default=2)
    args = parser.parse_args()
    personas = persona_tier(args.personas)
    backend = get_backend("llamacpp")
    generation = PairsOptions(answer_tokens=32, critique_tokens=48, revision_tokens=32)
    options = PaperLooOptions(
        attributes=tuple(args.attributes.split(",")),
        n_personas=args.pairs,
        k=2,
        n_questions=args.questions,
        n_boot=500,
        generation=generation,
    )
    started = time.perf_counter()
    questions = baseline_answers(
        pick_prompts("builtin", args.questions, 0), backend, options, progress=False
    )
    result = paper_leave_one_out(personas, questions, backend, options, progress=False)
    seconds, calls = time.perf_counter() - started, backend.stats.model_calls
    print(
        f"loo paper  {len(result.pairs)} pairs x {args.questions} questions: {calls} model "
        f"calls in {seconds:.1f} s"
    )
    print(result.text())
    started = time.perf_counter()
    items = generated_items("builtin", personas, backend, args.items, 0)
    labels = model_item_labels(backend, items, "embedded")
    counts = labels["choice"].value_counts().to_dict()
    print(
        f"agreement  {len(items)} items made and labelled in "
        f"{time.perf_counter() - started:.1f} s; labels {counts} (B = the refinement)"
    )
    backend.close()


if __name__ == "__main__":
    main()
