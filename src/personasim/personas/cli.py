"""``personasim personas``: generate persona tiers for a population (thin wrapper around
:func:`personasim.personas.generate.generate_personas`)."""

from __future__ import annotations

from pathlib import Path

import click

from personasim.errors import DataError
from personasim.llm.cli import backend_options, open_backend
from personasim.tables import check_output, read_table


def _split(values: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [v.strip() for v in values.split(",") if v.strip()]


def _prompt_files(specs: tuple[str, ...]) -> str | dict[str, str] | None:
    """``PATH`` (every LLM tier) or repeated ``TIER=PATH``."""
    if not specs:
        return None
    if len(specs) == 1 and "=" not in specs[0]:
        return specs[0]
    pairs = [s.split("=", 1) if "=" in s else ["", s] for s in specs]
    return {tier.strip(): path for tier, path in pairs}


@click.command("personas")
@click.option("--population", "population_path", required=True,
              type=click.Path(path_type=Path),
              help="population.parquet from `personasim population`.")
@click.option("--tiers", default="meta,objective,subjective,descriptive,persona",
              show_default=True, help="Comma-separated tiers to generate.")
@click.option("--out", "out_path", default=Path("personas.parquet"), show_default=True,
              type=click.Path(path_type=Path), help="Personas table; rows already there are kept.")
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="Only the first N persons of the population.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of sampling and of the procedural traits.")
@click.option("--prompt-file", "prompt_files", multiple=True, metavar="[TIER=]PATH",
              help="User prompt template with {METADATA} and {TEMPLATE} placeholders, for every "
                   "LLM tier or, as TIER=PATH, for one (repeatable).")
@click.option("--attributes", default=None, metavar="A,B,...",
              help="Meta attributes [default: age,sex,race,state].")
@click.option("--temperature", default=0.7, show_default=True, type=float,
              help="Sampling temperature of generation.")
@click.option("--max-attempts", default=3, show_default=True, type=click.IntRange(1, 10),
              help="Tries per reply (first + repairs with the validation error).")
@backend_options
def personas_command(population_path: Path, tiers: str, out_path: Path, limit: int | None,
                     seed: int, prompt_files: tuple[str, ...], attributes: str | None,
                     temperature: float, max_attempts: int, model: str,
                     cache_path: str | None, no_cache: bool, pairs: tuple[str, ...]) -> None:
    """Generate persona tiers (meta, objective, subjective, descriptive, persona) and print the
    validity rate per tier."""
    from personasim.personas.generate import format_summary, generate_personas, summarize
    from personasim.personas.meta import DEFAULT_ATTRIBUTES
    from personasim.personas.prompts import parse_prompt_files

    check_output(out_path, [("--population", population_path)])
    tier_list = _split(tiers)
    parse_prompt_files(_prompt_files(prompt_files), tuple(tier_list))  # fail before loading
    population = read_table(
        population_path, "population table", hint="build one with `personasim population`"
    )
    if population.empty:
        raise DataError(f"{population_path}: the population table has no rows",
                        hint="build one with `personasim population`")  # fmt: skip
    needs_model = any(t != "meta" for t in tier_list)
    backend = open_backend(model, cache_path, no_cache, pairs) if needs_model else None
    table = generate_personas(
        population, tiers=tier_list, backend=backend, out=out_path, limit=limit, seed=seed,
        prompt_file=_prompt_files(prompt_files), progress=True, temperature=temperature,
        max_attempts=max_attempts,
        meta_attributes=tuple(_split(attributes)) if attributes else DEFAULT_ATTRIBUTES,
    )
    shown = table[table["tier"].isin(tier_list)]
    click.echo(format_summary(summarize(shown)))
    if backend is not None:
        click.echo(f"backend: {backend.summary_line()}")
    click.echo(f"wrote {len(table)} persona rows to {out_path}")
