"""Role-play agreement with per-annotator labels: the 3-of-4 majority with its ties and dropped
annotators, model vs majority and the human baseline checked against scikit-learn on a hand-made
table, and the one-line refusals of bad label files."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from personasim.core.errors import DataError
from personasim.testbed.roleplay import (
    MAJORITY,
    items_from_pairs,
    majority,
    model_item_labels,
    read_annotations,
    roleplay_agreement,
)
from tests.support.scripted import ScriptedStandIn

QS = ["q1", "q2", "q3", "q4"]
ITEMS = pd.DataFrame(
    [
        {
            "persona_id": p,
            "question_id": q,
            "persona": f"- Name: {p}",
            "question": f"{q}?",
            "answer_a": f"base {q}",
            "answer_b": f"{p} {q}",
        }
        for p in ("p1", "p2")
        for q in QS
    ]
)
#: p1 has four complete annotators; p2 three complete and b4, who stopped after one item.
VOTES = {
    ("p1", "a1"): "ABAB",
    ("p1", "a2"): "ABAA",
    ("p1", "a3"): "ABBB",
    ("p1", "a4"): "BBBB",
    ("p2", "b1"): "ABAA",
    ("p2", "b2"): "ABBA",
    ("p2", "b3"): "BABA",
    ("p2", "b4"): "A",
}


def write_votes(path, votes=VOTES) -> None:
    rows = ["annotator,persona_id,question_id,choice,seconds"]
    rows += [
        f"{a},{p},{q},{c},3.5" for (p, a), cs in votes.items() for q, c in zip(QS, cs, strict=False)
    ]  # b4 stopped early: fewer letters
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture()
def annotations(tmp_path):
    write_votes(tmp_path / "labels.csv")
    return read_annotations(tmp_path / "labels.csv", ITEMS)


def test_majority_is_three_of_four_with_ties_and_a_dropped_annotator(annotations):
    rule = majority(annotations, ITEMS)
    got = {(r.persona_id, r.question_id): r.choice for r in rule.labels.itertuples()}
    # p1: q1 A A A B -> A; q2 B x4 -> B; q3 A A B B -> tie; q4 B A B B -> B
    # p2 (b4 dropped, 2 of 3): q1 A A B -> A; q2 B B A -> B; q3 A B B -> B; q4 A A A -> A
    assert got == {
        ("p1", "q1"): "A",
        ("p1", "q2"): "B",
        ("p1", "q4"): "B",
        ("p2", "q1"): "A",
        ("p2", "q2"): "B",
        ("p2", "q3"): "B",
        ("p2", "q4"): "A",
    }
    assert rule.ties == 1 and rule.dropped_annotators == [("p2", "b4")]
    fewer = annotations[~annotations["annotator"].isin(["b1", "b4"])]
    assert majority(fewer, ITEMS).short_personas == ["p2"]


def test_model_vs_majority_and_the_human_baseline_match_sklearn(annotations):
    model = [
        ("p1", "q1", "A"),
        ("p1", "q2", "B"),
        ("p1", "q3", "A"),
        ("p1", "q4", "A"),
        ("p2", "q1", "A"),
        ("p2", "q2", "B"),
        ("p2", "q3", "B"),
        ("p2", "q4", "A"),
    ]
    labels = pd.DataFrame(
        [{"rater": "m1", "persona_id": p, "question_id": q, "choice": c} for p, q, c in model]
    )
    result = roleplay_agreement(labels, ITEMS, annotations)
    # the 7 items with a majority, in order p1 q1 q2 q4, p2 q1..q4
    m1, maj = list("ABAABBA"), list("ABBABBA")
    assert result.agreement.matrix.loc["m1", MAJORITY] == pytest.approx(cohen_kappa_score(m1, maj))
    # slots by annotator id: human 1 = a1 / b1, human 2 = a2 / b2, human 4 = a4 only
    h1, h2 = list("ABAB" + "ABAA"), list("ABAA" + "ABBA")
    assert result.human_matrix.loc["human 1", "human 2"] == pytest.approx(cohen_kappa_score(h1, h2))
    assert result.human_matrix.loc["human 1", "human 4"] == pytest.approx(
        cohen_kappa_score(list("ABAB"), list("BBBB"))
    )
    per = result.human_per_persona
    row = per[(per.rater_a == "human 1") & (per.rater_b == "human 2") & (per.persona_id == "p2")]
    assert row["kappa"].iloc[0] == pytest.approx(cohen_kappa_score(list("ABAA"), list("ABBA")))
    assert "4" not in " ".join(per.loc[per.persona_id == "p2", "rater_b"])
    assert any("1 tied" in n and "1 incomplete" in n for n in result.notes)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a1,p1,q1,banana", "row 2: choice 'banana' is not an answer letter"),
        ("a1,p9,q1,A", "row 2: unknown persona_id 'p9'"),
        ("a1,p1,q7,A", "row 2: unknown question_id 'q7'"),
    ],
)
def test_bad_label_rows_are_one_line_naming_file_row_and_value(tmp_path, row, message):
    path = tmp_path / "h.csv"
    path.write_text("annotator,persona_id,question_id,choice\n" + row + "\n")
    with pytest.raises(DataError) as error:
        read_annotations(path, ITEMS)
    assert str(path) in error.value.one_line() and message in error.value.one_line()


def test_an_item_labelled_twice_by_one_annotator_is_refused(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("annotator,persona_id,question_id,choice\na1,p1,q1,A\na1,p1,q1,B\n")
    with pytest.raises(DataError, match="row 3: annotator 'a1' labelled this item already"):
        read_annotations(path, ITEMS)


def test_items_from_pairs_and_model_labels_read_both_orders():
    pairs = pd.DataFrame(
        [
            {
                "person_id": p,
                "prompt_id": q,
                "persona": f"- Name: {p}",
                "prompt": f"{q}?",
                "rejected": f"base {q}",
                "chosen": f"{p} {q}",
                "ok": q != "q4",
            }
            for p in ("p1", "p2")
            for q in QS
        ]
    )
    items = items_from_pairs(pairs, per_persona=2, seed=3)
    assert items.groupby("persona_id").size().tolist() == [2, 2]
    assert "q4" not in set(items["question_id"])

    def prefers_own(request, _seen):
        """Stand-in persona: prefers the answer naming it, in either position."""
        name = request.messages[0].content.split("Name: ")[1].split()[0]
        first = request.messages[-1].content.split("Answer B:")[0]
        return {"A": 1.0} if name in first else {"B": 1.0}

    labels = model_item_labels(ScriptedStandIn(choice_script=prefers_own), items, "stand-in")
    assert labels["choice"].tolist() == ["B"] * 4 and set(labels["rater"]) == {"stand-in"}
