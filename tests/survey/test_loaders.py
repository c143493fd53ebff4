"""Loaders: our YAML/JSON format, the authors' context.json, OpinionQA info.csv/responses.csv,
count CSVs, and one-line errors for malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from personasim.core.errors import ConfigError, DataError
from personasim.survey.loaders import load_context_json, load_opinionqa, load_survey
from personasim.truth.opinionqa import load_counts_csv, opinionqa_truth

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
OPINIONQA = SHARED_DATA / "opinionqa"


def shared() -> Path:
    """``../shared/data`` or skip with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (a user's clone); CI runs this test")
    return SHARED_DATA


GOOD_YAML = """\
id: demo
title: Demo
questions:
  - id: q1
    text: How much do you like tea?
    kind: ordinal
    options:
      - {text: A lot, position: 1}
      - {text: A little, position: 2}
      - {text: Not at all, position: 3}
      - {text: Refused, refusal: true}
  - id: q2
    text: Which drink?
    options: [Tea, Coffee]
"""


def test_own_yaml_format(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(GOOD_YAML)
    survey = load_survey(str(path))
    assert survey.ids == ["q1", "q2"]
    assert survey.question("q1").labels == ["A", "B", "C", "D"]
    assert survey.question("q2").kind == "nominal"


def test_own_json_format(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "demo.json"
    path.write_text(json.dumps(yaml.safe_load(GOOD_YAML)))
    assert load_survey(str(path)).ids == ["q1", "q2"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD_YAML.replace("{text: A little, position: 2}", "{text: A little}"), "questions['q1']"),
        (GOOD_YAML.replace("    text: Which drink?\n", ""), "questions['q2'].text"),
        (GOOD_YAML.replace("kind: ordinal", "kind: ordered"), "questions['q1'].kind"),
        (
            GOOD_YAML.replace("{text: Refused, refusal: true}", "{text: Refused, colour: red}"),
            "options[3].colour",
        ),
        ("id: x\nquestions: [\n", "not valid yaml"),
        ("id: x\n  bad: indent: here\n", "(line 2)"),
        ("- just\n- a list\n", "top level"),
    ],
)
def test_malformed_survey_one_line_error(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_survey(str(path))
    line = info.value.one_line()
    assert "\n" not in line and str(path) in line and field in line


def test_unknown_source_did_you_mean() -> None:
    with pytest.raises(ConfigError) as info:
        load_survey("opinionqaa:/tmp/x")
    assert "did you mean 'opinionqa'" in info.value.one_line()
    with pytest.raises(ConfigError):
        load_survey("electons")


def test_builtin_elections_survey() -> None:
    survey = load_survey("elections")
    assert survey.ids == ["president_2016", "president_2020", "president_2024"]
    q = survey.question("president_2020")
    assert "Biden" in q.options[q.index_of("dem")].text
    assert "Trump" in q.options[q.index_of("rep")].text


def test_context_json_malformed(tmp_path: Path) -> None:
    path = tmp_path / "context.json"
    path.write_text(json.dumps({"topic_1": {"topic": "Q?", "candidates": {"A": {}}}}))
    with pytest.raises(ConfigError, match=r"context.json: field candidates.A"):
        load_context_json(path)


@pytest.mark.shared_data
def test_context_json_real_author_files() -> None:
    root = shared() / "opinionqa" / "authors_simulation_questions"
    election = load_survey(f"context:{root / 'Election' / 'context.json'}")
    assert len(election.questions) == 3
    assert election.question("1").texts == ["Donald Trump", "Hillary Clinton"]
    sizes = {
        t: len(load_context_json(root / t / "context.json").questions)
        for t in ("Climate", "Customer", "Education", "Entertainment", "Technology")
    }
    assert sizes == {
        "Climate": 6,
        "Customer": 5,
        "Education": 6,
        "Entertainment": 7,
        "Technology": 4,
    }
    opinion = load_context_json(root / "Opinion_QA" / "context.json")
    assert len(opinion.questions) == 1494
    willmove = opinion.question("WILLMOVE_W32")
    assert willmove.options[-1].text == "Refused" and willmove.options[-1].refusal
    old = load_survey(
        str(root / "earlier_commit_d1464f37c" / "Election_Tax_Policy" / "context.json")
    )
    first = old.questions[0]
    assert first.id == "topic_1" and first.options[0].text == "Donald Trump"
    assert "tax" in first.options[0].detail.lower()


@pytest.mark.shared_data
def test_context_json_duplicate_ids_are_reported() -> None:
    path = shared() / "opinionqa" / "authors_pew_aggregates" / "ATP_W116" / "context.json"
    with pytest.raises(ConfigError, match="INSTN_CLGS_W116.*repeats"):
        load_context_json(path)
    assert len(load_context_json(path, dedupe_ids=True).questions) == 4


@pytest.mark.shared_data
def test_opinionqa_info_csv_real_files() -> None:
    root = shared() / "opinionqa" / "tatsu_opinions_qa_human_resp"
    w26 = load_opinionqa(root / "American_Trends_Panel_W26")
    q = w26.question("SAFECRIME_W26")
    assert q.kind == "ordinal" and q.tags == {"wave": "W26"}
    assert q.texts == ["Very safe", "Somewhat safe", "Not too safe", "Not at all safe", "Refused"]
    assert q.positions.tolist() == [1, 2, 3, 4]
    assert q.refusal_mask.tolist() == [False] * 4 + [True]
    assert q.options[-1].code == "99"
    danger = w26.question("WORLDDANGER_W26")
    assert danger.positions.tolist() == [1.0, 2.0, 1.5]
    # equal positions mark an unordered question
    assert w26.question("IMPREASONGUN_W26").kind == "nominal"
    everything = load_survey(f"opinionqa:{root}")
    assert len(everything.questions) == 1494
    # "Not sure" has no ordinal position: a refusal
    evo = everything.question("RACESURV18b_W43")
    assert [o.text for o in evo.options if o.refusal] == ["Not sure", "Refused"]


@pytest.mark.shared_data
def test_opinionqa_responses_missing_says_so() -> None:
    folder = shared() / "opinionqa" / "tatsu_opinions_qa_human_resp" / "American_Trends_Panel_W26"
    with pytest.raises(DataError, match="responses.csv is missing"):
        opinionqa_truth(folder)


def _tiny_wave(tmp_path: Path) -> Path:
    """A two-question wave folder with info.csv, metadata.csv and a weighted responses.csv."""
    folder = tmp_path / "American_Trends_Panel_W99"
    folder.mkdir()
    pd.DataFrame(
        {
            "key": ["SAFE_W99", "PICK_W99"],
            "question": ["How safe?", "Which?"],
            "references": ["['Very safe', 'Not safe', 'Refused']", "['Tea', 'Coffee', 'Refused']"],
            "option_ordinal": ["[1.0, 2.0]", "[1, 1]"],
            "option_mapping": ["{1.0: 'Very safe', 2.0: 'Not safe', 99.0: 'Refused'}", ""],
        }
    ).to_csv(folder / "info.csv")
    pd.DataFrame({"key": ["SEX"], "options": ["['Male', 'Female']"]}).to_csv(
        folder / "metadata.csv"
    )
    pd.DataFrame(
        {
            "SAFE_W99": ["Very safe", "Not safe", 99, "Very safe", None],
            "PICK_W99": ["Tea", "Coffee", "Coffee", "Tea", "Tea"],
            "SEX": ["Male", "Female", "Female", "Male", "Female"],
            "WEIGHT_W99": [1.0, 2.0, 1.0, 0.5, 3.0],
        }
    ).to_csv(folder / "responses.csv", index=False)
    return folder


def test_opinionqa_weighted_responses(tmp_path: Path) -> None:
    folder = _tiny_wave(tmp_path)
    truth = opinionqa_truth(folder)
    safe = truth[(truth.question_id == "SAFE_W99") & (truth.attribute == "overall")]
    totals = dict(zip(safe.option, safe.weight, strict=True))
    # row 3 answers with the Pew code 99 (Refused); row 5 was not asked
    assert totals == {"Very safe": 1.5, "Not safe": 2.0, "Refused": 1.0}
    female = truth[(truth.question_id == "PICK_W99") & (truth.group == "Female")]
    assert dict(zip(female.option, female.weight, strict=True)) == {"Coffee": 3.0, "Tea": 3.0}


def test_opinionqa_bad_weights_and_answers(tmp_path: Path) -> None:
    folder = _tiny_wave(tmp_path)
    frame = pd.read_csv(folder / "responses.csv")
    frame.drop(columns="WEIGHT_W99").to_csv(folder / "responses.csv", index=False)
    with pytest.raises(DataError, match="WEIGHT_W99"):
        opinionqa_truth(folder)
    frame.assign(PICK_W99="Juice").to_csv(folder / "responses.csv", index=False)
    with pytest.raises(DataError, match="field PICK_W99: answers not among the options"):
        opinionqa_truth(folder)


def test_counts_csv_shapes(tmp_path: Path) -> None:
    overall = tmp_path / "overall.csv"
    overall.write_text("wave,key,option,count\nW1,Q,Yes,3\nW1,Q,No,1\n")
    table = load_counts_csv(overall)
    assert set(table.attribute) == {"overall"} and table.weight.sum() == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("key,option\nQ,Yes\n")
    with pytest.raises(DataError, match=r"bad.csv: missing columns \['weight'\]"):
        load_counts_csv(bad)


@pytest.mark.shared_data
def test_counts_csv_real_group_file() -> None:
    table = load_counts_csv(shared() / "opinionqa" / "opinionqa_group_counts_unweighted.csv.gz")
    assert {"AGE", "CREGION", "POLPARTY"} <= set(table.attribute)
    overall = load_counts_csv(shared() / "opinionqa" / "opinionqa_overall_counts_unweighted.csv")
    region = table[(table.question_id == "SAFECRIME_W26") & (table.attribute == "CREGION")]
    total = overall[overall.question_id == "SAFECRIME_W26"].weight.sum()
    assert region.weight.sum() == total  # overall = sum over regions (SOURCES.md)
