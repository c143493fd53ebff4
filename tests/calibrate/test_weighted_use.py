"""Weights used downstream: `score --weights` and `crosstab`, against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.calibrate import attach_weights
from personasim.cli.main import main
from personasim.scoring.crosstab import crosstab
from personasim.scoring.score import score
from personasim.truth import load_truth


def _row(pid: str, tier: str, dem: float, generator: str = "g") -> dict:
    return {
        "person_id": pid,
        "tier": tier,
        "generator": generator,
        "simulator": "s",
        "question_id": "president_2020",
        "estimator": "logprobs",
        "probs": [dem, 1 - dem],
        "answer": None,
    }


def _case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four CA personas in two tiers: a and b vote Democratic, c and d Republican."""
    persons = pd.DataFrame(
        {
            "person_id": list("abcd"),
            "state": "CA",
            "weight": 1.0,
            "age": [25, 70, 40, 33],
            "sex": ["Male", "Female"] * 2,
        }
    )
    dems = {"a": 1.0, "b": 0.8, "c": 0.0, "d": 0.2}
    rows = [_row(p, t, d) for t in ("meta", "subjective") for p, d in dems.items()]
    return pd.DataFrame(rows), persons


def _ca_share(result, tier: str) -> float:
    s = result.scores
    sel = s[(s.tier == tier) & (s.group == "CA") & (s.metric == "dem_share")]
    return float(sel["value"].iloc[0])


def test_equal_weights_score_exactly_like_no_weights() -> None:
    responses, persons = _case()
    truth = load_truth("elections")
    plain = score(responses, truth, persons, n_boot=40, seed=3)
    weights = responses[["person_id", "tier", "generator"]].assign(weight=2.5)
    weighted, notes = attach_weights(responses, weights, persons)
    again = score(weighted, truth, persons, n_boot=40, seed=3)
    assert not notes
    cols = ["value", "ci_low", "ci_high"]
    pd.testing.assert_frame_equal(plain.scores[cols], again.scores[cols])


def test_weights_move_the_election_share_as_computed_by_hand() -> None:
    responses, persons = _case()
    truth = load_truth("elections")
    # subjective tier: Republicans c, d weigh 3; Democrats a, b weigh 1 -> the share falls
    weights = pd.DataFrame(
        {
            "person_id": list("abcd"),
            "tier": "subjective",
            "generator": "g",
            "weight": [1.0, 1.0, 3.0, 3.0],
        }
    )
    weighted, notes = attach_weights(responses, weights, persons)
    result = score(weighted, truth, persons, n_boot=0)
    unweighted = (1.0 + 0.8 + 0.0 + 0.2) / 4
    by_hand = (1.0 + 0.8 + 3 * 0.0 + 3 * 0.2) / 8
    assert _ca_share(result, "subjective") == pytest.approx(by_hand) and by_hand < unweighted
    assert _ca_share(result, "meta") == pytest.approx(unweighted)  # not calibrated: base weight
    assert notes and "4 response row(s)" in notes[0]


def test_score_cli_takes_weights(tmp_path: Path) -> None:
    responses, persons = _case()
    responses.to_parquet(tmp_path / "r.parquet")
    persons.to_parquet(tmp_path / "p.parquet")
    weights = pd.DataFrame({"person_id": list("abcd"), "weight": [1.0, 1.0, 3.0, 3.0]})
    weights.to_parquet(tmp_path / "w.parquet")
    args = [
        "score",
        "--responses",
        str(tmp_path / "r.parquet"),
        "--truth",
        "elections",
        "--persons",
        str(tmp_path / "p.parquet"),
        "--n-boot",
        "0",
    ]
    assert main([*args, "--out", str(tmp_path / "s0.parquet")]) == 0
    assert (
        main(
            [*args, "--weights", str(tmp_path / "w.parquet"), "--out", str(tmp_path / "s1.parquet")]
        )
        == 0
    )
    s0, s1 = (pd.read_parquet(tmp_path / f"s{i}.parquet") for i in (0, 1))
    pick = (s0.group == "CA") & (s0.metric == "dem_share") & (s0.tier == "meta")
    assert float(s1[pick]["value"].iloc[0]) == pytest.approx((1 + 0.8 + 0 + 0.6) / 8)
    assert float(s0[pick]["value"].iloc[0]) == pytest.approx(0.5)


def test_crosstab_weighted_shares_counts_and_small_cells() -> None:
    responses, persons = _case()
    weights = pd.DataFrame({"person_id": list("abcd"), "weight": [1.0, 1.0, 3.0, 3.0]})
    table = crosstab(responses, ["age_group", "sex"], persons, weights, n_boot=50, min_n=2)
    sub = table[(table.tier == "subjective") & (table.option == "option 1")]
    sub = sub.set_index(["attribute", "group"])
    # age_group (Pew brackets): 18-29 = a (25); 30-49 = c (40), d (33); 65+ = b (70)
    assert sub.loc[("age_group", "30-49"), "share"] == pytest.approx((0 * 3 + 0.2 * 3) / 6)
    assert sub.loc[("age_group", "18-29"), "n"] == 1 and sub.loc[("age_group", "18-29"), "small"]
    # sex: Male = a, c -> (1 * 1 + 0 * 3) / 4
    assert sub.loc[("sex", "Male"), "share"] == pytest.approx(0.25)
    assert not sub.loc[("sex", "Male"), "small"]
    overall = sub.loc[("overall", "all")]
    assert overall["ci_low"] <= overall["share"] <= overall["ci_high"]
    assert overall["weight_sum"] == pytest.approx(8.0)


def test_crosstab_cli_with_survey_names_and_unknown_attribute(tmp_path: Path, capsys) -> None:
    responses, persons = _case()
    responses.to_parquet(tmp_path / "r.parquet")
    persons.to_parquet(tmp_path / "p.parquet")
    base = [
        "crosstab",
        "--responses",
        str(tmp_path / "r.parquet"),
        "--persons",
        str(tmp_path / "p.parquet"),
        "--survey",
        "elections",
        "--n-boot",
        "20",
        "--out",
        str(tmp_path / "x.parquet"),
    ]
    assert main([*base, "--by", "sex,income_bracket"]) == 2  # the persons carry no income
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "income_bracket" in err
    assert main([*base, "--by", "sex"]) == 0
    table = pd.read_parquet(tmp_path / "x.parquet")
    assert "Joe Biden (Democratic Party)" in set(table.option)
    assert np.isfinite(table["ci_low"]).all()


def test_attach_weights_matches_ids_as_text_and_falls_back_to_own_weight() -> None:
    responses, persons = _case()
    responses = responses.assign(weight=np.where(responses.person_id == "a", 9.0, 1.0))
    weights = pd.DataFrame({"person_id": ["a", "b"], "tier": "subjective", "weight": [2.0, 3.0]})
    out, notes = attach_weights(responses, weights, persons)
    sub = out[out.tier == "subjective"].set_index("person_id")["weight"]
    meta = out[out.tier == "meta"].set_index("person_id")["weight"]
    assert sub["a"] == 2.0 and sub["b"] == 3.0 and sub["c"] == 1.0
    assert meta["a"] == 9.0  # uncovered rows keep the responses' own weight
    assert notes and "6 response row(s)" in notes[0]
    numeric = pd.DataFrame({"person_id": [7], "tier": "meta", "generator": "g", "weight": [4.0]})
    rows = responses.assign(person_id="7")
    joined, _ = attach_weights(rows, numeric)
    assert (joined[joined.tier == "meta"]["weight"] == 4.0).all()


def test_stage_tables_put_costs_beside_before_and_after(population: pd.DataFrame) -> None:
    from personasim.calibrate.diagnostics import before_after, tier_costs
    from personasim.pipeline.stages.calibration import run_calibration
    from personasim.spec.study import CalibrationSection
    from tests.calibrate.conftest import fake_personas

    personas = fake_personas(population)
    result = run_calibration(CalibrationSection(targets="party", trim=None), personas)
    assert set(result.weights["tier"]) == {"subjective"}  # meta is not in the default tiers
    costs = tier_costs(result.diagnostics)
    row = costs.iloc[0]
    assert row["n"] == len(population) and row["deff"] == pytest.approx(row["n"] / row["ess"])
    assert row["deff"] > 1 and row["asmd_after"] < row["asmd_before"]
    responses, persons = _case()
    truth = load_truth("elections")
    plain = score(responses, truth, persons, n_boot=20).scores
    weights = pd.DataFrame({"person_id": list("abcd"), "weight": [1.0, 1.0, 3.0, 3.0]})
    weighted = score(attach_weights(responses, weights, persons)[0], truth, persons, n_boot=20)
    table = before_after(plain, weighted.scores)
    pick = table[(table.tier == "meta") & (table.metric == "national_dem_share")].iloc[0]
    assert pick["value_before"] == pytest.approx(0.5)
    assert pick["value_after"] == pytest.approx(0.3)


def test_crosstab_puts_the_real_election_share_beside_each_state() -> None:
    from personasim.truth import elections as E

    responses, persons = _case()
    table = crosstab(responses, ["state"], persons, n_boot=0, truth=load_truth("elections"))
    ca = table[(table.attribute == "state") & (table.group == "CA") & (table.tier == "meta")]
    biden = ca[ca.option == "Joe Biden (Democratic Party)"].iloc[0]
    truth = E.state_truth(2020).set_index("state")["dem_share"]["CA"]
    assert biden["truth_share"] == pytest.approx(truth) and biden["share"] == pytest.approx(0.5)


def test_crosstab_beside_real_opinionqa_groups() -> None:
    from tests.conftest import require_shared_data

    data = require_shared_data() / "opinionqa"
    truth = load_truth(
        f"csv:{data / 'opinionqa_group_counts_unweighted.csv.gz'}",
        f"opinionqa:{data / 'tatsu_opinions_qa_human_resp' / 'American_Trends_Panel_W26'}",
    )
    question = truth.survey.question("SAFECRIME_W26")
    k = len(question.options)
    persons = pd.DataFrame({"person_id": ["a", "b", "c"], "age": [22, 45, 70]})
    rows = [
        {
            "person_id": p,
            "tier": "meta",
            "generator": "",
            "simulator": "s",
            "question_id": "SAFECRIME_W26",
            "estimator": "logprobs",
            "probs": list(np.eye(k)[i]),
        }
        for i, p in enumerate("abc")
    ]
    table = crosstab(pd.DataFrame(rows), ["AGE"], persons, n_boot=0, truth=truth)
    young = table[(table.attribute == "AGE") & (table.group == "18-29")]
    t = truth.table
    counts = t[(t.question_id == "SAFECRIME_W26") & (t.attribute == "AGE") & (t.group == "18-29")]
    expected = counts.set_index("option")["weight"] / counts["weight"].sum()
    got = young.set_index("option")["truth_share"]
    for option, share in expected.items():
        assert got[option] == pytest.approx(share)
    assert young.set_index("option")["share"][question.texts[0]] == pytest.approx(1.0)
