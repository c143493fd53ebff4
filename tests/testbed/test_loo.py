"""Leave-one-out influence: the persona pairs, kappa per pair and the ranking, checked with a
ScriptedStandIn whose choices depend on the profile text in a known way; then a small real run
on the embedded model with its figure."""

from __future__ import annotations

import json
import math

import pytest

from personasim.core.errors import DataError
from personasim.report.testbed import loo_boxplot, png_bytes
from personasim.testbed.loo import LooOptions, leave_one_out
from personasim.testbed.questions import builtin_questions, load_questions, questions_from_pairs
from tests.support.scripted import ScriptedStandIn

from .conftest import PROFILES, persona_table


def chooser(request, _seen):
    """A stand-in persona: picks B when its profile names a religion, else A, except on the
    'news' question where it always picks C."""
    text = request.messages[0].content + request.messages[-1].content
    if "where should i get my news" in text.lower():
        return {"C": 1.0}
    return {"B": 1.0} if "Religion" in request.messages[0].content else {"A": 1.0}


def test_kappa_per_pair_and_ranking_follow_the_scripted_choices():
    questions = builtin_questions()[:4]
    result = leave_one_out(
        persona_table(),
        questions,
        ScriptedStandIn(choice_script=chooser),
        LooOptions(attributes=("religion", "age"), n_personas=3, k=2, n_boot=50),
    )
    religion = result.pairs[result.pairs["attribute"] == "religion"]
    age = result.pairs[result.pairs["attribute"] == "age"]
    # adding religion flips A -> B on 3 of 4 questions; the news question stays C
    assert religion["agreement"].tolist() == [0.25] * 3
    # base A A C A vs plus B B C B: observed 1/4, chance (1/4)^2 -> (1/4 - 1/16) / (15/16)
    assert religion["kappa"].tolist() == pytest.approx([0.2] * 3)
    # age changes nothing unless the base already had religion (then both say B)
    assert (age["agreement"] == 1.0).all() and (age["kappa"] == 1.0).all()
    top = result.summary.iloc[0]
    assert top["attribute"] == "religion" and top["rank"] == 1
    assert top["influence"] == pytest.approx(1 - religion["kappa"].mean())
    for attrs in result.pairs["attributes"]:
        assert len(json.loads(attrs)) == 2


def test_constant_choices_give_nan_kappa_and_a_note():
    result = leave_one_out(
        persona_table(),
        builtin_questions()[:3],
        ScriptedStandIn(choice_script=lambda r, _: {"A": 1.0}),
        LooOptions(attributes=("age",), n_personas=2, k=1, n_boot=0),
    )
    assert result.pairs["kappa"].isna().all()
    assert result.summary["n_undefined"].iloc[0] == 2
    assert math.isnan(result.summary["mean_kappa"].iloc[0])
    assert any("undefined" in n for n in result.notes)


def test_conditional_attributes_are_drawn_from_holders_and_said_so():
    result = leave_one_out(
        persona_table(),
        builtin_questions()[:2],
        ScriptedStandIn(choice_script=chooser),
        LooOptions(attributes=("vision_difficulty",), n_personas=3, k=2, n_boot=0),
    )
    holders = [p for p, f in PROFILES.items() if "vision_difficulty" in f]
    assert set(result.pairs["person_id"]) == set(holders)
    assert result.pairs["conditional"].all()
    assert any("conditional" in n for n in result.notes)


def test_unknown_attribute_and_questions_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no persona has attribute 'relgion'") as error:
        leave_one_out(
            persona_table(),
            builtin_questions()[:2],
            ScriptedStandIn(choice_script=chooser),
            LooOptions(attributes=("relgion",)),
        )
    assert "did you mean 'religion'" in error.value.one_line()
    (tmp_path / "q.yaml").write_text("questions:\n  - {id: x, text: Why, answers: [only one]}\n")
    with pytest.raises(DataError, match="answers"):
        load_questions(tmp_path / "q.yaml")
    assert len(builtin_questions()) >= 20
    assert all(3 <= len(q.answers) <= 4 for q in builtin_questions())


def test_questions_from_pairs_use_the_answer_and_the_revisions():
    import pandas as pd

    pairs = pd.DataFrame(
        {
            "prompt_id": ["x", "x", "y"],
            "prompt": ["Q?", "Q?", "R?"],
            "rejected": ["base", "base", "r"],
            "chosen": ["one", "two", "r"],
            "ok": [True, True, True],
        }
    )
    questions = questions_from_pairs(pairs)
    assert [q.id for q in questions] == ["x"] and questions[0].answers == ("base", "one", "two")


@pytest.mark.slow
def test_leave_one_out_on_the_embedded_model(fresh_embedded):
    result = leave_one_out(
        persona_table(),
        builtin_questions()[:3],
        fresh_embedded,
        LooOptions(attributes=("religion", "ideology"), n_personas=1, k=2, n_boot=50),
    )
    assert len(result.pairs) == 2 and len(result.labels) == 2 * 2 * 3
    assert result.labels["valid_mass"].gt(0).all()
    assert result.summary["rank"].tolist() == [1, 2]
    assert png_bytes(loo_boxplot(result.pairs, result.summary))[:4] == b"\x89PNG"
    print(result.text())
