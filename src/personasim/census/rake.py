"""Iterative proportional fitting (raking) of seed weights to a state's controls.

Each sweep scales the weights so that one control after another matches its targets exactly;
sweeps repeat until every cell is within ``tol`` (relative) of its target or ``max_iter`` is
reached. Cells that the seed cannot reach (a positive target but no seed person) are reported
as unmet and their target is spread over the reachable cells of the same control, so raking
never crashes and the remaining margins stay consistent.

Every report carries a :data:`Status`: ``infeasible`` when some cell with a positive target has
nobody in it (``offending`` names the first such ``control: cell``), else ``stalled`` when
``max_iter`` sweeps left a cell outside the tolerance (``offending`` names the worst control),
else ``converged``. ``converged`` is true only for the last, so a stalled run is never reported
as converged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from personasim.census.controls import Control


class RakeOptions(BaseModel):
    """How hard to rake."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_iter: int = Field(100, ge=1, description="Most sweeps over all controls.")
    tol: float = Field(
        5e-3,
        gt=0,
        description="Stop when every cell's relative error is below this. The ACS "
        "tables of one state disagree with each other by 0.1-0.3 % (e.g. civilians 18+ in "
        "DP02 vs adults in DP05), so a tighter tolerance only makes IPF oscillate longer.",
    )
    unmet_above: float = Field(
        0.01, gt=0, description="A control whose worst cell is off by more is reported unmet."
    )


Status = Literal["converged", "stalled", "infeasible"]


class RakeReport(BaseModel):
    """What raking achieved for one state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = Field(description="USPS code of the target state.")
    iterations: int = Field(description="Sweeps run.")
    converged: bool = Field(
        description="Whether every cell came within the tolerance and every cell was reachable "
        "(the same as ``status == 'converged'``)."
    )
    status: Status = Field("converged", description="converged, stalled or infeasible.")
    offending: str = Field(
        "", description="The control (and cell) that made the run stalled or infeasible."
    )
    max_rel_error: dict[str, float] = Field(description="Largest relative cell error per control.")
    ess: float = Field(description="Kish effective sample size of the raked weights.")
    n_seed: int = Field(description="Seed persons with positive weight.")
    unmet: list[str] = Field(default_factory=list, description="Cells the seed could not reach.")
    note: str = Field("", description="Anything the user should know (e.g. the DC fallback).")


def kish_ess(weights: np.ndarray) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2``."""
    total = weights.sum()
    return float(total * total / np.square(weights).sum()) if total > 0 else 0.0


def _cell_totals(control: Control, weights: np.ndarray) -> np.ndarray:
    """Weighted total per cell."""
    return np.bincount(control.cells, weights=weights, minlength=control.size)


def _make_feasible(control: Control, seed_totals: np.ndarray) -> tuple[Control, list[str]]:
    """Move targets of cells no seed person reaches onto the reachable cells of the control."""
    empty = (seed_totals <= 0) & (control.target > 0)
    if not empty.any():
        return control, []
    target = control.target.copy()
    inside = np.arange(control.size) < (control.size - 1 if control.universe_cell else control.size)
    reachable = inside & ~empty
    moved = target[empty & inside].sum()
    target[empty] = 0.0
    if reachable.any() and not control.share:
        target[reachable] += moved * target[reachable] / max(target[reachable].sum(), 1e-12)
    elif reachable.any():
        target[reachable] /= max(target[reachable].sum(), 1e-12)
    fixed = Control(
        control.name, control.cells, target, control.labels, control.universe_cell, control.share
    )
    return fixed, [f"{control.name}: {control.labels[i]}" for i in np.flatnonzero(empty)]


def max_relative_errors(controls: list[Control], weights: np.ndarray) -> dict[str, float]:
    """Largest ``|current - target| / target`` over the positive-target cells of each control."""
    errors = {}
    for control in controls:
        current = _cell_totals(control, weights)
        target = control.targets_for(current)
        positive = target > 0
        rel = np.abs(current[positive] - target[positive]) / target[positive]
        errors[control.name] = float(rel.max()) if rel.size else 0.0
    return errors


def _profiles(controls: list[Control]) -> tuple[np.ndarray, np.ndarray]:
    """Group persons with identical cells in every control: (first row per group, group id)."""
    key = np.zeros(len(controls[0].cells), dtype=np.int64)
    for control in controls:
        key = key * control.size + control.cells
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first, inverse


def _on_profiles(controls: list[Control], first: np.ndarray) -> list[Control]:
    """The same controls over profiles instead of persons."""
    return [
        Control(c.name, c.cells[first], c.target, c.labels, c.universe_cell, c.share)
        for c in controls
    ]


def _ipf(w: np.ndarray, controls: list[Control], options: RakeOptions) -> tuple[int, dict]:
    """Sweep the controls over ``w`` in place until within tolerance; (sweeps, errors)."""
    iterations, errors = 0, max_relative_errors(controls, w)
    while iterations < options.max_iter and max(errors.values()) > options.tol:
        iterations += 1
        for control in controls:
            current = _cell_totals(control, w)
            ratio = np.divide(
                control.targets_for(current), current, out=np.ones_like(current), where=current > 0
            )
            w *= ratio[control.cells]
        errors = max_relative_errors(controls, w)
    return iterations, errors


def rake(
    weights: np.ndarray, controls: list[Control], state: str, options: RakeOptions | None = None
) -> tuple[np.ndarray, RakeReport]:
    """Rake ``weights`` to ``controls``; returns the new weights and a report.

    Persons who share a cell in every control are raked as one profile (same factor), which is
    exact and about four times faster than raking person by person.
    """
    options = options or RakeOptions()
    seed_w = weights.astype(np.float64)
    feasible, unmet = [], []
    for control in controls:
        fixed, missing = _make_feasible(control, _cell_totals(control, seed_w))
        feasible.append(fixed)
        unmet += missing
    first, inverse = _profiles(feasible)
    start = np.bincount(inverse, weights=seed_w)
    profile_w = start.copy()
    iterations, errors = _ipf(profile_w, _on_profiles(feasible, first), options)
    factor = np.divide(profile_w, start, out=np.zeros_like(start), where=start > 0)
    w = seed_w * factor[inverse]
    status, offending = rake_status(unmet, errors, options.tol)
    unmet += [
        f"{name}: off by {err:.1%}" for name, err in errors.items() if err > options.unmet_above
    ]
    report = RakeReport(
        state=state,
        iterations=iterations,
        converged=status == "converged",
        status=status,
        offending=offending,
        max_rel_error=errors,
        ess=kish_ess(w),
        n_seed=int((w > 0).sum()),
        unmet=unmet,
    )
    return w, report


def rake_status(unreachable: list[str], errors: dict[str, float], tol: float) -> tuple[Status, str]:
    """``infeasible`` (first unreachable cell), else ``stalled`` (worst control), else
    ``converged``; with the offending control."""
    if unreachable:
        return "infeasible", unreachable[0]
    worst = max(errors, key=errors.get) if errors else ""
    if worst and errors[worst] > tol:
        return "stalled", f"{worst}: off by {errors[worst]:.2%}"
    return "converged", ""
