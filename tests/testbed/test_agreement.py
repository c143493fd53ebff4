"""Agreement figures against hand-computed cases and against the libraries, the undefined cases
(NaN with a note), the human CSV import with its majority, and the figures."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from personasim.core.errors import DataError
from personasim.report.testbed import kappa_heatmap, kappa_histograms, png_bytes
from personasim.testbed.agreement import (
    agreement,
    fleiss,
    kappa_matrix,
    kripp_alpha,
    majority,
    per_persona_kappa,
    read_human_labels,
)
from personasim.testbed.common import kappa
from personasim.testbed.questions import PreferenceQuestion

#: 3 raters x 4 items (persona p1: q1, q2; persona p2: q1, q2).
RATINGS = {"r1": ["A", "A", "B", "A"], "r2": ["A", "A", "B", "B"], "r3": ["A", "B", "B", "B"]}
ITEMS = [("p1", "q1"), ("p1", "q2"), ("p2", "q1"), ("p2", "q2")]


def labels(ratings: dict[str, list[str]] = RATINGS) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"rater": r, "persona_id": p, "question_id": q, "choice": c}
            for r, cs in ratings.items()
            for (p, q), c in zip(ITEMS, cs, strict=True)
        ]
    )


def test_cohen_kappa_matches_a_hand_computed_case_and_sklearn():
    a, b = ["A", "A", "B", "B"], ["A", "B", "B", "B"]
    # observed 3/4; chance 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa = (0.75 - 0.5) / 0.5
    assert kappa(a, b) == pytest.approx(0.5)
    assert kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_kappa_is_nan_when_both_raters_give_one_constant_label():
    assert math.isnan(kappa(["A"] * 5, ["A"] * 5))
    assert kappa(["A"] * 4, ["A", "A", "B", "A"]) == pytest.approx(0.0)


def test_fleiss_matches_a_hand_computed_case_and_statsmodels():
    # per item P_i: 1, 1/3, 1, 1/3 -> mean 2/3; category shares 1/2, 1/2 -> P_e 1/2
    value, items = fleiss(labels())
    assert items == 4 and value == pytest.approx((2 / 3 - 0.5) / 0.5)
    codes = np.array([[0 if c == "A" else 1 for c in col] for col in RATINGS.values()]).T
    assert value == pytest.approx(fleiss_kappa(aggregate_raters(codes)[0]))


def test_krippendorff_nominal_matches_a_hand_computed_case_and_the_library():
    # coincidences: o_AA = 4, o_BB = 4, o_AB = o_BA = 2; n = 12, n_A = n_B = 6
    # D_o = 4 / 12, D_e = 2 * 6 * 6 / (12 * 11) -> alpha = 1 - (1/3) / (6/11) = 7/18
    assert kripp_alpha(labels()) == pytest.approx(7 / 18)
    data = [[0 if c == "A" else 1 for c in col] for col in RATINGS.values()]
    nominal = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert kripp_alpha(labels()) == pytest.approx(nominal)


def test_missing_labels_are_allowed_in_alpha_and_left_out_of_fleiss():
    frame = labels()
    frame.loc[
        (frame.rater == "r3") & (frame.persona_id == "p2") & (frame.question_id == "q2"), "choice"
    ] = None
    assert fleiss(frame)[1] == 3
    assert not math.isnan(kripp_alpha(frame))


def test_pairwise_matrix_and_per_persona_kappa():
    matrix = kappa_matrix(labels())
    assert matrix.loc["r1", "r2"] == pytest.approx(cohen_kappa_score(RATINGS["r1"], RATINGS["r2"]))
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T, equal_nan=True)
    per = per_persona_kappa(labels())
    assert len(per) == 3 * 2 and set(per["n"]) == {2}
    row = per[(per.rater_a == "r1") & (per.rater_b == "r3") & (per.persona_id == "p1")]
    assert row["kappa"].iloc[0] == pytest.approx(cohen_kappa_score(["A", "A"], ["A", "B"]))


def test_constant_raters_give_nan_figures_with_notes_not_a_crash():
    result = agreement(labels({"r1": ["A"] * 4, "r2": ["A"] * 4}))
    assert math.isnan(result.matrix.loc["r1", "r2"])
    assert math.isnan(result.fleiss_kappa) and math.isnan(result.alpha)
    notes = " ".join(result.notes)
    assert "undefined" in notes and "Fleiss" in notes and "Krippendorff" in notes
    assert "NaN" in result.text() or "nan" in result.text()


QUESTIONS = [
    PreferenceQuestion(id=q, text="Which?", answers=("one", "two", "three")) for q in ("q1", "q2")
]
"""Two preference questions of three answers (letters A, B, C)."""


def test_human_csv_is_checked_and_reduced_to_a_majority(tmp_path):
    rows = ["rater,persona_id,question_id,choice"]
    rows += [f"h{i},p1,q1,{c}" for i, c in enumerate("AAAB")]  # 3 of 4: A
    rows += [f"h{i},p1,q2,{c}" for i, c in enumerate("AABB")]  # tie: left out
    path = tmp_path / "humans.csv"
    path.write_text("\n".join(rows) + "\n")
    humans = read_human_labels(path, ["p1", "p2"], QUESTIONS)
    reduced, ties = majority(humans)
    assert reduced[["persona_id", "question_id", "choice"]].values.tolist() == [["p1", "q1", "A"]]
    assert ties == 1
    result = agreement(labels(), humans)
    assert "human" in result.matrix.index
    assert any("majority" in n and "1 tied" in n for n in result.notes)
    with pytest.raises(DataError, match="unknown persona_id 'p1'"):
        read_human_labels(path, ["p9"])
    path.write_text("rater,persona_id,question_id,choice\nh1,p1,q1,banana\nh2,p1,q1,D\n")
    with pytest.raises(DataError, match=r"choice 'banana' of question 'q1' .* \(2 such labels\)"):
        read_human_labels(path, None, QUESTIONS)


def test_figures_are_png_data():
    result = agreement(labels())
    for uri in (kappa_heatmap(result.matrix), kappa_histograms(result.per_persona)):
        assert uri.startswith("data:image/png;base64,")
        assert png_bytes(uri)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_embedded_model_against_itself_with_the_answers_reversed(fresh_embedded):
    from personasim.testbed.agreement import model_labels
    from personasim.testbed.questions import builtin_questions

    from .conftest import persona_table

    questions = builtin_questions()[:2]
    frames = [
        model_labels(fresh_embedded, persona_table(), questions, "as shown"),
        model_labels(fresh_embedded, persona_table(), questions, "reversed", reverse=True),
    ]
    result = agreement(pd.concat(frames, ignore_index=True))
    assert fresh_embedded.stats.model_calls == 2 * 2 * 2
    assert result.labels["choice"].notna().all()
    assert result.matrix.shape == (2, 2) and len(result.per_persona) == 2
    both = result.labels.pivot_table(
        index=["persona_id", "question_id"], columns="rater", values="choice", aggfunc="first"
    )
    assert result.matrix.loc["as shown", "reversed"] == pytest.approx(
        cohen_kappa_score(both["as shown"], both["reversed"])
    ) or math.isnan(result.matrix.loc["as shown", "reversed"])
    print(result.text())


@pytest.mark.slow
def test_the_same_model_over_http_agrees_with_the_embedded_one(
    llama_server, embedded_model_path, fresh_embedded
):
    from personasim.llm import get_backend
    from personasim.testbed.agreement import model_labels
    from personasim.testbed.questions import builtin_questions

    from .conftest import persona_table

    remote = get_backend(
        f"openai:smollm2@{llama_server}",
        choice_mode="completions",
        completion_template=f"gguf:{embedded_model_path}",
    )
    questions = builtin_questions()[:2]
    labels = pd.concat(
        [
            model_labels(fresh_embedded, persona_table(), questions, "embedded"),
            model_labels(remote, persona_table(), questions, "server"),
        ],
        ignore_index=True,
    )
    result = agreement(labels)
    wide = result.labels.pivot_table(
        index=["persona_id", "question_id"], columns="rater", values="choice", aggfunc="first"
    )
    assert (wide["embedded"] == wide["server"]).all()  # same weights, same template
    value = result.matrix.loc["embedded", "server"]
    assert value == pytest.approx(1.0) or (math.isnan(value) and wide["embedded"].nunique() == 1)
