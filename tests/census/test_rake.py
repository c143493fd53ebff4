"""Raking: targets met on the real (shipped) tables; infeasible cells reported, no crash."""

from __future__ import annotations

import numpy as np
import pytest

from personasim.census import controls, tables
from personasim.census.controls import Control
from personasim.census.rake import RakeOptions, kish_ess, rake
from personasim.census.sample import rake_state


@pytest.mark.parametrize("state", ["CA", "VT", "TX"])
def test_raked_margins_match_acs_targets(state: str) -> None:
    seed, targets = tables.load_seed(), tables.load_targets()
    weights, report = rake_state(state, seed, targets)
    assert report.converged and not report.unmet
    figures = dict(targets.loc[targets.state == state, ["key", "value"]].values)
    for control in controls.build_controls(seed, figures):
        current = np.bincount(control.cells, weights=weights, minlength=control.size)
        expected = control.targets_for(current)
        np.testing.assert_allclose(current, expected, rtol=0.006, err_msg=control.name)
    assert weights.sum() == pytest.approx(figures["total"], rel=1e-3)
    assert 5_000 < report.ess < len(seed)


def test_infeasible_cell_is_reported_not_fatal() -> None:
    cells = np.array([0, 0, 1, 1], dtype=np.int16)
    control = Control(
        "toy", cells, np.array([10.0, 10.0, 5.0]), ("a", "b", "c"), universe_cell=False
    )
    weights, report = rake(np.ones(4), [control], "XX", RakeOptions())
    assert report.unmet == ["toy: c"]
    assert weights.sum() == pytest.approx(25.0)


def test_kish_ess() -> None:
    assert kish_ess(np.ones(10)) == pytest.approx(10)
    assert kish_ess(np.array([1.0, 0.0, 0.0])) == pytest.approx(1)


def test_cross_controls_follow_s2301_and_report_what_the_seed_cannot_reach() -> None:
    seed, targets = tables.load_seed(), tables.load_targets()
    figures = dict(targets.loc[targets.state == "VT", ["key", "value"]].values)
    control = controls.employment_by_age(seed, figures)
    teen = figures["emp_total:age:16 to 19 years"]
    assert control.target[0] == pytest.approx(teen * figures["emp_ratio:age:16 to 19 years"] / 100)
    assert control.target[:-1].sum() + control.target[-1] == pytest.approx(figures["total"])
    # a seed without employed 16-19 year olds cannot meet that cell: reported, not a crash
    employed_teen = (seed["age"].between(16, 19)) & seed["esr"].isin([1, 2])
    thin = seed[~employed_teen].reset_index(drop=True)
    names = [*controls.MARGINAL_CONTROLS, "employment_by_age"]
    weights, report = rake(
        thin["pwgtp"].to_numpy(), controls.build_controls(thin, figures, names), "VT", RakeOptions()
    )
    assert report.status == "infeasible" and not report.converged
    assert report.offending == "employment_by_age: 16 to 19 employed"
    assert np.isfinite(weights).all()
