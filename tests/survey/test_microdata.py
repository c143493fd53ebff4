"""Respondent microdata as ground truth (``microdata:MAPPING``): weighted shares per group against
hand-computed values, value labels of files the tests write (.sav, .dta), each bad input, and
the shipped ANES 1996 mapping against a direct crosstab of statsmodels' data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personasim.core.errors import PersonasimError
from personasim.truth import load_truth

SURVEY = """id: tiny
questions:
  - id: q
    text: Do you agree?
    options:
      - {text: Agree, code: y}
      - {text: Disagree, code: n}
"""

# weight, answer (9: refused), sex (8: not given), age in years
RESPONDENTS = """wt,ans,sex,age
2,1,1,25
1,2,1,40
3,2,2,70
1,1,2,35
4,9,2,50
1,1,8,22
"""

MAPPING = """data: people.csv
survey: tiny.yaml
weight: wt
questions:
  q: {column: ans, codes: {1: y, 2: n}, missing: [9]}
groups:
  - {column: sex, attribute: SEX, codes: {1: Male, 2: Female}, missing: [8]}
  - {column: age, attribute: AGE, derive: true}
"""


def _write(folder: Path, mapping: str = MAPPING, data: str = RESPONDENTS) -> Path:
    (folder / "tiny.yaml").write_text(SURVEY)
    (folder / "people.csv").write_text(data)
    (folder / "map.yaml").write_text(mapping)
    return folder / "map.yaml"


def _share(table: pd.DataFrame, attribute: str, group: str, option: str = "Agree") -> float:
    rows = table[(table["attribute"] == attribute) & (table["group"] == group)]
    return float(rows.loc[rows["option"] == option, "weight"].sum() / rows["weight"].sum())


def _cell(table: pd.DataFrame, attribute: str, group: str) -> pd.Series:
    return table[(table["attribute"] == attribute) & (table["group"] == group)].iloc[0]


def test_weighted_group_shares_and_kish_n_match_hand_computation(tmp_path: Path) -> None:
    truth = load_truth(f"microdata:{_write(tmp_path)}")
    table = truth.table
    # overall: Agree 2+1+1, Disagree 1+3 (the refusal, weight 4, is left out)
    assert _share(table, "overall", "all") == pytest.approx(0.5)
    assert _share(table, "SEX", "Male") == pytest.approx(2 / 3)  # 2 of 2+1
    assert _share(table, "SEX", "Female") == pytest.approx(1 / 4)  # 1 of 3+1
    assert _share(table, "AGE", "18-29") == pytest.approx(1.0)  # ages 25 and 22 agree
    assert _share(table, "AGE", "30-49") == pytest.approx(0.5)  # weights 1 and 1
    assert "50-64" not in set(table.loc[table["attribute"] == "AGE", "group"])  # refused only
    # Kish: (sum w)^2 / sum w^2 per group, n = respondents with a mapped answer
    overall, male = _cell(table, "overall", "all"), _cell(table, "SEX", "Male")
    assert (overall["n"], overall["n_eff"]) == (5, pytest.approx(64 / 16))
    assert (male["n"], male["n_eff"]) == (2, pytest.approx(9 / 5))
    assert _cell(table, "SEX", "Female")["n_eff"] == pytest.approx(16 / 10)


def test_equal_weights_without_a_weight_column(tmp_path: Path) -> None:
    path = _write(tmp_path, MAPPING.replace("weight: wt\n", ""))
    table = load_truth(f"microdata:{path}").table
    assert _share(table, "overall", "all") == pytest.approx(3 / 5)
    assert _cell(table, "overall", "all")["n_eff"] == pytest.approx(5.0)


LABELLED = pd.DataFrame(
    {
        "opinion": [1.0, 2.0, 1.0, 9.0, 2.0],
        "degree": [1.0, 2.0, 2.0, 1.0, 1.0],
        "w": [1.0, 2.0, 3.0, 5.0, 0.5],
    }
)
LABELS = {
    "opinion": {1: "Strongly agree", 2: "Strongly disagree", 9: "Refused"},
    "degree": {1: "No degree", 2: "Bachelor"},
}
BY_LABEL = """data: {file}
survey: tiny.yaml
weight: w
questions:
  q: {{column: opinion, codes: {{Strongly agree: Agree, strongly disagree: Disagree}},
       missing: [Refused]}}
groups:
  - {{column: degree, attribute: education, codes: {{No degree: Less than HS,
      Bachelor: "Bachelor's"}}}}
"""


def _labelled_file(folder: Path, suffix: str) -> Path:
    path = folder / f"poll{suffix}"
    if suffix == ".sav":
        import pyreadstat

        pyreadstat.write_sav(
            LABELLED,
            str(path),
            variable_value_labels={
                k: {float(c): t for c, t in v.items()} for k, v in LABELS.items()
            },
        )
    else:
        LABELLED.to_stata(path, write_index=False, value_labels=LABELS)
    return path


@pytest.mark.parametrize("suffix", [".sav", ".dta"])
def test_codes_are_mapped_by_value_label(tmp_path: Path, suffix: str) -> None:
    (tmp_path / "tiny.yaml").write_text(SURVEY)
    data = _labelled_file(tmp_path, suffix)
    (tmp_path / "map.yaml").write_text(BY_LABEL.format(file=data.name))
    table = load_truth(f"microdata:{tmp_path / 'map.yaml'}").table
    # Agree 1 + 3, Disagree 2 + 0.5; the refusal (weight 5) left out
    assert _share(table, "overall", "all") == pytest.approx(4 / 6.5)
    assert _share(table, "education", "Less than HS") == pytest.approx(1 / 1.5)
    assert _share(table, "education", "Bachelor's") == pytest.approx(3 / 5)


BAD = [
    (
        "unmapped-code",
        RESPONDENTS.replace("2,1,1,25", "2,7,1,25"),
        MAPPING,
        ("people.csv", "'ans'", "'7'", "not mapped"),
    ),
    (
        "nan-weight",
        RESPONDENTS.replace("2,1,1,25", ",1,1,25"),
        MAPPING,
        ("people.csv", "'wt'", "'nan'", "not a non-negative number"),
    ),
    (
        "negative-weight",
        RESPONDENTS.replace("2,1,1,25", "-2,1,1,25"),
        MAPPING,
        ("people.csv", "'wt'", "'-2'", "not a non-negative number"),
    ),
    (
        "missing-question-column",
        RESPONDENTS,
        MAPPING.replace("column: ans", "column: answer"),
        ("people.csv", "'answer'", "question q", "missing"),
    ),
    (
        "group-level-no-person-has",
        RESPONDENTS,
        MAPPING.replace("2: Female", "2: Woman"),
        ("people.csv", "'sex'", "'2' -> 'Woman'", "no person has this level"),
    ),
    (
        "unmapped-group-code",
        RESPONDENTS.replace("2,1,1,25", "2,1,3,25"),
        MAPPING,
        ("people.csv", "'sex'", "'3'", "not mapped"),
    ),
    (
        "unknown-option",
        RESPONDENTS,
        MAPPING.replace("2: n}", "2: maybe}"),
        ("people.csv", "'ans'", "'2'", "no option 'maybe'"),
    ),
    (
        "unknown-attribute",
        RESPONDENTS,
        MAPPING.replace("attribute: SEX", "attribute: GENDER"),
        ("people.csv", "'sex'", "'GENDER'", "unknown person attribute"),
    ),
    (
        "unknown-mapping-key",
        RESPONDENTS,
        MAPPING.replace("weight: wt", "wieght: wt"),
        ("map.yaml", "wieght", "did you mean 'weight'"),
    ),
    (
        "unknown-group-key",
        RESPONDENTS,
        MAPPING.replace("derive: true", "derived: true"),
        ("map.yaml", "groups[1].derived", "did you mean 'derive'"),
    ),
]


@pytest.mark.parametrize(
    ("data", "mapping", "needles"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_microdata_is_one_line_naming_file_column_and_value(
    tmp_path: Path, data: str, mapping: str, needles: tuple[str, ...]
) -> None:
    path = _write(tmp_path, mapping, data)
    with pytest.raises(PersonasimError) as caught:
        load_truth(f"microdata:{path}")
    message = caught.value.one_line()
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_shipped_anes96_mapping_gives_the_real_vote_shares() -> None:
    from statsmodels.datasets import anes96

    data = anes96.load_pandas().data
    truth = load_truth("microdata:anes96")
    table = truth.table
    assert truth.survey.id == "anes96" and set(table["question_id"]) == {"vote_1996", "party_id"}
    vote = table[table["question_id"] == "vote_1996"]
    clinton = "Bill Clinton (Democrat)"
    direct = pd.crosstab(data["educ"], data["vote"], normalize="index")
    assert _share(vote, "overall", "all", clinton) == pytest.approx((data["vote"] == 0).mean())
    assert _share(vote, "overall", "all", clinton) == pytest.approx(551 / 944)
    # educ 6 (BA-level degree) -> Bachelor's; Dole is vote 1
    assert _share(vote, "education", "Bachelor's", "Bob Dole (Republican)") == pytest.approx(
        direct.loc[6.0, 1.0]
    )
    old = data[data["age"] >= 65]
    assert _share(vote, "AGE", "65+", clinton) == pytest.approx((old["vote"] == 0).mean())
    party = table[table["question_id"] == "party_id"]
    assert _share(party, "overall", "all", "Strong Republican") == pytest.approx(175 / 944)
    # no survey weights: every group's n_eff is its n
    assert (table["n_eff"] == table["n"]).all()
    assert set(table["attribute"]) == {"overall", "AGE", "education", "INCOME_BAND"}


def test_the_mapping_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    import re
    import textwrap

    from personasim.truth.microdata import load_mapping

    docs = (Path(__file__).parents[2] / "docs" / "study.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(.*?)```", docs.split("### Doing the same")[1], re.S)
    assert block is not None
    (tmp_path / "mapping.yaml").write_text(textwrap.dedent(block.group(1)))
    mapping = load_mapping(tmp_path / "mapping.yaml")
    assert mapping.questions["trust_gov"].codes["3"] == "Somewhat disagree"
    assert [g.attribute for g in mapping.groups] == ["AGE", "SEX", "education"]


def test_a_changed_respondent_file_makes_the_scores_stale(tmp_path: Path) -> None:
    from personasim.pipeline.contract import fingerprint
    from personasim.pipeline.driver import STAGE_LIST
    from personasim.spec.study import study_from_dict

    path = _write(tmp_path)
    spec = study_from_dict(
        {
            "surveys": [
                {"id": "tiny", "source": str(tmp_path / "tiny.yaml"), "truth": f"microdata:{path}"}
            ]
        }
    )
    stage = next(s for s in STAGE_LIST if s.name == "score")
    before = fingerprint(stage, spec, tmp_path)
    (tmp_path / "people.csv").write_text(RESPONDENTS.replace("2,1,1,25", "3,1,1,25"))
    after = fingerprint(stage, spec, tmp_path)
    assert before["files"] != after["files"]  # the mapping itself did not change
