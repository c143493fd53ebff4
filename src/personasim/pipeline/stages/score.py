"""The ``score`` stage: each survey with ground truth scored (``scores_<id>``, ``summary_<id>``,
``cross_model_<id>``, ``crosstab_<id>``, alignment by group ``scores_by_group_<id>``), and
with ``[calibration]`` the weights and the calibrated scores."""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd

from personasim.core.keys import SCORE_KEY
from personasim.core.tables import read_table, write_atomic
from personasim.core.validity import (
    answers_of_invalid_personas,
    empty_probs,
    invalid_answer_rows,
)
from personasim.pipeline.context import StageContext, read_run_table
from personasim.pipeline.contract import Stage
from personasim.pipeline.stages.simulate import response_tables
from personasim.spec.study import CalibrationSection, StudySpec


def score_stage(ctx: StageContext) -> None:
    """Score each survey with ground truth: ``scores_<id>``, ``summary_<id>``,
    ``cross_model_<id>``, ``scores_by_group_<id>`` and ``crosstab_<id>`` tables (the report
    reads these, it computes no score). Responses of invalid personas and answers at or below
    ``min_valid_mass`` are excluded and counted. Each truth is loaded once for all three passes."""
    from personasim.truth import load_truth

    population = read_run_table(ctx, "population.parquet", "population table")
    personas = read_run_table(ctx, "personas.parquet", "personas table")
    truths = {e.id: load_truth(str(e.truth_spec), e.load()) for e in scored_surveys(ctx.spec)}
    for entry in scored_surveys(ctx.spec):
        result = _score_survey(ctx, entry.id, truths[entry.id], population, personas)
        write_atomic(result.scores, ctx.run / f"scores_{entry.id}.parquet")
        write_atomic(result.summary, ctx.run / f"summary_{entry.id}.parquet")
        write_atomic(result.cross_model.reset_index(), ctx.run / f"cross_model_{entry.id}.parquet")
        if _has_groups(entry.truth_spec):
            write_atomic(result.by_group, ctx.run / f"scores_by_group_{entry.id}.parquet")
    weights = None
    if ctx.spec.calibration is not None:
        weights = calibrated_scores(ctx, ctx.spec.calibration, truths, population, personas)
    crosstab_tables(ctx, truths, population, personas, weights)


def _score_survey(
    ctx: StageContext,
    survey_id: str,
    truth: Any,
    population: pd.DataFrame,
    personas: pd.DataFrame,
    weights: pd.DataFrame | None = None,
) -> Any:
    """:func:`personasim.scoring.score.score` of one survey's responses, streamed from the run
    directory, with the study's settings; with ``weights`` (the calibrated pass) no by-group
    table is computed (none is written)."""
    from personasim.scoring.score import score
    from personasim.scoring.stream import ResponseSource

    responses = ResponseSource(
        ctx.run / f"responses_{survey_id}.parquet", "delete the run directory's file to recompute"
    )
    return score(
        responses,
        truth,
        population,
        n_boot=ctx.spec.score.n_boot,
        seed=ctx.spec.seed,
        personas=personas,
        min_valid_mass=ctx.spec.simulate.min_valid_mass,
        weights=weights,
        by_group=weights is None,
    )


def crosstab_tables(
    ctx: StageContext,
    truths: dict[str, Any],
    population: pd.DataFrame,
    personas: pd.DataFrame,
    weights: pd.DataFrame | None,
) -> None:
    """``crosstab_<id>`` per scored survey: weighted answer shares per group and tier with
    bootstrap CIs, counts and the small-n flag, the real group shares beside them where the
    truth (``truths``, by survey id) has the group
    (:func:`personasim.scoring.crosstab.crosstab`). Weights: the calibrated ones where
    ``[calibration]`` made them, else the persons' census weights; the rows scoring excludes
    are left out here too."""
    from personasim.scoring.crosstab import CROSSTAB_COLUMNS, MIN_N, crosstab, study_attributes
    from personasim.scoring.score import UNSCORED_COLUMNS

    for entry in scored_surveys(ctx.spec):
        responses = read_table(
            ctx.run / f"responses_{entry.id}.parquet",
            "responses table",
            hint="delete the run directory's file to recompute",
            exclude=UNSCORED_COLUMNS,
        )
        bad = invalid_answer_rows(responses, ctx.spec.simulate.min_valid_mass)
        responses = responses[~(bad | answers_of_invalid_personas(responses, personas))]
        usable = ~empty_probs(responses["probs"])
        table = pd.DataFrame(columns=CROSSTAB_COLUMNS)
        if usable.any():
            truth = truths[entry.id]
            table = crosstab(
                responses,
                study_attributes(truth, population),
                population,
                weights,
                n_boot=ctx.spec.score.n_boot,
                min_n=MIN_N,
                seed=ctx.spec.seed,
                truth=truth,
            )
        write_atomic(table, ctx.run / f"crosstab_{entry.id}.parquet")


def calibrated_scores(
    ctx: StageContext,
    section: CalibrationSection,
    truths: dict[str, Any],
    population: pd.DataFrame,
    personas: pd.DataFrame,
) -> pd.DataFrame:
    """``[calibration]``: weights fitted on the personas that are scored (``weights.parquet``,
    diagnostics in ``calibration.parquet``) and every scored survey again with them
    (``scores_<id>_calibrated``, ``summary_...``); returns the weights."""
    from personasim.pipeline.stages.calibration import run_calibration, scored_personas

    responses = [
        read_table(
            ctx.run / f"responses_{entry.id}.parquet",
            "responses table",
            hint="delete the run directory's file to recompute",
            columns=["person_id", "tier", "generator", "valid", "valid_mass"],
        )
        for entry in scored_surveys(ctx.spec)
    ]
    pool = scored_personas(personas, responses, ctx.spec.simulate.min_valid_mass)
    result = run_calibration(section, pool)
    write_atomic(result.weights, ctx.run / "weights.parquet")
    write_atomic(result.diagnostics, ctx.run / "calibration.parquet")
    for note in result.notes:
        print(f"calibration: {note}", file=sys.stderr)
    for entry in scored_surveys(ctx.spec):
        out = _score_survey(ctx, entry.id, truths[entry.id], population, personas, result.weights)
        write_atomic(out.scores, ctx.run / f"scores_{entry.id}_calibrated.parquet")
        write_atomic(out.summary, ctx.run / f"summary_{entry.id}_calibrated.parquet")
    return result.weights


def scored_surveys(spec: StudySpec) -> list[Any]:
    """The ``[[surveys]]`` entries that have ground truth."""
    return [entry for entry in spec.surveys if entry.truth_spec is not None]


def _truth_data(spec: StudySpec) -> list[str]:
    """Files the surveys' truth specs read beyond the files they name (a microdata mapping's
    respondent file), so that the score stage's hash covers them."""
    from personasim.truth.microdata import data_files

    return [path for entry in spec.surveys for path in data_files(entry.truth_spec)]


def _has_groups(truth_spec: str | None) -> bool:
    """True for a truth scored by group over questions (every truth but the election results,
    whose groups are states scored per year)."""
    return str(truth_spec).partition(":")[0] != "elections"


def score_outputs(spec: StudySpec) -> list[str]:
    """The tables the score stage writes for ``spec``."""
    out = [
        f"{kind}_{e.id}.parquet"
        for e in scored_surveys(spec)
        for kind in ("scores", "summary", "cross_model", "crosstab")
    ]
    out += [
        f"scores_by_group_{e.id}.parquet" for e in scored_surveys(spec) if _has_groups(e.truth_spec)
    ]
    if spec.calibration is not None:
        out += ["weights.parquet", "calibration.parquet"]
        out += [
            f"{kind}_{e.id}_calibrated.parquet"
            for e in scored_surveys(spec)
            for kind in ("scores", "summary")
        ]
    return out


STAGE = Stage(
    "score",
    lambda s: ["population.parquet", "personas.parquet", *response_tables(s)],
    score_outputs,
    SCORE_KEY,
    lambda s: {
        "score": s.section("score"),
        "seed": s.seed,
        "min_valid_mass": s.simulate.min_valid_mass,
        "calibration": s.calibration and s.section("calibration"),
        "surveys": [(e.id, e.source, e.max_questions, e.truth_spec) for e in s.surveys],
        "truth_data": _truth_data(s),
    },
    score_stage,
    code=(
        "personasim.scoring",
        "personasim.truth",
        "personasim.survey",
        "personasim.calibrate",
        "personasim.pipeline.stages.calibration",
        __name__,
    ),
)
"""Scores: no model calls; stale when a response table, the truth (its file's content), the
survey, ``[score]``, ``[calibration]`` or the scoring code changes."""
