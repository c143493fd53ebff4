"""``testbed eval`` on the embedded model: run time of the answer modes with ``k`` samples per
item, the scores and pass@k curve, and how often the answers and preambles hit their caps.

No LLM cache is used, so the time is a cold run. ``--personas`` is a persona-tier table (e.g.
one written by ``personasim personas --tiers persona``).

    PYTHONPATH=src .venv/bin/python benchmarks/testbed_eval.py --personas personas.parquet
        [--k 4] [--n-prompts 2] [--tokens 48] [--by sex]
"""

from __future__ import annotations

import argparse
import time

from personasim.core.tables import read_table
from personasim.llm import get_backend
from personasim.testbed.evaluate import EvalOptions, evaluate_model
from personasim.testbed.prompts import builtin_prompts, split_prompts

MODES = ("persona", "baseline", "chain_of_thought", "demographic_summary")


def main() -> None:
    """Parse the arguments, run the evaluation once and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--n-prompts", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=48, help="answer and preamble cap")
    parser.add_argument("--by", default="sex")
    args = parser.parse_args()
    options = EvalOptions(
        modes=MODES,
        n_prompts=args.n_prompts,
        k=args.k,
        answer_tokens=args.tokens,
        preamble_tokens=args.tokens,
        by=tuple(args.by.split(",")) if args.by else (),
        n_boot=1000,
    )
    personas = read_table(args.personas, "personas table")
    backend = get_backend("llamacpp", n_ctx=2048)
    started = time.perf_counter()
    try:
        result = evaluate_model(personas, split_prompts(builtin_prompts()), backend, None, options)
    finally:
        backend.close()
    elapsed = time.perf_counter() - started
    rows = result.rows
    print(f"{len(rows)} verdicts ({len(MODES)} modes, k={args.k}) in {elapsed:.0f} s")
    caps = rows.groupby("mode")[["answer_truncated", "preamble_truncated", "p_fine"]].mean()
    print(caps.round(3).to_string())
    print(result.text())


if __name__ == "__main__":
    main()
