"""``personasim simulate`` and ``personasim score``: simulate survey answers with an LLM, then
score them against ground truth (thin wrappers around the Python API)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd

from personasim.llm.cli import backend_options
from personasim.tables import read_table, write_atomic

MIN_VALID_MASS = click.option(
    "--min-valid-mass",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1, max_open=True),
    help="Answers with valid_mass at or below this are invalid: never scored, counted apart.",
)
"""The validity threshold shared by `simulate` and `score`."""


@click.command("score")
@click.option(
    "--responses",
    "responses_path",
    required=True,
    type=click.Path(path_type=Path),
    help="responses.parquet from `personasim simulate`.",
)
@click.option(
    "--truth",
    required=True,
    help="Ground truth: elections, opinionqa:PATH (human_resp folder) or csv:PATH.",
)
@click.option(
    "--survey",
    default=None,
    help="Survey the questions come from (needed with csv:PATH): elections, PATH, NAME:PATH.",
)
@click.option(
    "--persons",
    "persons_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Table with person_id, weight and group columns (e.g. state); Parquet or CSV.",
)
@click.option(
    "--weights",
    "weights_path",
    default=None,
    type=click.Path(path_type=Path),
    help="weights.parquet from `personasim calibrate` (joined by person_id, tier, generator).",
)
@click.option(
    "--out",
    "out_path",
    default=Path("scores.parquet"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where to write the scores table.",
)
@click.option(
    "--n-boot",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bootstrap replicates for confidence intervals (0 = none).",
)
@MIN_VALID_MASS
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
def score_command(
    responses_path: Path,
    truth: str,
    survey: str | None,
    persons_path: Path | None,
    weights_path: Path | None,
    out_path: Path,
    n_boot: int,
    min_valid_mass: float,
    seed: int,
) -> None:
    """Score simulated answers against real ground truth and print a summary."""
    from personasim.calibrate import attach_weights
    from personasim.scoring import format_summary, score
    from personasim.truth import load_truth

    responses = read_table(responses_path, "responses table",
                           hint="give the responses file `personasim simulate` wrote")  # fmt: skip
    persons = read_table(persons_path, "persons table") if persons_path else None
    notes: list[str] = []
    if weights_path:
        weights = read_table(weights_path, "weights table", ["person_id", "weight"])
        responses, notes = attach_weights(responses, weights, persons)
    result = score(responses, load_truth(truth, survey), persons, n_boot=n_boot, seed=seed,
                   min_valid_mass=min_valid_mass)  # fmt: skip
    result.notes.extend(notes)
    write_atomic(result.scores, out_path)
    click.echo(format_summary(result))
    click.echo(f"wrote {len(result.scores)} score rows to {out_path}")


# --------------------------------------------------------------------------- simulate


def _split_list(values: tuple[str, ...]) -> list[str]:
    """``("a,b", "c")`` -> ``["a", "b", "c"]`` (repeatable, comma-separated options)."""
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _load_personas(
    personas_path: Path | None, population_path: Path | None, attributes: list[str]
) -> pd.DataFrame:
    """The personas to simulate: a personas table, or meta personas built from a population."""
    from personasim.errors import ConfigError
    from personasim.personas.meta import DEFAULT_ATTRIBUTES, meta_personas
    from personasim.survey.simulate import check_personas

    if personas_path is not None and population_path is None:
        return check_personas(read_table(personas_path), personas_path)
    if population_path is not None and personas_path is None:
        population = read_table(population_path)
        return meta_personas(population, attributes or DEFAULT_ATTRIBUTES, population_path)
    raise ConfigError(
        "give exactly one of --personas and --population",
        hint="--personas personas.parquet, or --population population.parquet (meta tier)",
    )


class _Bar:
    """A tqdm progress bar created on the first call (when the total is known)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, finished: int, total: int) -> None:
        """Move the bar to ``finished`` of ``total`` rows."""
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc="simulate", unit="answer", file=sys.stderr,
                            dynamic_ncols=True, disable=total == 0)  # fmt: skip
        self.bar.update(finished - self.bar.n)

    def close(self) -> None:
        """Close the bar if one was opened."""
        if self.bar is not None:
            self.bar.close()


@click.command("simulate")
@click.option(
    "--personas",
    "personas_path",
    type=click.Path(path_type=Path),
    default=None,
    help="personas.parquet (person_id, tier, generator, text; weight, state kept).",
)
@click.option(
    "--population",
    "population_path",
    type=click.Path(path_type=Path),
    default=None,
    help="population.parquet from `personasim population`: simulate its meta tier.",
)
@click.option(
    "--attributes",
    multiple=True,
    metavar="A,B,...",
    help="With --population: attributes shown in the meta persona [default: age,sex,race,state].",
)
@click.option("--survey", required=True, help="elections, a survey file, or NAME:PATH.")
@click.option(
    "--estimator",
    type=click.Choice(["logprobs", "sample"]),
    default="logprobs",
    show_default=True,
    help="Letter probabilities, or sampled replies (the paper's way).",
)
@click.option(
    "--samples",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Replies per persona and question with --estimator sample.",
)
@click.option(
    "--temperature",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 5),
    help="Sampling temperature with --estimator sample.",
)
@click.option(
    "--unconstrained",
    is_flag=True,
    help="With sample: free replies parsed strictly as 'Answer: X' (no choice list).",
)
@MIN_VALID_MASS
@click.option("--permute", is_flag=True, help="Show options in a seeded random order per person.")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of permutations and samples."
)
@click.option("--tiers", multiple=True, metavar="T,U,...", help="Only these persona tiers.")
@click.option(
    "--limit-persons", type=click.IntRange(min=1), default=None, help="Only the first N persons."
)
@click.option("--simulator", default=None, help="Name for the simulator column.")
@click.option(
    "--out",
    "out_path",
    default=Path("responses.parquet"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Responses table (resumed when it exists).",
)
@backend_options
def simulate_command(
    personas_path: Path | None,
    population_path: Path | None,
    attributes: tuple[str, ...],
    survey: str,
    estimator: str,
    samples: int,
    temperature: float,
    unconstrained: bool,
    min_valid_mass: float,
    permute: bool,
    seed: int,
    tiers: tuple[str, ...],
    limit_persons: int | None,
    simulator: str | None,
    out_path: Path,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Simulate survey answers of personas with an LLM; resumes an existing --out."""
    from personasim.llm.cli import open_backend
    from personasim.survey.loaders import load_survey
    from personasim.survey.simulate import SimulateOptions, select_personas, simulate

    options = SimulateOptions(
        estimator=estimator,  # type: ignore[arg-type]
        samples=samples,
        temperature=temperature,
        constrained=not unconstrained,
        permute=permute,
        seed=seed,
        simulator=simulator,
        min_valid_mass=min_valid_mass,
    )
    personas = _load_personas(personas_path, population_path, _split_list(attributes))
    personas = select_personas(personas, _split_list(tiers), limit_persons)
    questions = load_survey(survey)
    backend = open_backend(model, cache_path, no_cache, pairs)
    bar = _Bar()
    try:
        report = simulate(personas, questions, backend, options, out_path, progress=bar)
    finally:
        bar.close()
        backend.close()
    click.echo(report.summary())
    click.echo(f"responses: {len(report.responses)} rows in {out_path}")
