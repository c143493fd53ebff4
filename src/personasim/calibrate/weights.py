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
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.calibrate import diagnostics as D
from personasim.calibrate.methods import CalibrateOptions, calibrate_group
from personasim.calibrate.targets import check_targets, targets_for_group, usable_targets
from personasim.core.errors import ConfigError, DataError, did_you_mean
from personasim.core.keys import PERSONA_MODEL_KEY


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


def _check_pool(pool: pd.DataFrame) -> None:
    """A pool with rows, each person once per tier and generator, and some base weight."""
    if pool.empty:
        raise DataError("the pool has no rows", hint="give a persons or personas table with rows")
    key = ["person_id", *[k for k in PERSONA_MODEL_KEY if k in pool.columns]]
    repeated = int(pool.duplicated(key).sum())
    if repeated:
        raise DataError(
            f"the pool has {repeated} row(s) repeating a {', '.join(key)} of another "
            "row: each person is calibrated once",
            hint="give a table with one row per person (per tier and generator)",
        )
    if _base_weights(pool).sum() <= 0:
        raise DataError(
            "the pool's weight column is zero on every row",
            hint="drop the weight column (all persons count alike) or fix it",
        )


def _check_by(pool: pd.DataFrame, targets: pd.DataFrame, by: str | None) -> None:
    """``by`` names a column; per-group targets need ``by``."""
    if by is not None and by not in pool.columns:
        raise ConfigError(
            f"--by {by!r}: the pool has no such column", hint=did_you_mean(by, pool.columns)
        )
    named = set(targets["group"]) - {""}
    if by is not None and named and not named & set(pool[by].dropna().astype(str)):
        raise ConfigError(
            f"no person of the pool has a {by} the targets name ({', '.join(sorted(named)[:5])})",
            hint=f"the targets' group column holds values of --by {by}",
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
    keys = [k for k in PERSONA_MODEL_KEY if k in pool.columns] + ([by] if by else [])
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
    _check_pool(pool)
    targets, notes = usable_targets(targets, pool)
    if targets.empty:
        raise ConfigError(
            "no target variable can be derived from the pool",
            hint=notes[0] if notes else "give targets with rows",
        )
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
    if not rows:
        raise ConfigError(
            "no group of the pool has targets: nothing was calibrated",
            hint="check the targets' group column against --by",
        )
    notes += [
        f"tier {t or '-'}: no {v!r} values, calibrated without it" for t, v in sorted(skipped)
    ]
    out = pool[["person_id", *[k for k in PERSONA_MODEL_KEY if k in pool.columns]]].copy()
    out["weight"] = weights
    return Calibration(out, pd.DataFrame(rows), keys, notes)


def read_weights(path: str | Path, person_ids: pd.Series | None = None) -> pd.DataFrame:
    """A weights table from ``personasim calibrate``, checked: every weight a positive finite
    number, one row per person (per tier and generator), and (given the ``person_ids`` it is
    for) at least one of them among its persons.

    An unusable weight is refused, not skipped: one :class:`DataError` naming the file and
    counting the bad rows (text, missing, infinite, zero or negative)."""
    from personasim.core.tables import read_table

    frame = read_table(
        path, "weights table", ["person_id", "weight"], hint="write one with `personasim calibrate`"
    )
    values = pd.to_numeric(frame["weight"], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        first = frame["weight"].tolist()[int(np.flatnonzero(bad)[0])]
        raise DataError(
            f"{path}: {int(bad.sum())} of {len(frame)} weight(s) are not positive "
            f"finite numbers (first: {first!r})",
            hint="recompute the weights with `personasim calibrate`",
        )
    key = ["person_id", *[k for k in PERSONA_MODEL_KEY if k in frame.columns]]
    repeated = int(frame.astype({"person_id": str}).duplicated(key).sum())
    if repeated:
        raise DataError(
            f"{path}: {repeated} row(s) repeat the {', '.join(key)} of another row",
            hint="keep one weight per person (per tier and generator)",
        )
    if (
        person_ids is not None
        and len(person_ids)
        and not frame["person_id"].astype(str).isin(set(person_ids.astype(str))).any()
    ):
        raise DataError(
            f"{path}: none of its {len(frame)} person_id(s) is among the persons answering",
            hint="give the weights calibrated on these personas",
        )
    return frame.assign(weight=values)


class WeightLookup:
    """Calibrated weights by ``person_id`` (and ``tier``/``generator`` when the weights table has
    them and the responses do too), matched as text: ``7`` and ``"7"`` are the same person."""

    def __init__(self, weights: pd.DataFrame, response_columns: Iterable[str]) -> None:
        if "person_id" not in weights.columns or "weight" not in weights.columns:
            raise DataError(
                "a weights table needs person_id and weight columns",
                hint="write one with `personasim calibrate`",
            )
        columns = set(response_columns)
        self.keys = [k for k in PERSONA_MODEL_KEY if k in weights.columns and k in columns]
        table = weights[["person_id", *self.keys, "weight"]].astype({"person_id": str})
        table = table.assign(**{k: table[k].fillna("").astype(str) for k in self.keys})
        table = table.drop_duplicates(["person_id", *self.keys])
        self.index = pd.Index(
            self._joined(table["person_id"].to_numpy(), [table[k].to_numpy() for k in self.keys])
        )
        self.values = np.append(
            pd.to_numeric(table["weight"], errors="coerce").to_numpy(float), np.nan
        )

    @staticmethod
    def _joined(person: np.ndarray, models: list[np.ndarray]) -> list[str]:
        """One text key per row."""
        return ["\x1f".join(parts) for parts in zip(person, *models, strict=True)]

    def lookup(self, person: np.ndarray, models: dict[str, np.ndarray]) -> np.ndarray:
        """The calibrated weight of each row (NaN where the table does not cover it); ``person``
        and ``models`` (tier, generator) as text."""
        keys = self._joined(
            np.asarray(person, dtype=object),
            [np.asarray(models[k], dtype=object) for k in self.keys],
        )
        return self.values[self.index.get_indexer(keys)]


def base_weight(own: np.ndarray | None, by_person: np.ndarray | None, rows: int) -> np.ndarray:
    """Fallback weight of rows no calibrated weight covers: the responses' own ``weight``
    (``own``, NaN where missing), else the persons table's (``by_person``, NaN for a person not
    in it), else 1."""
    base = np.ones(rows) if by_person is None else np.where(np.isnan(by_person), 1.0, by_person)
    return base if own is None else np.where(np.isnan(own), base, own)


def attach_weights(
    responses: pd.DataFrame, weights: pd.DataFrame, persons: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """``responses`` with a ``weight`` column joined from ``weights`` (see
    :class:`WeightLookup`), for :func:`personasim.scoring.score.score` (which also takes the weights
    itself, streaming the responses).

    Rows the weights do not cover (a tier that was not calibrated) keep their base weight
    (:func:`base_weight`); a note counts them.
    """
    lookup = WeightLookup(weights, responses.columns)
    out = responses.reset_index(drop=True)
    person = out["person_id"].astype(str).to_numpy()
    found = lookup.lookup(
        person, {k: out[k].fillna("").astype(str).to_numpy() for k in lookup.keys}
    )
    own = (
        pd.to_numeric(out["weight"], errors="coerce").to_numpy(float)
        if "weight" in out.columns
        else None
    )
    by_person = None
    if persons is not None and "weight" in persons.columns:
        table = persons.drop_duplicates("person_id")
        index = pd.Index(table["person_id"].astype(str))
        values = np.append(pd.to_numeric(table["weight"], errors="coerce").to_numpy(float), np.nan)
        by_person = values[index.get_indexer(person)]
    missing = np.isnan(found)
    out = out.drop(columns="weight", errors="ignore")
    out["weight"] = np.where(missing, base_weight(own, by_person, len(out)), found)
    notes = []
    if missing.any():
        notes.append(
            f"{int(missing.sum())} response row(s) without a calibrated weight keep "
            "their base weight"
        )
    return out, notes
