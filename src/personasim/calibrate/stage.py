"""Calibration as a study stage: the ``[calibration]`` spec section, and the tables the report
shows (per tier: alignment before and after calibration with CIs, design effect and ESS beside
it).

A study with a ``[calibration]`` section calibrates its personas with :func:`run_calibration`,
scores every survey twice (unweighted, and with the weights joined by
:func:`personasim.calibrate.attach_weights`) and keeps :func:`before_after` and
:func:`tier_costs` for the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.calibrate.methods import CalibrateOptions
from personasim.calibrate.targets import load_targets
from personasim.calibrate.weights import Calibration, calibrate
from personasim.spec import CalibrationSection

SCORE_KEYS = ["tier", "generator", "simulator", "estimator", "question_id", "metric"]




def calibrate_options(spec: CalibrationSection) -> CalibrateOptions:
    """The method options of a ``[calibration]`` section (the fields it shares with them)."""
    return CalibrateOptions(**spec.model_dump(include=set(CalibrateOptions.model_fields)))


def run_calibration(spec: CalibrationSection, personas: pd.DataFrame) -> Calibration:
    """Weights for the spec's tiers of ``personas`` (tiers it lacks are skipped)."""
    present = set(personas["tier"].astype(str)) if "tier" in personas.columns else set()
    tiers = [t for t in spec.tiers if t in present] if present else None
    if present and not tiers:
        empty = pd.DataFrame(columns=["person_id", "tier", "generator", "weight"])
        return Calibration(empty, pd.DataFrame(), [], ["no tier to calibrate in the personas"])
    targets = load_targets(spec.targets)
    return calibrate(personas, targets, spec.by or None, calibrate_options(spec), tiers)


def tier_costs(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Per tier x generator: persons, ESS (sum over groups), deff ``n / ESS``, groups not
    converged, and the mean ASMD before/after over groups and variables."""
    if diagnostics.empty:
        return pd.DataFrame(columns=["tier", "generator", "n", "ess", "deff", "not_converged",
                                     "asmd_before", "asmd_after"])  # fmt: skip
    keys = [k for k in ("tier", "generator") if k in diagnostics.columns]
    group_cols = list(diagnostics.columns[: diagnostics.columns.get_loc("n")])
    groups = diagnostics.drop_duplicates(group_cols)
    out = groups.groupby(keys, as_index=False).agg(
        n=("n", "sum"), ess=("ess", "sum"),
        not_converged=("status", lambda s: int((s != "converged").sum())),
    )  # fmt: skip
    asmd = diagnostics.groupby(keys, as_index=False)[["asmd_before", "asmd_after"]].mean()
    out = out.merge(asmd, on=keys)
    out.insert(out.columns.get_loc("ess") + 1, "deff", out["n"] / out["ess"].replace(0, np.nan))
    return out


def before_after(plain: pd.DataFrame, weighted: pd.DataFrame) -> pd.DataFrame:
    """Overall-group scores side by side: value and CI unweighted, then calibrated."""

    def overall(scores: pd.DataFrame) -> pd.DataFrame:
        sel = scores[(scores["attribute"] == "overall") & (scores["group"] == "all")]
        return sel[[*SCORE_KEYS, "value", "ci_low", "ci_high"]]

    return overall(plain).merge(overall(weighted), on=SCORE_KEYS, how="inner",
                                suffixes=("_before", "_after"))  # fmt: skip
