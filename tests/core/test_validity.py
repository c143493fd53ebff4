"""One validity rule (:mod:`personasim.core.validity`): the same table gives the same decision in
simulate, score, the testbed and the manifest, whatever form a missing ``valid`` takes (None in
an object column, ``pd.NA`` in a boolean one, NaN in a float one, a null read from Parquet).

The simulate family runs the real embedded model; the rest calls no model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from personasim.core.errors import DataError
from personasim.core.validity import (
    empty_probs,
    invalid_answer_rows,
    invalid_personas,
)
from personasim.pipeline.manifest import exclusions
from personasim.scoring.score import score
from personasim.simulate.personas import check_personas
from personasim.simulate.run import simulate
from personasim.spec.study import builtin_study
from personasim.survey.questions import Survey
from personasim.testbed.common import persona_tier
from personasim.truth import Truth

SURVEY = Survey.model_validate(
    {
        "id": "v",
        "questions": [
            {
                "id": "q1",
                "text": "Tea or coffee?",
                "options": [{"label": "A", "text": "Tea"}, {"label": "B", "text": "Coffee"}],
            }
        ],
    }
)
TRUTH = Truth(
    "distribution",
    SURVEY,
    pd.DataFrame(
        {
            "question_id": "q1",
            "attribute": "overall",
            "group": "all",
            "option": ["Tea", "Coffee"],
            "weight": [1.0, 0.0],
        }
    ),
)
NULLS = {"None": (None, object), "NA": (pd.NA, "boolean"), "NaN": (np.nan, float)}
"""The forms a missing ``valid`` takes in pandas, with the column dtype that holds it."""


def _personas(null: str) -> pd.DataFrame:
    """Persons 1 (valid), 2 (``valid`` missing) and 3 (invalid), tier ``persona``."""
    value, dtype = NULLS[null]
    return pd.DataFrame(
        {
            "person_id": ["1", "2", "3"],
            "tier": "persona",
            "generator": "g",
            "text": ["- Age: 30 years", "- Age: 40 years", "- Age: 50 years"],
            "valid": pd.Series([True, value, False], dtype=dtype),
        }
    )


def _responses(valid: list, mass: list[float]) -> pd.DataFrame:
    """One answer (Tea) per person 1..n to q1."""
    n = len(valid)
    return pd.DataFrame(
        {
            "person_id": [str(i + 1) for i in range(n)],
            "tier": "persona",
            "generator": "g",
            "simulator": "s",
            "question_id": "q1",
            "estimator": "logprobs",
            "probs": [[1.0, 0.0]] * n,
            "answer": None,
            "valid_mass": mass,
            "valid": pd.Series(valid, dtype=object),
        }
    )


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("null", NULLS)
def test_a_missing_valid_is_invalid_in_pandas_and_arrow(null: str) -> None:
    personas = _personas(null)
    assert invalid_personas(personas).tolist() == [False, True, True]
    arrow = pa.Table.from_pandas(personas, preserve_index=False)
    assert invalid_personas(arrow).tolist() == [False, True, True]
    assert invalid_personas(arrow.to_batches()[0]).tolist() == [False, True, True]


def test_a_table_without_valid_is_all_valid() -> None:
    personas = _personas("None").drop(columns="valid")
    assert not invalid_personas(personas).any()
    answers = _responses([True, True], [0.9, 0.0]).drop(columns="valid")
    assert invalid_answer_rows(answers).tolist() == [False, True]  # the threshold alone


def test_answers_invalid_by_flag_threshold_and_missing_flag() -> None:
    rows = _responses([True, None, False, True, True], [0.9, 0.9, 0.9, 0.3, float("nan")])
    assert invalid_answer_rows(rows, 0.3).tolist() == [False, True, True, True, False]
    arrow = pa.Table.from_pandas(rows.drop(columns="probs"), preserve_index=False)
    assert invalid_answer_rows(arrow, 0.3).tolist() == [False, True, True, True, False]


def test_empty_probs_in_pandas_and_arrow() -> None:
    probs = pd.Series([[0.2, 0.8], None, [], [0.0, 0.0]], dtype=object)
    assert empty_probs(probs).tolist() == [False, True, True, True]
    assert empty_probs(pa.array(probs.tolist(), pa.list_(pa.float64()))).tolist() == [
        False,
        True,
        True,
        True,
    ]


def test_a_valid_flag_that_is_no_boolean_is_one_error() -> None:
    personas = _personas("None").assign(valid=["yes", "no", "maybe"])
    with pytest.raises(DataError, match="column 'valid' must hold True/False"):
        invalid_personas(personas)


# --------------------------------------------------------------------------- each caller


@pytest.mark.parametrize("null", NULLS)
def test_simulate_leaves_out_a_persona_without_valid(null: str, embedded) -> None:
    report = simulate(_personas(null), SURVEY, embedded)
    assert set(report.responses["person_id"]) == {"1"}
    assert report.excluded == {("persona", "g"): 2}


@pytest.mark.parametrize("null", NULLS)
def test_score_leaves_out_answers_of_a_persona_without_valid(null: str) -> None:
    result = score(
        _responses([True, True, True], [1.0, 1.0, 1.0]), TRUTH, n_boot=0, personas=_personas(null)
    )
    tv = result.scores.set_index("metric").loc["tv"]
    assert tv["n"] == 1 and tv["excluded"] == 2


@pytest.mark.parametrize("null", NULLS)
def test_testbed_takes_only_personas_marked_valid(null: str) -> None:
    assert persona_tier(_personas(null))["person_id"].tolist() == ["1"]


def test_blank_text_of_a_valid_persona_is_the_same_error_in_simulate_and_testbed() -> None:
    personas = _personas("None").assign(valid=True, text=["- Age: 30 years", "  ", "x"])
    with pytest.raises(DataError, match="column 'text' is empty for person_id 2"):
        check_personas(personas)
    with pytest.raises(DataError, match="column 'text' is empty for person_id 2"):
        persona_tier(personas)


@pytest.mark.parametrize("null", NULLS)
def test_manifest_counts_what_simulate_and_score_leave_out(null: str, tmp_path) -> None:
    spec = builtin_study("tiny")
    responses = _responses([True, None, True], [1.0, 1.0, 0.0])
    responses.to_parquet(tmp_path / "responses_elections.parquet")
    counted = exclusions(spec, tmp_path, _personas(null))
    assert counted["personas"] == {"persona/g": 2}
    # the answer without `valid` and the one of mass 0: the two that score leaves out
    tv = score(responses, TRUTH, n_boot=0).scores.set_index("metric").loc["tv"]
    assert counted["answers"] == {"elections": 2} and tv["excluded"] == 2
