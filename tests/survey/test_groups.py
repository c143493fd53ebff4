"""OpinionQA groups derived from census attributes, and per-group scoring on real Pew counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personasim.census import sample_population
from personasim.core.states import STATE_FIPS
from personasim.scoring.score import score
from personasim.survey.groups import REGIONS, age_group, derive_group, with_opinionqa_groups
from personasim.truth import load_truth
from tests.conftest import require_shared_data


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    """Real census draws from four states, one per region."""
    return sample_population(states=["CA", "TX", "VT", "OH"], per_state=400, seed=3)


def test_age_brackets_at_their_edges() -> None:
    ages = pd.Series([17, 18, 29, 30, 49, 50, 64, 65, 94])
    expected = [None, "18-29", "18-29", "30-49", "30-49", "50-64", "50-64", "65+", "65+"]
    assert age_group(ages).tolist() == expected


def test_regions_cover_every_state_once() -> None:
    codes = [code for states in REGIONS.values() for code in states]
    assert sorted(codes) == sorted(STATE_FIPS)  # 50 states and DC, no repeats


def test_race_puts_hispanic_persons_of_any_race_in_hispanic(population: pd.DataFrame) -> None:
    race = derive_group(population, "RACE")
    hispanic = population["hispanic"].astype(str) == "Hispanic or Latino"
    assert hispanic.any() and (race[hispanic] == "Hispanic").all()
    assert (race[~hispanic] != "Hispanic").all()
    white = (population["race"].astype(str) == "White") & ~hispanic
    assert (race[white] == "White").all() and (race == "White").sum() == white.sum()


def test_education_leaves_some_college_without_a_group(population: pd.DataFrame) -> None:
    education = derive_group(population, "EDUCATION")
    some_college = population["education"].astype(str) == "Some College"
    assert some_college.any() and education[some_college].isna().all()
    assert education[~some_college].notna().all()


def test_cross_attribute_joins_parts_and_needs_all_of_them(population: pd.DataFrame) -> None:
    out, notes = with_opinionqa_groups(population, ["RACE_SEX", "INCOME", "POLPARTY_SEX"])
    first = out.iloc[0]
    assert first["RACE_SEX"] == f"{derive_group(population, 'RACE')[0]} | {first['sex']}"
    assert "INCOME" not in out.columns and "POLPARTY_SEX" not in out.columns
    assert notes[0] == "groups derived from census attributes: RACE_SEX"
    assert "INCOME, POLPARTY_SEX" in notes[1]


def test_a_column_the_user_gave_is_kept() -> None:
    persons = pd.DataFrame({"age": [20, 70], "AGE": ["65+", "18-29"]})
    out, notes = with_opinionqa_groups(persons, ["AGE"])
    assert out["AGE"].tolist() == ["65+", "18-29"] and notes == []


@pytest.mark.shared_data
def test_census_persons_are_scored_per_pew_group(population: pd.DataFrame) -> None:
    data = require_shared_data() / "opinionqa"
    truth = load_truth(
        f"csv:{data / 'opinionqa_group_counts_unweighted.csv.gz'}",
        f"opinionqa:{data / 'tatsu_opinions_qa_human_resp' / 'American_Trends_Panel_W26'}",
    )
    question = truth.survey.questions[0]
    n = len(question.options)
    persons = population.assign(person_id=population["person_id"].astype(str))
    hispanic = persons["hispanic"].astype(str) == "Hispanic or Latino"
    # Hispanic persons answer the first option, everyone else the second: the simulated RACE
    # groups are then exact one-hot distributions only if Hispanic Whites left "White".
    first, second = np.eye(n)[0].tolist(), np.eye(n)[1].tolist()
    responses = pd.DataFrame(
        {
            "person_id": persons["person_id"],
            "tier": "meta",
            "generator": "",
            "simulator": "test",
            "question_id": question.id,
            "estimator": "logprobs",
            "probs": [first if h else second for h in hispanic],
        }
    )
    result = score(responses, truth, persons, n_boot=0)
    scores = result.scores[result.scores["metric"] == "alignment"]
    groups = set(zip(scores["attribute"], scores["group"], strict=True))
    for expected in [
        ("AGE", "18-29"),
        ("AGE", "65+"),
        ("CREGION", "South"),
        ("SEX", "Female"),
        ("RACE", "Hispanic"),
        ("RACE", "White"),
        ("RACE_SEX", "White | Male"),
        ("EDUCATION", "Postgraduate"),
    ]:
        assert expected in groups, expected
    by_group = scores.set_index(["attribute", "group"])["sim_dist"]
    assert list(by_group[("RACE", "White")]) == pytest.approx(second)
    assert list(by_group[("RACE", "Hispanic")]) == pytest.approx(first)
    assert any(note.startswith("groups derived from census attributes") for note in result.notes)
    assert any("no groups for" in note and "INCOME" in note for note in result.notes)
