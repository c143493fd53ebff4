"""``personasim simulate`` and ``personasim score``: simulate survey answers with an LLM, then
score them against ground truth (thin wrappers around the Python API)."""

from __future__ import annotations

import signal
from pathlib import Path

import click
import pandas as pd

from personasim.cli.llm import backend_options
from personasim.cli.main import split_list
from personasim.cli.options import executor_options
from personasim.core.errors import BackendError, Interrupted
from personasim.core.keys import PERSONA_KEY
from personasim.core.tables import check_output, check_output_dir, read_table, write_atomic
from personasim.scoring.stream import ResponseSource

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
    help="Responses folder (or file) from `personasim simulate`.",
)
@click.option(
    "--truth",
    required=True,
    help="Ground truth: elections, opinionqa:PATH (human_resp folder), csv:PATH or "
    "microdata:MAPPING.yaml.",
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
    "--personas",
    "personas_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Personas table or folder: responses of personas marked invalid there are left out "
    "(needed for response files written before simulate excluded them).",
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
    default=1000,
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
    personas_path: Path | None,
    weights_path: Path | None,
    out_path: Path,
    n_boot: int,
    min_valid_mass: float,
    seed: int,
) -> None:
    """Score simulated answers against real ground truth and print a summary."""
    from personasim.scoring.score import format_summary, score
    from personasim.truth import load_truth

    check_output(
        out_path,
        [
            ("--responses", responses_path),
            ("--persons", persons_path),
            ("--personas", personas_path),
            ("--weights", weights_path),
        ],
    )
    known = load_truth(truth, survey)
    persons = read_table(persons_path, "persons table", ["person_id"]) if persons_path else None
    personas = read_table(personas_path, "personas table", PERSONA_KEY) if personas_path else None
    weights = _weights(weights_path, responses_path)
    result = score(
        _scored_responses(responses_path, known.survey.ids),
        known,
        persons,
        n_boot=n_boot,
        seed=seed,
        personas=personas,
        min_valid_mass=min_valid_mass,
        weights=weights,
    )
    write_atomic(result.scores, out_path)
    click.echo(format_summary(result))
    click.echo(f"wrote {len(result.scores)} score rows to {out_path}")


def _weights(weights_path: Path | None, responses_path: Path) -> pd.DataFrame | None:
    """The checked ``--weights`` table (positive finite weights, some for these responses)."""
    from personasim.calibrate.weights import read_weights

    if weights_path is None:
        return None
    ids = read_table(responses_path, "responses table", ["person_id"], columns=["person_id"])
    return read_weights(weights_path, ids["person_id"])


def _scored_responses(path: Path, ids: list[str]) -> pd.DataFrame | ResponseSource:
    """What ``score`` reads: Parquet responses streamed (one pass, only the columns scoring
    needs), a CSV file as a table of the questions with truth."""
    from personasim.core.tables import CSV_SUFFIXES
    from personasim.scoring.score import REQUIRED, UNSCORED_COLUMNS

    hint = "give the responses folder `personasim simulate` wrote"
    if path.suffix.lower() not in CSV_SUFFIXES:
        return ResponseSource(path, hint)
    return read_table(
        path,
        "responses table",
        REQUIRED,
        hint=hint,
        exclude=UNSCORED_COLUMNS,
        only=("question_id", ids),
    )


# --------------------------------------------------------------------------- simulate


def _load_personas(
    personas_path: Path | None, population_path: Path | None, attributes: list[str]
) -> pd.DataFrame:
    """The personas to simulate: a personas table, or meta personas built from a population."""
    from personasim.core.errors import ConfigError
    from personasim.personas.meta import DEFAULT_ATTRIBUTES, meta_personas
    from personasim.simulate.personas import check_personas

    if personas_path is not None and population_path is None:
        return check_personas(read_table(personas_path), personas_path)
    if population_path is not None and personas_path is None:
        population = read_table(population_path)
        return meta_personas(population, attributes or DEFAULT_ATTRIBUTES, population_path)
    raise ConfigError(
        "give exactly one of --personas and --population",
        hint="--personas personas.parquet, or --population population.parquet (meta tier)",
    )


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
    default=Path("responses"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Responses folder of Parquet parts (resumed when it exists, refused when made with "
    "other options, a changed question of the same id or a persona whose text changed; "
    "pandas.read_parquet and --responses "
    "of score and export read it as one table).",
)
@backend_options
@executor_options
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
    executor_kind: str | None,
    ray_address: str | None,
    actors: int | None,
    batch_persons: int | None,
) -> None:
    """Simulate survey answers of personas with an LLM; resumes an existing --out.

    Answers are committed batch by batch as Parquet parts of --out (atomic: a killed run loses
    at most the batch in flight, and the same command resumes it), in this process or on Ray
    (--executor ray; see docs/scale.md)."""
    from personasim.cli.options import backend_recipe, executor_spec
    from personasim.core.parts import folder_lock
    from personasim.pipeline.jobs import check_responses_folder, simulate_to_parts
    from personasim.simulate.personas import select_personas
    from personasim.simulate.plan import SimulateOptions
    from personasim.survey.loaders import load_survey

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
    chosen = split_list(*attributes)
    personas = _load_personas(personas_path, population_path, chosen)
    personas = select_personas(personas, split_list(*tiers), limit_persons)
    questions = load_survey(survey)
    check_output_dir(out_path, why="responses are a folder of Parquet parts")
    spec = executor_spec(None, executor_kind, ray_address, actors, batch_persons)
    recipe = backend_recipe(model, cache_path, no_cache, pairs)
    made_with = _persona_record(population_path, chosen)
    with folder_lock(out_path):  # one writer of --out; taken before the model is loaded
        check_responses_folder(
            out_path, options, questions, made_with, personas=personas, write=False
        )
        backend = recipe.open() if spec.kind == "local" else None
        try:
            run = simulate_to_parts(
                personas,
                questions,
                out_path,
                options=options,
                executor=spec,
                backend=backend,
                recipe=recipe,
                show_progress=True,
                made_with=made_with,
            )
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the committed batches are kept
            raise Interrupted(
                getattr(stop, "signum", signal.SIGINT), _resume_note(out_path)
            ) from stop
        finally:
            if backend is not None:
                backend.close()
    click.echo(run.summary())
    if backend is not None:
        click.echo(f"backend: {backend.summary_line()}")
    if run.report.failed_batches:
        raise BackendError(
            f"{run.report.failed_batches} batch(es) failed after their retries "
            f"({run.report.failed_rows} answers): {run.report.first_error}",
            hint="the answers written are kept; run the same command again to "
            "retry the failed ones",
        )


def _persona_record(population_path: Path | None, attributes: list[str]) -> dict[str, object]:
    """The persona options the answers depend on: the meta attributes with --population."""
    from personasim.personas.meta import DEFAULT_ATTRIBUTES

    if population_path is None:
        return {}
    return {"attributes": list(attributes or DEFAULT_ATTRIBUTES)}


def _resume_note(out_path: Path) -> str:
    """Where a stopped run's committed rows are, and how to go on."""
    from personasim.core.parts import committed_rows

    rows = committed_rows(out_path)  # the parts' footers only: stopping reads no answer
    return f"{rows} responses are saved in {out_path}; run the same command again to resume"
