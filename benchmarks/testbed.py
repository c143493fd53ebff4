"""PERSONA testbed on the embedded model: pairs per minute, the verification and
position-consistency rates, and the leave-one-out and agreement run times.

Personas are generated for the run (the ``persona`` tier of a small Vermont population, real
census sample, embedded model) unless ``--personas`` names an existing table. No LLM cache is
used, so every figure is a cold run.

    PYTHONPATH=src .venv/bin/python benchmarks/testbed.py [--persons 3] [--prompts 3]
        [--personas personas.parquet] [--prism]
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from personasim.core.errors import PersonasimError
from personasim.llm import get_backend


def personas_table(args: argparse.Namespace, backend) -> pd.DataFrame:
    """The persona-tier table: read, or generated for a small real census sample."""
    if args.personas:
        from personasim.core.tables import read_table

        return read_table(args.personas, "personas table")
    from personasim.census import sample_population
    from personasim.personas.generate import generate_personas

    started = time.perf_counter()
    population = sample_population(states=["VT"], per_state=args.persons, seed=args.seed)
    table = generate_personas(
        population,
        tiers=("persona",),
        backend=backend,
        seed=args.seed,
        string_length=30,
        max_tokens={"persona": 160},
        max_attempts=2,
        max_resamples=1,
    )
    valid = int(table["valid"].sum())
    print(
        f"personas   {valid} of {len(table)} valid persona-tier profiles generated in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return table


def bench_pairs(personas: pd.DataFrame, backend, args: argparse.Namespace) -> pd.DataFrame:
    """Pairs on the built-in prompts; prints pairs/min and the judge's figures."""
    from personasim.testbed.pairs import PairsOptions, make_pairs, pair_stats
    from personasim.testbed.prompts import builtin_prompts, split_prompts

    prompts = split_prompts(builtin_prompts(), seed=args.seed)
    options = PairsOptions(
        per_persona=args.prompts,
        held_out=0,
        test_share=0.0,
        answer_tokens=96,
        critique_tokens=128,
        revision_tokens=96,
        seed=args.seed,
    )
    result = make_pairs(personas, prompts, backend, options)
    stats = pair_stats(result.pairs)
    rate = result.made / result.seconds * 60
    print(
        f"pairs      {result.made} pairs in {result.seconds:.1f} s = {rate:.2f} pairs/min "
        "(caps: answer 96, critique 128, revision 96 tokens)"
    )
    for key in (
        "verification_rate",
        "position_consistency",
        "revision_longer",
        "chosen_truncated",
        "mean_judge_mass",
    ):
        print(f"           {key:<22} {stats[key]}")
    return result.pairs


def bench_loo(personas: pd.DataFrame, backend, args: argparse.Namespace) -> None:
    """Leave-one-out on a few attributes; prints the run time and the ranking."""
    from personasim.testbed.loo import LooOptions, leave_one_out
    from personasim.testbed.questions import builtin_questions

    options = LooOptions(
        attributes=("religion", "ideology", "age"),
        n_personas=args.loo_n,
        k=3,
        seed=args.seed,
        n_boot=200,
    )
    started = time.perf_counter()
    result = leave_one_out(personas, builtin_questions()[: args.questions], backend, options)
    seconds = time.perf_counter() - started
    calls = len(result.labels)
    print(
        f"loo        3 attributes x {args.loo_n} pairs x {args.questions} questions = "
        f"{calls} choices in {seconds:.1f} s ({calls / seconds:.2f} choices/s)"
    )
    print("\n".join("           " + line for line in result.text().splitlines()))


def bench_agreement(personas: pd.DataFrame, backend, args: argparse.Namespace) -> None:
    """Agreement between the model and itself with the answers reversed (position bias)."""
    from personasim.testbed.agreement import agreement, model_labels
    from personasim.testbed.questions import builtin_questions

    questions = builtin_questions()[: args.questions]
    started = time.perf_counter()
    labels = pd.concat(
        [
            model_labels(backend, personas, questions, "embedded"),
            model_labels(backend, personas, questions, "embedded (reversed)", reverse=True),
        ],
        ignore_index=True,
    )
    result = agreement(labels)
    seconds = time.perf_counter() - started
    print(
        f"agreement  2 raters x {labels['persona_id'].nunique()} personas x {len(questions)} "
        f"questions in {seconds:.1f} s"
    )
    print("\n".join("           " + line for line in result.text().splitlines()))


def bench_prism(backend) -> None:
    """Curation of the 115 real PRISM prompts with the controversy classifier."""
    from pathlib import Path

    from personasim.testbed.prompts import curate, load_prompts

    path = (
        Path(__file__).resolve().parents[1].parent
        / "shared"
        / "data"
        / "prism"
        / "prism_opening_prompt_examples.csv"
    )
    started = time.perf_counter()
    _, report = curate(load_prompts(path), backend)
    print(f"prism      curation in {time.perf_counter() - started:.1f} s")
    print("\n".join("           " + line for line in report.summary().splitlines()))


def main() -> int:
    """Parse arguments and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=3, help="Prompts per persona.")
    parser.add_argument("--questions", type=int, default=6, help="Preference questions.")
    parser.add_argument("--loo-n", type=int, default=4, help="Persona pairs per attribute.")
    parser.add_argument("--personas", default=None, help="An existing personas table.")
    parser.add_argument(
        "--prism",
        action="store_true",
        help="Also classify the 115 PRISM prompts (needs ../shared/data).",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    backend = get_backend("llamacpp", n_ctx=4096)
    try:
        personas = personas_table(args, backend)
        bench_pairs(personas, backend, args)
        bench_loo(personas, backend, args)
        bench_agreement(personas, backend, args)
        if args.prism:
            bench_prism(backend)
    except PersonasimError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
