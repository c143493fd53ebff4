"""Scores against a respondent-sample truth (``microdata:``): the real share's Wilson interval
from Kish's effective n, alignment by group against a hand computation, and intervals that
widen when the truth's own sampling noise is added (per question, per group, overall)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.scoring import intervals as I
from personasim.scoring.crosstab import crosstab, wilson_interval
from personasim.scoring.score import score
from personasim.truth import Truth, load_truth

SURVEY = """id: tiny
questions:
  - id: q1
    text: Do you agree?
    options: [Agree, Disagree]
  - id: q2
    text: Would you?
    options: ["Yes", "No"]
"""

# weight, q1 (1 agree, 2 disagree), q2 (1 yes, 2 no), sex (1 male, 2 female)
RESPONDENTS = """wt,a1,a2,sex
2,1,1,1
1,2,1,1
3,2,2,2
1,1,1,2
"""

MAPPING = """data: people.csv
survey: tiny.yaml
weight: wt
questions:
  q1: {column: a1, codes: {1: Agree, 2: Disagree}}
  q2: {column: a2, codes: {1: "Yes", 2: "No"}}
groups:
  - {column: sex, attribute: sex, codes: {1: Male, 2: Female}}
"""

# person -> (sex, weight, P(Agree) on q1, P(Yes) on q2)
PERSONS = {
    "p1": ("Male", 1.0, 0.5, 0.8),
    "p2": ("Male", 3.0, 1.0, 0.6),
    "p3": ("Female", 1.0, 0.2, 0.5),
    "p4": ("Female", 1.0, 0.0, 0.1),
}


def _truth(folder: Path, respondents: str = RESPONDENTS) -> Truth:
    (folder / "tiny.yaml").write_text(SURVEY)
    (folder / "people.csv").write_text(respondents)
    (folder / "map.yaml").write_text(MAPPING)
    return load_truth(f"microdata:{folder / 'map.yaml'}")


def _responses(persons: dict[str, tuple[str, float, float, float]]) -> pd.DataFrame:
    rows = [
        {
            "person_id": pid,
            "question_id": qid,
            "tier": "meta",
            "generator": "g",
            "simulator": "s",
            "estimator": "logprobs",
            "probs": [p, 1 - p],
        }
        for pid, (_, _, agree, yes) in persons.items()
        for qid, p in (("q1", agree), ("q2", yes))
    ]
    return pd.DataFrame(rows)


def _persons(persons: dict[str, tuple[str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": list(persons),
            "sex": [v[0] for v in persons.values()],
            "weight": [v[1] for v in persons.values()],
        }
    )


def test_truth_share_interval_is_wilson_with_kish_n_eff(tmp_path: Path) -> None:
    from statsmodels.stats.proportion import proportion_confint

    truth = _truth(tmp_path)
    table = crosstab(_responses(PERSONS), ["sex"], _persons(PERSONS), n_boot=0, truth=truth)
    male = table[(table["attribute"] == "sex") & (table["group"] == "Male")]
    agree = male[(male["question_id"] == "q1") & (male["option"] == "Agree")].iloc[0]
    # Male respondents weigh 2 (agree) and 1: share 2/3, n_eff = 3^2 / (4 + 1) = 1.8
    assert agree["truth_share"] == pytest.approx(2 / 3)
    assert agree["truth_n_eff"] == pytest.approx(1.8)
    # by hand: z = 1.96, z^2/m = 2.13416, center = (2/3 + 1.06708) / 3.13416 = 0.55317,
    # half = 1.96 / 3.13416 * sqrt(0.22222 / 1.8 + 3.84146 / 12.96) = 0.40521
    assert agree["truth_ci_low"] == pytest.approx(0.14796, abs=2e-4)
    assert agree["truth_ci_high"] == pytest.approx(0.95838, abs=2e-4)
    # every cell against statsmodels' Wilson interval with n_eff as the count
    rows = table.dropna(subset=["truth_n_eff"])
    low, high = proportion_confint(
        rows["truth_share"] * rows["truth_n_eff"], rows["truth_n_eff"], method="wilson"
    )
    assert rows["truth_ci_low"].to_numpy() == pytest.approx(np.asarray(low), abs=1e-6)
    assert rows["truth_ci_high"].to_numpy() == pytest.approx(np.asarray(high), abs=1e-6)
    # the simulated side stays as it was: Male q1 = (0.5 * 1 + 1.0 * 3) / 4
    assert agree["share"] == pytest.approx(0.875)


def test_wilson_interval_edges() -> None:
    low, high = wilson_interval([0.0, 1.0, 0.5], [10.0, 10.0, np.nan])
    assert low[0] == 0.0 and 0 < high[0] < 0.35  # a share of 0 still has an upper end
    assert high[1] == pytest.approx(1.0) and 0.65 < low[1] < 1
    assert np.isnan(low[2]) and np.isnan(high[2])  # an exact truth has no interval


def test_alignment_by_group_matches_hand_computation(tmp_path: Path) -> None:
    result = score(_responses(PERSONS), _truth(tmp_path), _persons(PERSONS), n_boot=50)
    by = result.by_group.set_index(["attribute", "group"])
    # Male truth: q1 Agree 2/3, q2 Yes 1; simulated q1 (0.5 + 3) / 4 = 0.875, q2 (0.8 + 1.8) / 4
    # = 0.65: alignment 1 - TV = 1 - 0.20833 and 1 - 0.35, mean 0.720833
    assert by.loc[("sex", "Male"), "value"] == pytest.approx((1 - 0.875 + 2 / 3 + 0.65) / 2)
    # Female truth: q1 Agree 1/4, q2 Yes 1/4; simulated 0.1 and 0.3: mean of 0.85 and 0.95
    assert by.loc[("sex", "Female"), "value"] == pytest.approx(0.9)
    # overall truth: q1 3/7, q2 4/7; simulated 3.7/6 and 3.2/6
    overall = 1 - (abs(3.7 / 6 - 3 / 7) + abs(3.2 / 6 - 4 / 7)) / 2
    assert by.loc[("overall", "all"), "value"] == pytest.approx(overall)
    assert by.loc[("sex", "Male"), "questions"] == 2 and by.loc[("sex", "Male"), "n"] == 2
    assert by.loc[("sex", "Female"), "truth_n"] == 2
    assert by.loc[("sex", "Female"), "truth_n_eff"] == pytest.approx(16 / 10)
    # the overall row is the summary's alignment: the same joint draw, the same interval
    summary = result.summary.set_index("metric").loc["alignment"]
    for column in ("value", "ci_low", "ci_high"):
        assert by.loc[("overall", "all"), column] == pytest.approx(summary[column])
    # by_group=False (the study's calibrated pass) skips only that table
    plain = score(
        _responses(PERSONS), _truth(tmp_path), _persons(PERSONS), n_boot=50, by_group=False
    )
    assert plain.by_group.empty and list(plain.by_group.columns) == list(result.by_group.columns)
    pd.testing.assert_frame_equal(plain.scores, result.scores)


def _many(n: int, seed: int) -> dict[str, tuple[str, float, float, float]]:
    rng = np.random.default_rng(seed)
    sexes = np.where(np.arange(n) % 2, "Male", "Female")
    return {
        f"p{i}": (str(sexes[i]), 1.0, float(rng.beta(2, 3)), float(rng.beta(3, 2)))
        for i in range(n)
    }


def test_truth_noise_widens_the_intervals_it_should(tmp_path: Path) -> None:
    """The same shares scored against a 4-respondent sample and against an exact truth (the
    table without n_eff): with the sample's noise every interval is wider, per question, per
    group and overall; the point values do not move. (A real share of exactly 0 or 1 has no
    parametric noise: one more man answers "No" so that no group is all one answer.)"""
    sample = _truth(tmp_path, RESPONDENTS + "1,2,2,1\n")
    exact = Truth(sample.kind, sample.survey, sample.table.drop(columns=["n", "n_eff"]))
    persons = _many(400, 1)
    args = (_responses(persons), _persons(persons))
    noisy = score(args[0], sample, args[1], n_boot=200)
    sure = score(args[0], exact, args[1], n_boot=200)

    def width(frame: pd.DataFrame) -> pd.Series:
        return frame["ci_high"] - frame["ci_low"]

    keys = ["attribute", "group", "question_id"]
    a = noisy.scores[noisy.scores["metric"] == "alignment"].set_index(keys)
    b = sure.scores[sure.scores["metric"] == "alignment"].set_index(keys)
    assert (a["value"] == b["value"]).all()
    assert (width(a) > width(b) + 0.05).all()  # n_eff <= 5 respondents vs 200 persons a group
    g = noisy.by_group.set_index(["attribute", "group"])
    h = sure.by_group.set_index(["attribute", "group"])
    assert (g["value"] == h["value"]).all()
    assert (width(g) > width(h) + 0.05).all()
    assert h["truth_n_eff"].isna().all() and g["truth_n_eff"].notna().all()


def test_truth_replicates_have_kish_variance() -> None:
    q, n_eff = np.array([0.2, 0.5, 0.3]), 37.4
    draws = I.truth_replicates(q, n_eff, 40_000, seed=3)
    assert draws.sum(axis=1) == pytest.approx(np.ones(len(draws)))
    assert draws.mean(axis=0) == pytest.approx(q, abs=0.003)
    # multinomial of round(n_eff) = 37 respondents: var = q (1 - q) / 37
    assert draws.var(axis=0) == pytest.approx(q * (1 - q) / 37, rel=0.03)
    assert I.truth_replicates(np.array([0.0, 1.0]), 5, 10, 0)[:, 0].max() == 0
