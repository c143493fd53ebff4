"""Scoring end to end on small response tables built here, and the `score` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from personasim.cli.survey import score_command
from personasim.core.errors import ConfigError, DataError
from personasim.scoring.score import SCORE_COLUMNS, score
from personasim.survey.questions import Survey
from personasim.truth import Truth, load_truth
from personasim.truth import elections as E


def _row(
    pid: str, tier: str, qid: str, probs, generator: str = "g1", simulator: str = "s1"
) -> dict:
    return {
        "person_id": pid,
        "tier": tier,
        "generator": generator,
        "simulator": simulator,
        "question_id": qid,
        "estimator": "logprobs",
        "probs": probs,
        "answer": None,
        "valid_mass": 1.0,
        "invalid": 0,
        "option_order": [0, 1],
        "raw": "",
    }


def _elections_responses() -> tuple[pd.DataFrame, pd.DataFrame]:
    persons = pd.DataFrame(
        {
            "person_id": ["a", "b", "c", "d"],
            "state": ["CA", "CA", "Texas", "48"],
            "weight": [1.0, 3.0, 1.0, 1.0],
        }
    )
    rows = []
    for pid, dem in zip(persons.person_id, [1.0, 0.5, 0.2, 0.4], strict=True):
        rows.append(_row(pid, "meta", "president_2020", [dem, 1 - dem], generator=""))
        rows.append(_row(pid, "descriptive", "president_2020", [1.0, 0.0]))
    return pd.DataFrame(rows), persons


def test_elections_end_to_end() -> None:
    responses, persons = _elections_responses()
    result = score(responses, load_truth("elections"), persons, n_boot=50)
    s = result.scores
    assert list(s.columns) == SCORE_COLUMNS
    meta = s[s.tier == "meta"].set_index(["group", "metric"])
    # CA: weighted mean of 1.0 (w1) and 0.5 (w3) = 0.625; TX (name and FIPS 48): 0.3
    assert meta.loc[("CA", "dem_share"), "value"] == pytest.approx(0.625)
    assert meta.loc[("TX", "dem_share"), "value"] == pytest.approx(0.3)
    truth = E.state_truth(2020).set_index("state")["dem_share"]
    assert meta.loc[("CA", "alignment"), "value"] == pytest.approx(1 - abs(0.625 - truth["CA"]))
    assert meta.loc[("all", "winner_accuracy"), "value"] == 1.0
    assert meta.loc[("all", "dem_electoral_votes"), "value"] == 55  # CA in 2020
    assert meta.loc[("all", "dem_electoral_votes"), "truth_value"] == 55
    desc = s[s.tier == "descriptive"].set_index(["group", "metric"])
    assert desc.loc[("all", "winner_accuracy"), "value"] == 0.5
    assert desc.loc[("all", "dem_electoral_votes"), "value"] == 55 + 38
    # baselines beside the score
    assert desc.loc[("all", "winner_accuracy"), "uniform"] == 0.5
    assert desc.loc[("all", "winner_accuracy"), "meta"] == 1.0
    row = meta.loc[("CA", "dem_share")]
    assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_elections_without_states_scores_national_share() -> None:
    responses, _ = _elections_responses()
    s = score(responses, load_truth("elections"), None, n_boot=0).scores
    assert set(s.metric) == {"national_dem_share", "national_abs_error", "alignment"}
    meta = s[(s.tier == "meta") & (s.metric == "national_dem_share")]
    assert meta.value.iloc[0] == pytest.approx(np.mean([1.0, 0.5, 0.2, 0.4]))


def _ordinal_truth() -> Truth:
    survey = Survey.model_validate(
        {
            "id": "t",
            "questions": [
                {
                    "id": "q1",
                    "text": "How?",
                    "kind": "ordinal",
                    "options": [
                        {"label": "A", "text": "Low", "position": 1},
                        {"label": "B", "text": "Mid", "position": 2},
                        {"label": "C", "text": "High", "position": 3},
                        {"label": "D", "text": "Refused", "refusal": True},
                    ],
                },
                {
                    "id": "q2",
                    "text": "Which?",
                    "options": [{"label": "A", "text": "Tea"}, {"label": "B", "text": "Coffee"}],
                },
            ],
        }
    )
    table = pd.DataFrame(
        {
            "question_id": ["q1"] * 4 + ["q2"] * 2 + ["q1"] * 3,
            "attribute": ["overall"] * 6 + ["SEX"] * 3,
            "group": ["all"] * 6 + ["Male"] * 3,
            "option": ["Low", "Mid", "High", "Refused", "Tea", "Coffee", "Low", "Mid", "High"],
            "weight": [1, 1, 0, 2, 3, 1, 0, 0, 5],
        }
    )
    return Truth("distribution", survey, table)


def test_distribution_scoring_hand_computed() -> None:
    rows = [
        _row("a", "meta", "q1", [1, 0, 0, 0]),
        _row("b", "meta", "q1", [0, 0, 0.5, 0.5]),
        _row("a", "meta", "q2", None) | {"answer": "B"},
        _row("b", "meta", "q2", None) | {"answer": "Tea"},
    ]
    persons = pd.DataFrame({"person_id": ["a", "b"], "sex": ["Male", "Female"], "weight": [1, 1]})
    result = score(pd.DataFrame(rows), _ordinal_truth(), persons, n_boot=20)
    s = result.scores.set_index(["attribute", "group", "question_id", "metric"])
    # simulated q1: [.5, 0, .25, .25]; without refusal [2/3, 0, 1/3]; truth [.5, .5, 0]
    # CDF gaps: |2/3-1/2| + |2/3-1| = 1/6 + 1/3 = 1/2 -> /2 = 0.25
    assert s.loc[("overall", "all", "q1", "wd"), "value"] == pytest.approx(0.25)
    assert s.loc[("overall", "all", "q1", "alignment"), "value"] == pytest.approx(0.75)
    assert s.loc[("overall", "all", "q1", "refusal_rate"), "value"] == pytest.approx(0.25)
    assert s.loc[("overall", "all", "q1", "refusal_rate"), "truth_value"] == pytest.approx(0.5)
    # sampled answers B and Tea -> [.5, .5] vs truth [.75, .25]
    assert s.loc[("overall", "all", "q2", "tv"), "value"] == pytest.approx(0.25)
    assert s.loc[("overall", "all", "q2", "alignment"), "value"] == pytest.approx(0.75)
    # group rows: person a is Male; truth Male all High -> WD(Low vs High) = 1
    assert s.loc[("SEX", "Male", "q1", "wd"), "value"] == pytest.approx(1.0)
    assert s.loc[("SEX", "Male", "q1", "wd"), "n"] == 1
    # uniform baseline over Low/Mid/High vs truth [.5,.5,0]: gaps 1/6 + 1/3 -> 0.25
    assert s.loc[("overall", "all", "q1", "wd"), "uniform"] == pytest.approx(0.25)


def test_bad_responses_are_data_errors() -> None:
    truth = _ordinal_truth()
    with pytest.raises(DataError, match="has 4 options but probs has 2"):
        score(pd.DataFrame([_row("a", "meta", "q1", [0.5, 0.5])]), truth, n_boot=0)
    with pytest.raises(DataError, match="lack columns"):
        score(pd.DataFrame({"person_id": ["a"]}), truth)
    with pytest.raises(DataError, match="negative or NaN probs"):
        score(pd.DataFrame([_row("a", "meta", "q1", [0.5, -0.5, 0.5, 0.5])]), truth, n_boot=0)


def test_rows_without_mass_are_left_out_with_a_note_whatever_the_index() -> None:
    rows = pd.DataFrame(
        [
            _row("a", "meta", "q1", [1, 0, 0, 0]),
            _row("b", "meta", "q1", [0, 0, 0, 0]),
            _row("c", "meta", "q1", None),
        ],
        index=[7, 7, 7],
    )
    result = score(rows, _ordinal_truth(), n_boot=0)
    overall = result.scores.set_index(["attribute", "metric"]).loc[("overall", "wd")]
    assert overall["n"] == 1 and overall["sim_dist"] == [1.0, 0.0, 0.0, 0.0]
    assert any(n.startswith("2 response row(s) excluded") for n in result.notes)
    assert overall["excluded"] == 2 and overall["excluded_share"] == pytest.approx(2 / 3)


def test_unknown_truth_source() -> None:
    with pytest.raises(ConfigError) as info:
        load_truth("election")
    assert "did you mean 'elections'" in info.value.one_line()
    with pytest.raises(ConfigError, match="needs the survey"):
        load_truth("csv:/tmp/whatever.csv")


def test_cross_model_table_and_cli(tmp_path: Path) -> None:
    responses, persons = _elections_responses()
    extra = responses[responses.tier == "descriptive"].assign(simulator="s2")
    both = pd.concat([responses, extra], ignore_index=True)
    both.to_parquet(tmp_path / "responses.parquet")
    persons.to_csv(tmp_path / "persons.csv", index=False)
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(
        score_command,
        [
            "--responses",
            str(tmp_path / "responses.parquet"),
            "--truth",
            "elections",
            "--persons",
            str(tmp_path / "persons.csv"),
            "--out",
            str(out),
            "--n-boot",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "generator x simulator" in result.output
    written = pd.read_parquet(out)
    assert set(written.simulator) == {"s1", "s2"} and list(written.columns) == SCORE_COLUMNS


@pytest.mark.shared_data
def test_csv_truth_on_real_opinionqa_counts() -> None:
    data = Path(__file__).resolve().parents[3] / "shared" / "data" / "opinionqa"
    if not data.is_dir():
        pytest.skip(f"{data} is absent (a user's clone); CI runs this test")
    truth = load_truth(
        f"csv:{data / 'opinionqa_overall_counts_unweighted.csv'}",
        f"opinionqa:{data / 'tatsu_opinions_qa_human_resp' / 'American_Trends_Panel_W26'}",
    )
    question = truth.survey.question("SAFECRIME_W26")
    counts = truth.table[truth.table.question_id == "SAFECRIME_W26"]
    exact = [float(counts.set_index("option").weight.get(t, 0.0)) for t in question.texts]
    exact = [c / sum(exact) for c in exact]  # probs are shares (counts are refused, issue 20 §2)
    rows = [_row("a", "meta", "SAFECRIME_W26", exact), _row("a", "meta", "NOT_A_QUESTION", [1])]
    result = score(pd.DataFrame(rows), truth, n_boot=0)
    wd = result.scores.set_index("metric").loc["wd", "value"]
    assert wd == pytest.approx(0.0, abs=1e-12)  # the true distribution scores perfectly
    assert any("without truth" in note for note in result.notes)


def test_national_error_interval_is_its_own_not_the_states_mean_error() -> None:
    # 20 voters in each of CA and TX; the national share weighs the states by actual votes, so
    # its error is not the mean of the states' errors, nor is its interval
    rng = np.random.default_rng(3)
    states = ["CA"] * 20 + ["TX"] * 20
    persons = pd.DataFrame(
        {"person_id": [f"p{i}" for i in range(40)], "state": states, "weight": 1.0}
    )
    dem = np.where(np.array(states) == "CA", 0.45, 0.70) + rng.uniform(-0.1, 0.1, 40)
    pairs = zip(persons.person_id, dem, strict=True)
    responses = pd.DataFrame([_row(p, "meta", "president_2020", [d, 1 - d]) for p, d in pairs])
    result = score(responses, load_truth("elections"), persons, n_boot=300)
    year = result.scores.set_index(["group", "metric"]).loc["all"]
    summary = result.summary.set_index("metric")
    for table in (year, summary):
        national, mean = table.loc["national_abs_error"], table.loc["mean_abs_error"]
        assert national["ci_low"] <= national["value"] <= national["ci_high"]
        assert national["value"] != pytest.approx(mean["value"])
        assert (national["ci_low"], national["ci_high"]) != pytest.approx(
            (mean["ci_low"], mean["ci_high"])
        )
    assert np.isfinite(year.loc["national_abs_error", "p_equal"])  # a test, not percentiles
