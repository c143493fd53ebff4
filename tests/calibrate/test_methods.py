"""Raking, post-stratification, trimming and the diagnostics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personasim.calibrate import CalibrateOptions, calibrate, load_targets
from personasim.calibrate import diagnostics as D
from personasim.calibrate.methods import Variable, poststratify_group, rake_group, trim_weights
from personasim.census.controls import Control
from personasim.census.rake import RakeOptions, rake


def _targets(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["variable", "level", "share", "group"])


def test_raking_reproduces_every_acs_target_per_state(population: pd.DataFrame) -> None:
    targets = load_targets("census")
    result = calibrate(population, targets, by="state")
    d = result.diagnostics
    assert set(d["state"]) == {"VT", "NM"} and (d["status"] == "converged").all()
    assert d["max_abs_error_after"].max() < 1e-5
    assert (d["asmd_after"] <= d["asmd_before"] + 1e-9).all()
    # check one margin directly against the shipped ACS figures
    w = result.weights.set_index("person_id")["weight"]
    vt = population[population.state == "VT"]
    edu = (
        vt[vt.age >= 25]
        .groupby("education", observed=True)["person_id"]
        .apply(lambda ids: w.loc[ids].sum())
    )
    share = edu / edu.sum()
    want = targets[(targets.group == "VT") & (targets.variable == "education")]
    for level, target in zip(want.level, want.share, strict=True):
        assert share[level] == pytest.approx(target, abs=1e-5)
    # each state keeps its total weight
    base = population.groupby("state", observed=True)["weight"].sum()
    after = result.weights.merge(population[["person_id", "state"]]).groupby("state")["weight"]
    np.testing.assert_allclose(after.sum().sort_index(), base.sort_index(), rtol=1e-9)


def test_real_pool_without_a_targeted_level_is_infeasible(population: pd.DataFrame) -> None:
    vt = population[(population.state == "VT") & (population.household_language != "Other")]
    d = calibrate(vt, load_targets("census"), by="state").diagnostics
    assert set(d["status"]) == {"infeasible"}
    assert d["offending"].iloc[0] == "household_language: Other"
    # the other variables are still met; the language shares are renormalized without "Other"
    assert d[d.variable != "household_language"]["max_abs_error_after"].max() < 1e-5


def test_level_nobody_has_is_infeasible_and_named() -> None:
    pool = pd.DataFrame(
        {
            "person_id": range(4),
            "sex": ["Male", "Male", "Female", "Female"],
            "education": ["HS Graduate"] * 4,
        }
    )
    targets = _targets(
        [
            ("education", "HS Graduate", 0.6, ""),
            ("education", "Bachelor's", 0.4, ""),
            ("sex", "Male", 0.5, ""),
            ("sex", "Female", 0.5, ""),
        ]
    )
    d = calibrate(pool, targets).diagnostics
    assert set(d["status"]) == {"infeasible"}
    assert d["offending"].iloc[0] == "education: Bachelor's"


def test_stalled_run_is_never_called_converged() -> None:
    cells = np.array([0, 0, 1, 1, 0, 1], dtype=np.int16)
    other = np.array([0, 1, 0, 1, 1, 0], dtype=np.int16)
    a = Control("a", cells, np.array([10.0, 20.0]), ("x", "y"), universe_cell=False)
    b = Control("b", other, np.array([5.0, 10.0]), ("u", "v"), universe_cell=False)  # total 15
    w, report = rake(np.ones(6), [a, b], "XX", RakeOptions(max_iter=30, tol=1e-9))
    assert report.status == "stalled" and not report.converged
    assert report.offending.startswith("a:")
    assert report.iterations == 30


def test_rake_group_stalls_with_too_few_sweeps() -> None:
    cells1 = np.array([0, 0, 0, 1, 1, 1, 0, 1], dtype=np.int32)
    cells2 = np.array([0, 1, 1, 0, 0, 1, 1, 0], dtype=np.int32)
    v1 = Variable("sex", cells1, ("Male", "Female"), np.array([0.3, 0.7]))
    v2 = Variable("party", cells2, ("Democrat", "Republican"), np.array([0.8, 0.2]))
    out = rake_group(np.ones(8), [v1, v2], "g", CalibrateOptions(max_iter=1, tol=1e-12))
    assert out.status == "stalled" and out.offending
    converged = rake_group(np.ones(8), [v1, v2], "g", CalibrateOptions(max_iter=500, tol=1e-9))
    assert converged.status == "converged"
    assert D.weighted_shares(v1, converged.weights) == pytest.approx([0.3, 0.7])
    assert D.weighted_shares(v2, converged.weights) == pytest.approx([0.8, 0.2])


def test_diagnostics_match_hand_computed_values() -> None:
    w = np.array([1.0, 1.0, 2.0, 4.0])
    # n * sum w^2 / (sum w)^2 = 4 * 22 / 64
    assert D.kish_deff(w) == pytest.approx(4 * 22 / 64)
    assert D.max_weight_share(w) == pytest.approx(0.5)
    v = Variable("sex", np.array([0, 0, 1, 1]), ("Male", "Female"), np.array([0.5, 0.5]))
    # before (equal weights): p_hat = 0.5 -> 0; after: Male 2/8, |0.25-0.5|/0.5 = 0.5 per level
    assert D.asmd(v, np.ones(4)) == 0.0
    assert D.asmd(v, w) == pytest.approx(0.5)
    assert D.max_abs_error(v, w) == pytest.approx(0.25)
    # a person outside the universe (cell 2 = not in universe) does not count
    u = Variable("sex", np.array([0, 1, 2]), ("Male", "Female"), np.array([0.2, 0.8]))
    p = 1 / 3  # Male share among the covered with weights 1, 2
    expected = np.mean([abs(p - 0.2) / np.sqrt(0.16), abs(1 - p - 0.8) / np.sqrt(0.16)])
    assert D.asmd(u, np.array([1.0, 2.0, 50.0])) == pytest.approx(expected)
    from personasim.census.rake import kish_ess

    assert kish_ess(w) == pytest.approx(64 / 22) == pytest.approx(len(w) / D.kish_deff(w))


def test_trimming_caps_and_renormalizes() -> None:
    w = np.array([1.0, 1.0, 1.0, 1.0, 16.0])  # mean 4
    out, capped = trim_weights(w, ratio=2.0)
    assert out.sum() == pytest.approx(w.sum())
    assert out.max() <= 2.0 * w.mean() + 1e-9 and capped == 1
    # the cap is 8; the other four share 20 - 8 = 12 in proportion (all equal)
    np.testing.assert_allclose(out, [3, 3, 3, 3, 8])
    # 90th percentile: 1 + 0.6 * 15 = 10; the other four share 10
    p_out, p_capped = trim_weights(w, percentile=90)
    np.testing.assert_allclose(p_out, [2.5, 2.5, 2.5, 2.5, 10]) and p_capped == 1
    # a percentile below the mean caps at the mean (the only cap that keeps the total)
    np.testing.assert_allclose(trim_weights(w, percentile=50)[0], [4, 4, 4, 4, 4])
    same, none = trim_weights(w)
    assert none == 0 and (same == w).all()


def test_trim_rounds_trade_margins_for_the_cap(population: pd.DataFrame) -> None:
    targets = load_targets("census")
    vt = population[population.state == "VT"]
    loose = calibrate(vt, targets, options=CalibrateOptions(trim=1.3)).diagnostics
    rounds = calibrate(vt, targets, options=CalibrateOptions(trim=1.3, trim_rounds=6)).diagnostics
    assert rounds["max_abs_error_after"].max() < loose["max_abs_error_after"].max()
    assert rounds["max_weight_share"].iloc[0] <= 1.3 / len(vt) + 1e-12


def test_poststratification_is_exact_in_one_step() -> None:
    v = Variable(
        "sex*age_band",
        np.array([0, 0, 0, 1, 2]),
        ("Male | 18-24", "Female | 18-24"),
        np.array([0.25, 0.75]),
    )
    out = poststratify_group(np.ones(5), v, CalibrateOptions(method="poststratify"))
    assert out.status == "converged"
    np.testing.assert_allclose(out.weights, [1 / 3, 1 / 3, 1 / 3, 3.0, 1.0])
    empty = Variable("sex", np.array([0, 0]), ("Male", "Female"), np.array([0.5, 0.5]))
    bad = poststratify_group(np.ones(2), empty, CalibrateOptions(method="poststratify"))
    assert bad.status == "infeasible" and bad.offending == "sex: Female"


def test_existing_census_callers_see_the_status(population: pd.DataFrame) -> None:
    from personasim.census import tables
    from personasim.census.sample import rake_state

    _, report = rake_state("VT", tables.load_seed(), tables.load_targets())
    assert report.status == "converged" and report.converged and report.offending == ""


def test_status_after_trimming_says_the_margins_are_off(population: pd.DataFrame) -> None:
    # issue 19 §7: the cap moves the weights after raking converged; plain "converged" hid that
    vt = population[population.state == "VT"]
    result = calibrate(vt, load_targets("census"), options=CalibrateOptions(trim=1.3))
    d = result.diagnostics
    error = d["max_abs_error_after"].max()
    assert error > 1e-3 and (d["status"] == "converged").all()
    assert (d["offending"] == f"trimmed: max margin error {error:.3f}").all()
    line = D.format_diagnostics(d, result.keys)
    assert f"status=converged, trimmed: max margin error {error:.3f}" in line
    untrimmed = calibrate(vt, load_targets("census")).diagnostics
    assert (untrimmed["offending"] == "").all()
