"""``personasim personas``: generate persona tiers for a population (thin wrapper around
:func:`personasim.personas.generate.generate_personas`)."""

from __future__ import annotations

from pathlib import Path

import click

from personasim.cli.llm import backend_options
from personasim.cli.main import split_list
from personasim.cli.options import executor_options
from personasim.core.errors import BackendError, DataError
from personasim.core.tables import check_output_dir, read_table
from personasim.personas.generate import MAX_RUNS

SUMMARY_COLUMNS = (
    "person_id",
    "tier",
    "generator",
    "valid",
    "first_valid",
    "n_contradictions",
    "checks",
    "rejections",
    "rejection_causes",
    "fields",
)
"""The columns the per-tier summary reads back from the parts."""


def _prompt_files(specs: tuple[str, ...]) -> str | dict[str, str] | None:
    """``PATH`` (every LLM tier) or repeated ``TIER=PATH``."""
    if not specs:
        return None
    if len(specs) == 1 and "=" not in specs[0]:
        return specs[0]
    pairs = [s.split("=", 1) if "=" in s else ["", s] for s in specs]
    return {tier.strip(): path for tier, path in pairs}


@click.command("personas")
@click.option(
    "--population",
    "population_path",
    required=True,
    type=click.Path(path_type=Path),
    help="population.parquet from `personasim population`.",
)
@click.option(
    "--tiers",
    default="meta,objective,subjective,descriptive,persona",
    show_default=True,
    help="Comma-separated tiers to generate.",
)
@click.option(
    "--out",
    "out_path",
    default=Path("personas"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Personas folder of Parquet parts; rows already there are kept (a folder made "
    "with other options is refused; pandas.read_parquet and --personas of simulate and "
    "export read it as one table).",
)
@click.option(
    "--limit",
    default=None,
    type=click.IntRange(min=1),
    help="Only the first N persons of the population.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of sampling and of the procedural traits.",
)
@click.option(
    "--prompt-file",
    "prompt_files",
    multiple=True,
    metavar="[TIER=]PATH",
    help="User prompt template with {METADATA} and {TEMPLATE} placeholders, for every "
    "LLM tier or, as TIER=PATH, for one (repeatable).",
)
@click.option(
    "--attributes",
    default=None,
    metavar="A,B,...",
    help="Meta attributes [default: age,sex,race,state].",
)
@click.option(
    "--temperature",
    default=0.7,
    show_default=True,
    type=float,
    help="Sampling temperature of generation.",
)
@click.option(
    "--max-attempts",
    default=3,
    show_default=True,
    type=click.IntRange(1, 10),
    help="Tries per reply (first + repairs with the validation error).",
)
@click.option(
    "--degenerate-retries",
    default=0,
    show_default=True,
    type=click.IntRange(0, 5),
    help="More tries for a valid persona whose free text says nothing (filler, one value "
    "copied into several fields, placeholders; docs/personas.md): a retry is kept only when "
    "it is valid and less degenerate.",
)
@click.option(
    "--max-runs",
    default=MAX_RUNS,
    show_default=True,
    type=click.IntRange(1, 20),
    help="Runs that may try a persona whose generation failed in the backend: each "
    "rerun of the command tries it once more, this many runs at most.",
)
@backend_options
@executor_options
def personas_command(
    population_path: Path,
    tiers: str,
    out_path: Path,
    limit: int | None,
    seed: int,
    prompt_files: tuple[str, ...],
    attributes: str | None,
    temperature: float,
    max_attempts: int,
    degenerate_retries: int,
    max_runs: int,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
    executor_kind: str | None,
    ray_address: str | None,
    actors: int | None,
    batch_persons: int | None,
) -> None:
    """Generate persona tiers (meta, objective, subjective, descriptive, persona) and print the
    validity rate per tier.

    Personas are committed batch by batch as Parquet parts of --out (a killed run resumes with
    the same command), in this process or on Ray (--executor ray; see docs/scale.md)."""
    from personasim.cli.options import backend_recipe, executor_spec
    from personasim.core.parts import folder_lock, read_parts
    from personasim.personas.generate import format_summary, summarize
    from personasim.personas.meta import DEFAULT_ATTRIBUTES
    from personasim.personas.prompts import parse_prompt_files
    from personasim.pipeline.jobs import check_personas_folder, personas_to_parts

    tier_list = split_list(tiers)
    parse_prompt_files(_prompt_files(prompt_files), tuple(tier_list))  # fail before loading
    population = read_table(
        population_path, "population table", hint="build one with `personasim population`"
    )
    if population.empty:
        raise DataError(
            f"{population_path}: the population table has no rows",
            hint="build one with `personasim population`",
        )
    check_output_dir(out_path, why="personas are a folder of Parquet parts")
    spec = executor_spec(None, executor_kind, ray_address, actors, batch_persons)
    recipe = backend_recipe(model, cache_path, no_cache, pairs)
    needs_model = any(t != "meta" for t in tier_list)
    frame = population if limit is None else population.head(limit)
    options = {
        "seed": seed,
        "prompt_file": _prompt_files(prompt_files),
        "temperature": temperature,
        "max_attempts": max_attempts,
        "degenerate_retries": degenerate_retries,
        "meta_attributes": tuple(split_list(attributes)) if attributes else DEFAULT_ATTRIBUTES,
    }
    with folder_lock(out_path):  # one writer of --out; taken before the model is loaded
        check_personas_folder(out_path, options, write=False)
        backend = recipe.open() if needs_model and spec.kind == "local" else None
        try:
            run = personas_to_parts(
                frame,
                tier_list,
                out_path,
                executor=spec,
                backend=backend,
                recipe=recipe,
                show_progress=True,
                max_runs=max_runs,
                **options,
            )
        finally:
            if backend is not None:
                backend.close()
    table = read_parts(out_path, SUMMARY_COLUMNS)
    click.echo(format_summary(summarize(table[table["tier"].isin(tier_list)])))
    click.echo(run.summary())
    if run.report.failed_batches:
        raise BackendError(
            f"{run.report.failed_batches} batch(es) failed after their retries: "
            f"{run.report.first_error}",
            hint="the personas written are kept; run the same command again to "
            "retry the failed ones",
        )
