"""Sampling: determinism, value ranges, joint sanity, DC, bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from personasim.census import mapping, sample_population, write_population
from personasim.census.sample import PopulationSpec, build_population, resolve_states
from personasim.core.errors import ConfigError


def test_same_seed_same_population(small_population: pd.DataFrame) -> None:
    again = sample_population(["CA", "VT", "NM"], per_state=2000, seed=7)
    pd.testing.assert_frame_equal(small_population, again)


def test_different_seed_differs(small_population: pd.DataFrame) -> None:
    other = sample_population(["CA", "VT", "NM"], per_state=2000, seed=8)
    assert not small_population["age"].equals(other["age"])


def test_state_draw_does_not_depend_on_other_states(small_population: pd.DataFrame) -> None:
    alone = sample_population(["VT"], per_state=2000, seed=7)
    with_others = small_population[small_population["state"] == "VT"].reset_index(drop=True)
    assert alone["age"].tolist() == with_others["age"].tolist()


def test_columns_and_values_in_vocabulary(small_population: pd.DataFrame) -> None:
    frame = small_population
    assert list(frame.columns) == list(mapping.POPULATION_COLUMNS)
    for column, vocab in mapping.VOCAB.items():
        assert set(frame[column].astype(str)) <= set(vocab), column
    assert frame["age"].between(18, 120).all()
    assert frame["income"].between(0, mapping.INCOME_MAX).all()
    assert frame["person_id"].is_unique
    assert (frame.groupby("state", observed=True).size() == 2000).all()
    assert frame.notna().all().all()


def test_joint_sanity_the_paper_gets_wrong(small_population: pd.DataFrame) -> None:
    young = small_population[small_population["age"] <= 19]
    assert young["education"].isin(["Bachelor's", "Graduate Degree"]).mean() < 0.05
    assert (young["marital_status"] == "Married").mean() < 0.10
    assert (young["marital_status"] == "Widowed").mean() < 0.01
    vets = small_population[small_population["veteran_status"] == "Veteran"]
    assert (vets["sex"] == "Male").mean() > 0.8


def test_min_age_is_respected() -> None:
    frame = sample_population(["WY"], per_state=3000, seed=1, min_age=65)
    assert frame["age"].min() >= 65
    children = sample_population(["WY"], per_state=3000, seed=1, min_age=0)
    assert children["age"].min() < 18


def test_total_is_split_by_population() -> None:
    frame = sample_population(["CA", "WY"], total=1000, seed=3)
    counts = frame["state"].value_counts()
    assert counts.sum() == 1000 and counts["CA"] > 50 * counts["WY"] / 2


def test_dc_uses_national_fallback_with_a_note() -> None:
    result = build_population(PopulationSpec(states=("DC",), per_state=200, seed=1))
    assert "national targets" in result.reports[0].note
    assert set(result.frame["source"]) == {"pums2018/acs2023-national"}


def test_unknown_state_suggests_codes() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_states(["CX"])
    assert "did you mean" in error.value.hint and "\n" not in error.value.one_line()


def test_states_may_be_one_comma_separated_string() -> None:
    assert resolve_states("ca, tx") == ["CA", "TX"]
    assert len(resolve_states("all")) == 51 and resolve_states("all") == resolve_states(["all"])
    assert set(sample_population("VT,NH", per_state=5)["state"]) == {"VT", "NH"}


@pytest.mark.parametrize("kwargs", [{"per_state": 0}, {"min_age": -1}, {"seed": -5}])
def test_bad_options_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        sample_population(["VT"], **{"per_state": 10, **kwargs})


def test_write_population_roundtrip(tmp_path, small_population: pd.DataFrame) -> None:  # noqa: ANN001
    path = write_population(small_population, tmp_path / "sub" / "population.parquet")
    back = pd.read_parquet(path)
    assert (
        back["education"].astype(str).tolist() == small_population["education"].astype(str).tolist()
    )
