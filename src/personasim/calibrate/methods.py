"""Calibration methods: raking (the census stage's own IPF), post-stratification, trimming.

All three keep each group's total weight: the calibrated weights are the base weights (the
table's ``weight`` column, else 1) times a factor, and the factors only move weight between
persons of the same group.

* **Raking** builds one share control per target variable (a cell per level, plus one "not in
  universe" cell for persons the variable does not cover, whose weight is left alone) and hands
  them to :func:`personasim.census.rake.rake`. Its status is *converged*, *stalled* (``max_iter``
  sweeps left a margin outside ``tol``) or *infeasible* (a level with a positive target has
  nobody in the group; its share is spread over the other levels and the run carries on).
* **Post-stratification** on one (possibly crossed, ``a*b``) variable:
  ``w_i = b_i * share_c * B / B_c`` with ``B`` the base weight of the covered persons and
  ``B_c`` that of cell ``c``; exact in one step.
* **Trimming** caps every weight at ``trim`` times the mean weight (or at the ``trim_percentile``
  percentile, never below the mean), gives the removed weight back to the uncapped persons in
  proportion to their weight, and repeats until no weight exceeds the cap; with
  ``trim_rounds > 1`` raking and trimming alternate, ending with a trim (so the cap always holds
  and the margins are as close as the cap allows; the diagnostics show how close).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from personasim.calibrate.options import CalibrateOptions
from personasim.calibrate.targets import variable_values
from personasim.census.controls import Control
from personasim.census.rake import RakeOptions, Status, rake, rake_status
from personasim.core.errors import ConfigError

NIU = "not in universe"


@dataclass
class Variable:
    """One target variable on a group: each person's cell and the level shares."""

    name: str
    cells: np.ndarray
    """Index into ``levels``; ``len(levels)`` for persons the variable does not cover."""
    levels: tuple[str, ...]
    shares: np.ndarray

    def control(self) -> Control:
        """The raking share control (the last cell is "not in universe")."""
        target = np.append(self.shares / max(self.shares.sum(), 1e-300), 0.0)
        return Control(
            self.name, self.cells, target, (*self.levels, NIU), universe_cell=True, share=True
        )


@dataclass
class Outcome:
    """Calibrated weights of one group and how the method went."""

    weights: np.ndarray
    iterations: int
    status: Status
    offending: str
    trimmed: int = 0
    """Persons whose weight the cap lowered."""


def level_codes(values: pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``levels``; ``len(levels)`` for missing or unnamed values."""
    text = values.astype("category")
    text = text.cat.rename_categories([str(c) for c in text.cat.categories])
    codes = pd.Categorical(text.astype(object), categories=list(levels)).codes
    return np.where(codes < 0, len(levels), codes).astype(np.int32)


def build_variables(
    frame: pd.DataFrame, targets: pd.DataFrame, values: dict[str, pd.Series] | None = None
) -> list[Variable]:
    """One :class:`Variable` per target variable (targets of one group); ``values`` are the
    persons' levels when already derived (indexed like ``frame``)."""
    out = []
    for name, rows in targets.groupby("variable", sort=False):
        levels = tuple(rows["level"].astype(str))
        column = values[str(name)].loc[frame.index] if values else variable_values(frame, name)
        if column is None:
            raise ConfigError(f"the pool has no variable {name!r}", hint="check --targets")
        out.append(
            Variable(str(name), level_codes(column, levels), levels, rows["share"].to_numpy(float))
        )
    return out


def trim_weights(
    w: np.ndarray, ratio: float | None = None, percentile: float | None = None
) -> tuple[np.ndarray, int]:
    """Cap weights at ``ratio`` x mean (or the ``percentile``, at least the mean), keep the total;
    returns (weights, how many were capped).

    The removed weight goes to the uncapped persons in proportion to their weight; this repeats
    until nothing exceeds the cap (at most ``len(w)`` rounds, usually a few).
    """
    w = np.asarray(w, dtype=float).copy()
    if (ratio is None and percentile is None) or w.sum() <= 0:
        return w, 0
    cap = ratio * w.mean() if ratio is not None else float(np.percentile(w, percentile))
    cap = max(cap, w.mean())  # below the mean no set of capped weights keeps the total
    total, capped = w.sum(), np.zeros(len(w), dtype=bool)
    for _ in range(len(w)):
        over = (w > cap * (1 + 1e-12)) & ~capped
        if not over.any():
            break
        capped |= over
        w[capped] = cap
        free = ~capped & (w > 0)
        if not free.any():
            break
        w[free] *= (total - cap * capped.sum()) / w[free].sum()
    return w, int(capped.sum())


def rake_group(
    base: np.ndarray, variables: list[Variable], label: str, options: CalibrateOptions
) -> Outcome:
    """Rake ``base`` to every variable's shares, trimming between rounds when asked."""
    controls = [v.control() for v in variables]
    rake_options = RakeOptions(max_iter=options.max_iter, tol=options.tol)
    w, iterations, trimmed = np.asarray(base, float), 0, 0
    rounds = options.trim_rounds if _trims(options) else 1
    for _ in range(rounds):
        w, report = rake(w, controls, label, rake_options)
        iterations += report.iterations
        w, trimmed = trim_weights(w, options.trim, options.trim_percentile)
    return Outcome(w, iterations, report.status, report.offending, trimmed)


def _trims(options: CalibrateOptions) -> bool:
    return options.trim is not None or options.trim_percentile is not None


def poststratify_group(base: np.ndarray, variable: Variable, options: CalibrateOptions) -> Outcome:
    """Post-stratify ``base`` on one variable; infeasible when a targeted cell is empty."""
    base = np.asarray(base, float)
    size = len(variable.levels)
    totals = np.bincount(variable.cells, weights=base, minlength=size + 1)[:size]
    shares = variable.shares / max(variable.shares.sum(), 1e-300)
    empty = (totals <= 0) & (shares > 0)
    unreachable = [f"{variable.name}: {variable.levels[i]}" for i in np.flatnonzero(empty)]
    shares = np.where(empty, 0.0, shares)
    shares = shares / shares.sum() if shares.sum() > 0 else shares
    covered = variable.cells < size
    factor = np.divide(shares * totals.sum(), totals, out=np.zeros(size), where=totals > 0)
    w = base.copy()
    w[covered] = base[covered] * factor[variable.cells[covered]]
    w, trimmed = trim_weights(w, options.trim, options.trim_percentile)
    status, offending = rake_status(unreachable, {}, options.tol)
    return Outcome(w, 1, status, offending, trimmed)


def calibrate_group(
    frame: pd.DataFrame,
    base: np.ndarray,
    targets: pd.DataFrame,
    label: str,
    options: CalibrateOptions,
    values: dict[str, pd.Series] | None = None,
) -> tuple[Outcome, list[Variable]]:
    """Calibrated weights of one group's persons to the targets that apply to it (``values``:
    the persons' levels of each variable when already derived)."""
    variables = build_variables(frame, targets, values)
    if options.method == "poststratify":
        if len(variables) != 1:
            names = ", ".join(v.name for v in variables)
            raise ConfigError(
                f"post-stratification needs exactly one target variable, got {names}",
                hint="cross them as a*b in a targets CSV, or use --method rake",
            )
        return poststratify_group(base, variables[0], options), variables
    return rake_group(base, variables, label, options), variables
