"""Calibrate a persons or personas table, and join the weights onto responses for scoring.

Python API::

    from personasim.calibrate import calibrate, load_targets
    result = calibrate(personas, load_targets("census,party"), by="state")
    result.weights      # person_id, tier, generator, weight
    result.diagnostics  # one row per group x target variable

Groups: every ``tier x generator`` of a personas table (a persons table is one group), times
the values of ``by`` (e.g. each state). A group is calibrated to the targets of its ``by``
value, else to the targets given for every group (the national ones for census and party).
A tier that lacks a target variable altogether (the meta tier has no ``political_views``) is
calibrated on the other variables, and a note says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from personasim.calibrate import diagnostics as D
from personasim.calibrate.methods import CalibrateOptions, calibrate_group
from personasim.calibrate.targets import check_targets, targets_for_group, usable_targets
from personasim.errors import ConfigError, DataError, did_you_mean

MODEL_KEYS = ["tier", "generator"]


@dataclass
class Calibration:
    """What :func:`calibrate` returns."""

    weights: pd.DataFrame
    """``person_id`` (+ ``tier``, ``generator`` for personas) and ``weight``."""
    diagnostics: pd.DataFrame
    """One row per group x target variable (see :mod:`personasim.calibrate.diagnostics`)."""
    keys: list[str]
    """The columns that name a group in ``diagnostics``."""
    notes: list[str] = field(default_factory=list)
    """Variables skipped for some tiers, groups without persons, ..."""


def _base_weights(frame: pd.DataFrame) -> np.ndarray:
    """The table's ``weight`` column (checked), else ones."""
    if "weight" not in frame.columns:
        return np.ones(len(frame))
    w = pd.to_numeric(frame["weight"], errors="coerce").to_numpy(float)
    if np.isnan(w).any() or (w < 0).any():
        raise DataError("the pool's weight column has missing or negative values")
    return w


def _check_by(pool: pd.DataFrame, targets: pd.DataFrame, by: str | None) -> None:
    """``by`` names a column; per-group targets need ``by``."""
    if by is not None and by not in pool.columns:
        raise ConfigError(
            f"--by {by!r}: the pool has no such column", hint=did_you_mean(by, pool.columns)
        )
    if by is None:
        grouped = targets[targets["group"] != ""]["variable"].unique()
        national = set(targets[targets["group"] == ""]["variable"])
        missing = sorted(set(grouped) - national)
        if missing:
            raise ConfigError(
                f"targets for {missing[0]!r} are given per group only",
                hint="calibrate per group with --by state",
            )


def _check_method(targets: pd.DataFrame, options: CalibrateOptions) -> None:
    """Post-stratification takes exactly one (possibly crossed) variable."""
    names = list(targets["variable"].unique())
    if options.method == "poststratify" and len(names) != 1:
        raise ConfigError(
            f"post-stratification needs exactly one target variable, got {', '.join(names)}",
            hint="cross them as a*b in a targets CSV, or use --method rake",
        )


def _present(
    frame: pd.DataFrame, targets: pd.DataFrame, values: dict[str, pd.Series]
) -> tuple[pd.DataFrame, list[str]]:
    """Targets restricted to the variables this group has values of; the names of the others."""
    absent = [v for v in targets["variable"].unique() if values[v].loc[frame.index].isna().all()]
    return targets[~targets["variable"].isin(absent)], absent


def _groups(pool: pd.DataFrame, by: str | None) -> tuple[list[str], Iterable]:
    """Group key columns and (key, frame) pairs."""
    keys = [k for k in MODEL_KEYS if k in pool.columns] + ([by] if by else [])
    if not keys:
        return [], [((), pool)]
    return keys, pool.groupby(keys, sort=True, observed=True, dropna=False)


def calibrate(
    pool: pd.DataFrame,
    targets: pd.DataFrame,
    by: str | None = None,
    options: CalibrateOptions | None = None,
    tiers: list[str] | None = None,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> Calibration:
    """Weights that make ``pool`` (persons or personas) match ``targets``, with diagnostics."""
    options = options or CalibrateOptions()
    if "person_id" not in pool.columns:
        raise DataError(
            "the pool lacks column 'person_id'", hint="give a persons or personas table"
        )
    if tiers is not None and "tier" in pool.columns:
        pool = pool[pool["tier"].astype(str).isin(tiers)]
        if pool.empty:
            raise ConfigError(f"no rows of tiers {tiers}", hint="check --tiers")
    pool = pool.reset_index(drop=True)
    targets, notes = usable_targets(targets, pool)
    if targets.empty:
        raise ConfigError("no target variable can be derived from the pool", hint=notes[0])
    values = check_targets(targets, pool)
    _check_by(pool, targets, by)
    _check_method(targets, options)
    base_all = _base_weights(pool)
    keys, groups = _groups(pool, by)
    weights, rows, skipped = np.zeros(len(pool)), [], set()
    for key, frame in (progress or iter)(list(groups)):
        key = key if isinstance(key, tuple) else (key,)
        labels = dict(zip(keys, (str(k) for k in key), strict=True))
        group_targets = targets_for_group(targets, labels.get(by, "") if by else "")
        group_targets, absent = _present(frame, group_targets, values)
        skipped.update((labels.get("tier", ""), v) for v in absent)
        base = base_all[frame.index]
        if group_targets.empty:
            weights[frame.index] = base
            continue
        label = " ".join(labels.values()) or "all"
        outcome, variables = calibrate_group(frame, base, group_targets, label, options, values)
        weights[frame.index] = outcome.weights
        rows += D.group_rows(labels, base, outcome, variables)
    notes += [
        f"tier {t or '-'}: no {v!r} values, calibrated without it" for t, v in sorted(skipped)
    ]
    out = pool[["person_id", *[k for k in MODEL_KEYS if k in pool.columns]]].copy()
    out["weight"] = weights
    return Calibration(out, pd.DataFrame(rows), keys, notes)


def _base_for(out: pd.DataFrame, own: pd.Series | None, persons: pd.DataFrame | None) -> pd.Series:
    """Fallback weight per row: the responses' own ``weight``, else the persons', else 1."""
    base = pd.Series(1.0, index=out.index)
    if persons is not None and "weight" in persons.columns:
        by_person = persons.drop_duplicates("person_id").set_index("person_id")["weight"]
        base = out["person_id"].map(by_person).fillna(1.0).astype(float)
    if own is not None:
        base = pd.to_numeric(own, errors="coerce").fillna(base)
    return base


def attach_weights(
    responses: pd.DataFrame, weights: pd.DataFrame, persons: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """``responses`` with a ``weight`` column joined from ``weights`` by ``person_id`` (and
    ``tier``/``generator`` when the weights have them), for :func:`personasim.scoring.score`.

    Rows the weights do not cover (a tier that was not calibrated) keep their base weight: the
    responses' own ``weight`` column, else the persons table's, else 1; a note counts them.
    Person ids are matched as text, so ``7`` and ``"7"`` are the same person.
    """
    if "person_id" not in weights.columns or "weight" not in weights.columns:
        raise DataError(
            "a weights table needs person_id and weight columns",
            hint="write one with `personasim calibrate`",
        )
    keys = [k for k in MODEL_KEYS if k in weights.columns and k in responses.columns]
    table = weights[["person_id", *keys, "weight"]].astype({"person_id": str})
    table = table.assign(**{k: table[k].fillna("").astype(str) for k in keys})
    table = table.drop_duplicates(["person_id", *keys]).rename(columns={"weight": "_w"})
    own = responses["weight"] if "weight" in responses.columns else None
    out = responses.drop(columns="weight", errors="ignore").reset_index(drop=True)
    join = pd.DataFrame({"person_id": out["person_id"].astype(str),
                         **{k: out[k].fillna("").astype(str) for k in keys}})  # fmt: skip
    found = join.merge(table, on=["person_id", *keys], how="left")["_w"]
    own = None if own is None else own.reset_index(drop=True)
    missing = found.isna()
    out["weight"] = found.where(~missing, _base_for(out, own, persons)).astype(float)
    notes = []
    if missing.any():
        notes.append(
            f"{int(missing.sum())} response row(s) without a calibrated weight keep "
            "their base weight"
        )
    return out, notes
