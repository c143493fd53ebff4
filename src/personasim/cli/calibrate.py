"""``personasim calibrate`` and ``personasim crosstab`` (thin wrappers around the Python API).

personasim calibrate --personas personas.parquet --targets census,party --by state \
    --trim 5 --out weights.parquet
personasim crosstab --responses responses.parquet --by age_group,education --weights w.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from personasim.cli.main import split_list
from personasim.core.errors import ConfigError, validation_error
from personasim.core.tables import check_output, read_table, write_all_atomic, write_atomic

if TYPE_CHECKING:
    import pandas as pd


def _target_files(targets_spec: str) -> list[tuple[str, str]]:
    """The ``csv:PATH`` files of a ``--targets`` list, as inputs an output must not replace."""
    return [
        ("--targets", part.strip().removeprefix("csv:"))
        for part in targets_spec.split(",")
        if part.strip().startswith("csv:")
    ]


@click.command("calibrate")
@click.option(
    "--personas",
    "pool_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Personas table (any tier) or persons/population table; Parquet or CSV.",
)
@click.option(
    "--targets",
    "targets_spec",
    required=True,
    help="census, party, csv:PATH (comma-separated, any mix).",
)
@click.option("--by", default=None, help="Calibrate per value of this column (e.g. state).")
@click.option(
    "--method",
    type=click.Choice(["rake", "poststratify"]),
    default="rake",
    show_default=True,
    help="Raking, or post-stratification on one variable.",
)
@click.option("--trim", type=float, default=None, help="Cap weights at RATIO x mean weight.")
@click.option(
    "--trim-percentile",
    type=float,
    default=None,
    help="Instead of --trim: cap weights at this percentile.",
)
@click.option(
    "--trim-rounds", type=int, default=1, show_default=True, help="Rake-then-trim rounds (raking)."
)
@click.option("--max-iter", type=int, default=200, show_default=True, help="Most raking sweeps.")
@click.option(
    "--tol",
    type=float,
    default=1e-6,
    show_default=True,
    help="Relative error at which raking stops.",
)
@click.option("--tiers", default=None, help="Only these tiers (comma-separated).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("weights.parquet"),
    show_default=True,
    help="Weights table (Parquet).",
)
@click.option(
    "--diagnostics",
    "diagnostics_out",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the diagnostics table (Parquet) here; they are printed either way.",
)
def calibrate_command(
    pool_path: Path,
    targets_spec: str,
    by: str | None,
    method: str,
    trim: float | None,
    trim_percentile: float | None,
    trim_rounds: int,
    max_iter: int,
    tol: float,
    tiers: str | None,
    out: Path,
    diagnostics_out: Path | None,
) -> None:
    """Weight a persona pool to census, Pew party or your own marginals; print diagnostics."""
    from tqdm import tqdm

    from personasim.calibrate import CalibrateOptions, calibrate, load_targets
    from personasim.calibrate.diagnostics import format_diagnostics

    try:
        options = CalibrateOptions(
            method=method,
            trim=trim,
            trim_percentile=trim_percentile,
            trim_rounds=trim_rounds,
            max_iter=max_iter,
            tol=tol,
        )
    except ValidationError as error:
        raise validation_error(error, "calibrate options") from None
    inputs = [("--personas", pool_path), *_target_files(targets_spec)]
    check_output(out, inputs, parquet=True)
    if diagnostics_out is not None:
        check_output(diagnostics_out, [*inputs, ("--out", out)], "--diagnostics", parquet=True)
    pool = read_table(pool_path, "persons or personas table", ["person_id"])
    targets = load_targets(targets_spec)
    bar = lambda items: tqdm(items, desc="calibrate", unit="group", file=sys.stderr)  # noqa: E731
    result = calibrate(pool, targets, by, options, split_list(tiers) or None, progress=bar)
    outputs = [(result.weights, out)]
    write_all_atomic(outputs + ([(result.diagnostics, diagnostics_out)] if diagnostics_out else []))
    click.echo(format_diagnostics(result.diagnostics, result.keys))
    for note in result.notes:
        click.echo(f"note: {note}")
    also = f" and diagnostics to {diagnostics_out}" if diagnostics_out else ""
    click.echo(f"wrote {len(result.weights)} weights to {out}{also}")


@click.command("crosstab")
@click.option(
    "--responses",
    "responses_path",
    required=True,
    type=click.Path(path_type=Path),
    help="responses.parquet from `personasim simulate`.",
)
@click.option("--by", required=True, help="Attributes, comma-separated (age_group,education).")
@click.option(
    "--weights",
    "weights_path",
    default=None,
    type=click.Path(path_type=Path),
    help="weights.parquet from `personasim calibrate`.",
)
@click.option(
    "--persons",
    "persons_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Persons or personas table with the attributes (joined by person_id).",
)
@click.option("--survey", default=None, help="Survey for option names (elections, PATH, ...).")
@click.option(
    "--truth",
    default=None,
    help="Real answers beside the simulated ones: elections, opinionqa:PATH or csv:PATH.",
)
@click.option(
    "--min-n",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Cells with fewer persons are flagged.",
)
@click.option(
    "--n-boot",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Bootstrap replicates (0 = no CIs).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("crosstab.parquet"),
    show_default=True,
    help="Where to write the cross-tab table.",
)
def crosstab_command(
    responses_path: Path,
    by: str,
    weights_path: Path | None,
    persons_path: Path | None,
    survey: str | None,
    truth: str | None,
    min_n: int,
    n_boot: int,
    seed: int,
    out: Path,
) -> None:
    """Weighted answer shares per question by attribute, with bootstrap CIs and cell counts."""
    from personasim.calibrate.weights import read_weights
    from personasim.scoring.crosstab import crosstab, format_crosstab
    from personasim.survey.loaders import load_survey
    from personasim.truth import load_truth

    check_output(
        out,
        [("--responses", responses_path), ("--weights", weights_path), ("--persons", persons_path)],
        parquet=True,
    )
    responses = read_table(responses_path, "responses table", ["person_id", "question_id"])
    persons = read_table(persons_path, "persons table", ["person_id"]) if persons_path else None
    weights = read_weights(weights_path, responses["person_id"]) if weights_path else None
    real = load_truth(truth, survey) if truth else None
    questions = load_survey(survey) if survey and real is None else None
    if questions is not None:
        check_survey_covers(questions.ids, responses["question_id"], survey)
    table = crosstab(
        responses, split_list(by), persons, weights, questions, n_boot, min_n, seed, real
    )
    write_atomic(table, out)
    click.echo(format_crosstab(table, min_n))
    click.echo(f"wrote {len(table)} rows to {out}")


def check_survey_covers(ids: list[str], answered: pd.Series, survey: str | None) -> None:
    """Refuse a ``--survey`` that has none of the questions the responses answer."""
    asked = set(answered.astype(str))
    if asked and not asked & set(ids):
        raise ConfigError(
            f"--survey {survey}: none of its {len(ids)} question(s) is among the "
            f"{len(asked)} the responses answer ({sorted(asked)[0]!r}, ...)",
            hint="give the survey the responses were simulated on",
        )
