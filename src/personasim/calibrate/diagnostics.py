"""What calibration cost and what it bought, per group (definitions as survey statisticians use
them, e.g. the ``balance`` package):

* Kish design effect ``deff = n * sum(w^2) / (sum w)^2`` (1 for equal weights; the variance of a
  weighted mean is about ``deff`` times that of an unweighted one of the same ``n``).
* Effective sample size ``ess = (sum w)^2 / sum(w^2) = n / deff``.
* Largest weight share ``max(w) / sum(w)``.
* ASMD of a target variable: each level is a 0/1 indicator whose target mean is the target share
  ``p``; its absolute standardized mean difference is ``|p_hat - p| / sqrt(p (1 - p))`` (the
  target's standard deviation), ``p_hat`` the weighted share among the persons the variable
  covers; the variable's ASMD is the mean over its levels with ``0 < p < 1``. Reported before
  (base weights) and after (calibrated weights).
* Max absolute margin error: ``max |p_hat - p|`` over every level of every target variable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from personasim.calibrate.methods import Outcome, Variable
from personasim.census.rake import kish_ess
from personasim.core.keys import CALIBRATED_PAIR_KEY


def kish_deff(w: np.ndarray) -> float:
    """Kish design effect ``n * sum(w^2) / (sum w)^2`` (NaN for no weight)."""
    w = np.asarray(w, dtype=float)
    total = w.sum()
    return float(len(w) * np.square(w).sum() / total**2) if total > 0 else float("nan")


def max_weight_share(w: np.ndarray) -> float:
    """Share of the total weight held by the heaviest person."""
    w = np.asarray(w, dtype=float)
    return float(w.max() / w.sum()) if len(w) and w.sum() > 0 else float("nan")


def weighted_shares(variable: Variable, w: np.ndarray) -> np.ndarray:
    """Weighted share of each level among the persons the variable covers (NaN if none)."""
    size = len(variable.levels)
    totals = np.bincount(variable.cells, weights=w, minlength=size + 1)[:size]
    covered = totals.sum()
    return totals / covered if covered > 0 else np.full(size, np.nan)


def asmd(variable: Variable, w: np.ndarray) -> float:
    """Mean over levels of ``|p_hat - p| / sqrt(p (1 - p))`` (levels with ``0 < p < 1``)."""
    p = variable.shares / max(variable.shares.sum(), 1e-300)
    keep = (p > 0) & (p < 1)
    if not keep.any():
        return 0.0
    p_hat = weighted_shares(variable, w)
    return float(np.mean(np.abs(p_hat[keep] - p[keep]) / np.sqrt(p[keep] * (1 - p[keep]))))


def max_abs_error(variable: Variable, w: np.ndarray) -> float:
    """Largest ``|p_hat - p|`` over the levels of one variable."""
    p = variable.shares / max(variable.shares.sum(), 1e-300)
    return float(np.nanmax(np.abs(weighted_shares(variable, w) - p)))


def group_rows(
    labels: dict[str, Any], base: np.ndarray, outcome: Outcome, variables: list[Variable]
) -> list[dict[str, Any]]:
    """One diagnostics row per target variable of a group (group figures repeated)."""
    w = outcome.weights
    offending = outcome.offending
    if outcome.trimmed and outcome.status == "converged":  # the cap moved the margins again
        error = max((max_abs_error(v, w) for v in variables), default=0.0)
        offending = f"trimmed: max margin error {error:.3f}"
    common = {
        **labels,
        "n": len(w),
        "deff": kish_deff(w),
        "ess": kish_ess(w),
        "max_weight_share": max_weight_share(w),
        "deff_before": kish_deff(base),
        "iterations": outcome.iterations,
        "status": outcome.status,
        "offending": offending,
        "trimmed": outcome.trimmed,
    }
    return [
        {
            **common,
            "variable": v.name,
            "asmd_before": asmd(v, base),
            "asmd_after": asmd(v, w),
            "max_abs_error_before": max_abs_error(v, base),
            "max_abs_error_after": max_abs_error(v, w),
        }
        for v in variables
    ]


def format_diagnostics(table: pd.DataFrame, keys: list[str]) -> str:
    """One line per group: size, deff, ESS, largest share, iterations, status, then ASMD
    before -> after per variable and the max margin error after."""
    lines = []
    for key, rows in table.groupby(keys, sort=True, dropna=False) if keys else [((), table)]:
        first = rows.iloc[0]
        name = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,))) or "all"
        asmds = ", ".join(
            f"{r.variable} {r.asmd_before:.3f}->{r.asmd_after:.3f}" for r in rows.itertuples()
        )
        status, note = first["status"], first["offending"]
        if note:  # converged, trimmed: ...; stalled (worst control)
            status += f", {note}" if status == "converged" else f" ({note})"
        lines.append(
            f"{name}: n={first['n']} deff={first['deff']:.2f} ess={first['ess']:.1f} "
            f"max_share={first['max_weight_share']:.3f} iter={first['iterations']} "
            f"status={status} max_err_after={rows['max_abs_error_after'].max():.4f} | "
            f"ASMD {asmds}"
        )
    return "\n".join(lines)


def tier_costs(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Per tier x generator: persons, ESS (sum over groups), deff ``n / ESS``, groups not
    converged, and the mean ASMD before/after over groups and variables."""
    if diagnostics.empty:
        return pd.DataFrame(
            columns=[
                "tier",
                "generator",
                "n",
                "ess",
                "deff",
                "not_converged",
                "asmd_before",
                "asmd_after",
            ]
        )
    keys = [k for k in ("tier", "generator") if k in diagnostics.columns]
    group_cols = list(diagnostics.columns[: diagnostics.columns.get_loc("n")])
    groups = diagnostics.drop_duplicates(group_cols)
    out = groups.groupby(keys, as_index=False).agg(
        n=("n", "sum"),
        ess=("ess", "sum"),
        not_converged=("status", lambda s: int((s != "converged").sum())),
    )
    asmd = diagnostics.groupby(keys, as_index=False)[["asmd_before", "asmd_after"]].mean()
    out = out.merge(asmd, on=keys)
    out.insert(out.columns.get_loc("ess") + 1, "deff", out["n"] / out["ess"].replace(0, np.nan))
    return out


def before_after(plain: pd.DataFrame, weighted: pd.DataFrame) -> pd.DataFrame:
    """Overall-group scores side by side: value and CI unweighted, then calibrated."""

    def overall(scores: pd.DataFrame) -> pd.DataFrame:
        sel = scores[(scores["attribute"] == "overall") & (scores["group"] == "all")]
        return sel[[*CALIBRATED_PAIR_KEY, "value", "ci_low", "ci_high"]]

    return overall(plain).merge(
        overall(weighted), on=list(CALIBRATED_PAIR_KEY), how="inner", suffixes=("_before", "_after")
    )
