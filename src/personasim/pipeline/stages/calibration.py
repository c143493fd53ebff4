"""Calibration as a study stage: the ``[calibration]`` spec section, and the tables the report
shows (per tier: alignment before and after calibration with CIs, design effect and ESS beside
it).

A study with a ``[calibration]`` section calibrates its personas with :func:`run_calibration`,
scores every survey twice (unweighted, and with the weights joined by
:func:`personasim.calibrate.attach_weights`); the report's tables of it are
:func:`personasim.calibrate.diagnostics.tier_costs` and
:func:`personasim.calibrate.diagnostics.before_after`.
"""

from __future__ import annotations

import pandas as pd

from personasim.calibrate.methods import CalibrateOptions
from personasim.calibrate.targets import load_targets
from personasim.calibrate.weights import Calibration, calibrate
from personasim.core.keys import PERSONA_KEY
from personasim.core.validity import answers_of_invalid_personas, invalid_answer_rows
from personasim.spec.study import CalibrationSection


def calibrate_options(spec: CalibrationSection) -> CalibrateOptions:
    """The method options of a ``[calibration]`` section (the fields it shares with them)."""
    return CalibrateOptions(**spec.model_dump(include=set(CalibrateOptions.model_fields)))


def scored_personas(
    personas: pd.DataFrame, responses: list[pd.DataFrame], min_valid_mass: float
) -> pd.DataFrame:
    """The personas scoring reads: valid ones with at least one answer it keeps
    (:mod:`personasim.core.validity`) in ``responses`` (tables with ``person_id``,
    ``tier``, ``generator`` and, when present, ``valid`` and ``valid_mass``). Calibration is
    fitted on exactly these, so the weights reach their targets on the rows that are scored."""
    keys = ["person_id", "tier", "generator"]
    kept = [
        rows[
            ~(
                invalid_answer_rows(rows, min_valid_mass)
                | answers_of_invalid_personas(rows, personas)
            )
        ]
        for rows in responses
    ]
    scored = pd.concat([rows[keys].astype(str) for rows in kept]).drop_duplicates()
    marked = personas.assign(**{f"_{k}": personas[k].astype(str) for k in keys})
    chosen = marked.merge(
        scored.rename(columns={k: f"_{k}" for k in keys}), on=[f"_{k}" for k in keys]
    )
    return chosen.drop(columns=[f"_{k}" for k in keys])


def run_calibration(spec: CalibrationSection, personas: pd.DataFrame) -> Calibration:
    """Weights for the spec's tiers of ``personas`` (tiers it lacks are skipped)."""
    present = set(personas["tier"].astype(str)) if "tier" in personas.columns else set()
    tiers = [t for t in spec.tiers if t in present] if present else None
    if present and not tiers:
        empty = pd.DataFrame(columns=[*PERSONA_KEY, "weight"])
        return Calibration(empty, pd.DataFrame(), [], ["no tier to calibrate in the personas"])
    targets = load_targets(spec.targets)
    return calibrate(personas, targets, spec.by or None, calibrate_options(spec), tiers)
