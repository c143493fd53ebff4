"""The body of ``personasim testbed loo --protocol paper``: read the inputs, pick the questions
and their baselines, run :func:`personasim.testbed.loo_paper.paper_leave_one_out`, write the
tables and the figure beside ``--out``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from personasim.cli.llm import open_backend
from personasim.core.tables import check_output, write_atomic
from personasim.llm import Backend
from personasim.personas.generate import stable_seed
from personasim.testbed import common as C
from personasim.testbed.loo_paper import (
    PaperLooOptions,
    Question,
    baseline_answers,
    paper_leave_one_out,
    questions_from_pairs,
)


def pick_prompts(source: str, n: int, seed: int) -> pd.DataFrame:
    """``n`` prompts of a prompt set, curated (question mark, five words), in a seeded order."""
    from personasim.testbed.prompts import curate, read_prompt_table

    curated, _report = curate(read_prompt_table(source))
    order = np.random.default_rng(stable_seed(seed, "loo-questions")).permutation(len(curated))
    return curated.iloc[order[:n]].reset_index(drop=True)


def loo_questions(source: str, backend: Backend, options: PaperLooOptions) -> list[Question]:
    """The questions and baselines: a pairs table's persona-free answers, or generated ones."""
    from personasim.testbed.pairs import read_pairs

    if source.startswith("pairs:"):
        return questions_from_pairs(read_pairs(source.removeprefix("pairs:")), options.n_questions)
    prompts = pick_prompts(source, options.n_questions, options.seed)
    return baseline_answers(prompts, backend, options, progress=True)


def run_paper_loo(
    personas_path: Path,
    source: str,
    out_path: Path,
    backend_spec: tuple,
    generation: dict[str, Any],
    **values: Any,
) -> None:
    """Run the paper protocol from the CLI and write ``out``, ``*_summary``, ``*_items``,
    ``*_refinements`` and the figure ``*.png``."""
    from personasim.report.testbed import png_bytes
    from personasim.report.testbed_loo import loo_distribution
    from personasim.testbed.pairs import pairs_options

    inputs = [("--personas", personas_path)]
    if source.startswith("pairs:"):
        inputs.append(("--prompts", Path(source.removeprefix("pairs:"))))
    check_output(out_path, inputs)
    gen = pairs_options(**generation, seed=values.get("seed", 0))
    options = C.make_options(PaperLooOptions, "loo options", generation=gen, **values)
    personas = C.persona_tier(personas_path)
    model, cache_path, no_cache, extra = backend_spec
    backend = open_backend(model, cache_path, no_cache, extra)
    try:
        questions = loo_questions(source, backend, options)
        result = paper_leave_one_out(personas, questions, backend, options, progress=True)
    finally:
        backend.close()
    stem = out_path.stem
    write_atomic(result.pairs, out_path)
    for name, table in (
        ("summary", result.summary),
        ("items", result.items),
        ("refinements", result.refinements),
    ):
        write_atomic(table, out_path.with_name(f"{stem}_{name}.parquet"))
    png = out_path.with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(png_bytes(loo_distribution(result.pairs, result.summary)))
    click.echo(result.text())
    click.echo(f"wrote {len(result.pairs)} persona pairs to {out_path}")
