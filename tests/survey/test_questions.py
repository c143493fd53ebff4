"""The question model: validation, presentation letters and mapping a permutation back."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from personasim.core.errors import ConfigError
from personasim.survey.questions import Option, Question, Survey, letter


def _q(**kw) -> Question:
    base = {
        "id": "q1",
        "text": "How?",
        "options": [
            {"label": "A", "text": "Low", "position": 1},
            {"label": "B", "text": "High", "position": 2},
            {"label": "C", "text": "Refused", "refusal": True},
        ],
        "kind": "ordinal",
    }
    return Question.model_validate({**base, **kw})


def test_valid_ordinal_question() -> None:
    q = _q()
    assert q.positions.tolist() == [1.0, 2.0]
    assert q.refusal_mask.tolist() == [False, False, True]
    assert q.index_of("high") == 1 and q.index_of("C") == 2


@pytest.mark.parametrize(
    ("options", "kind", "match"),
    [
        (
            [
                {"label": "A", "text": "x", "position": 1},
                {"label": "A", "text": "y", "position": 2},
            ],
            "ordinal",
            "duplicate option labels",
        ),
        ([{"label": "A", "text": "x"}, {"label": "B", "text": "y"}], "ordinal", "needs a position"),
        (
            [
                {"label": "A", "text": "x", "position": 1},
                {"label": "B", "text": "y", "position": 1},
            ],
            "ordinal",
            "distinct positions",
        ),
        (
            [{"label": "A", "text": "x", "position": 1}, {"label": "B", "text": "y"}],
            "nominal",
            "must not give positions",
        ),
        ([{"label": "A", "text": "x"}], "nominal", "at least 2 options"),
        (
            [
                {"label": "A", "text": "x", "refusal": True},
                {"label": "B", "text": "y", "refusal": True},
            ],
            "nominal",
            "every option is a refusal",
        ),
    ],
)
def test_invalid_questions(options, kind, match) -> None:
    with pytest.raises(ValidationError, match=match):
        Question(id="q", text="t", options=options, kind=kind)


def test_extra_fields_forbidden_and_frozen() -> None:
    with pytest.raises(ValidationError):
        Option(label="A", text="x", colour="red")
    q = _q()
    with pytest.raises(ValidationError):
        q.text = "changed"


def test_permutation_round_trip() -> None:
    q = _q()
    order = q.permutation(np.random.default_rng(5))
    shown = q.presented(order)
    assert [lab for lab, _ in shown] == ["A", "B", "C"]
    assert [text for _, text in shown] == [q.options[i].text for i in order]
    presented = [0.7, 0.2, 0.1]
    original = q.to_original(presented, order)
    for slot, i in enumerate(order):
        assert original[i] == presented[slot]
    with pytest.raises(ConfigError, match="not a permutation"):
        q.presented([0, 0, 1])


def test_letters_go_past_z() -> None:
    assert [letter(i) for i in (0, 25, 26, 27)] == ["A", "Z", "AA", "AB"]


def test_survey_unique_ids_and_did_you_mean() -> None:
    with pytest.raises(ValidationError, match="duplicate question ids"):
        Survey(id="s", questions=[_q(), _q()])
    survey = Survey(id="s", questions=[_q(id="SAFECRIME_W26")])
    with pytest.raises(ConfigError) as info:
        survey.question("SAFECRIME_W62")
    assert "did you mean 'SAFECRIME_W26'" in info.value.one_line()
