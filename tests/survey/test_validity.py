"""The validity policy, pinned with values computed by hand: invalid personas are never simulated
or scored, no answer is invented from zero mass, and the summary CI is the interval of the mean
it stands beside (persons resampled jointly across questions).

Model calls go to ScriptedStandIn, a test double named as such: the real model puts zero mass on
the option letters only by chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.scoring import intervals as I
from personasim.scoring.score import _seed, score, summarize
from personasim.scoring.stream import person_hash
from personasim.simulate.plan import SimulateOptions
from personasim.simulate.run import simulate
from personasim.survey.questions import Survey
from personasim.truth import Truth, load_truth
from personasim.truth import elections as E
from tests.support.scripted import ScriptedStandIn

SURVEY = Survey.model_validate(
    {
        "id": "v",
        "questions": [
            {
                "id": "q1",
                "text": "Tea or coffee?",
                "options": [{"label": "A", "text": "Tea"}, {"label": "B", "text": "Coffee"}],
            },
            {
                "id": "q2",
                "text": "Rain or sun?",
                "options": [{"label": "A", "text": "Rain"}, {"label": "B", "text": "Sun"}],
            },
        ],
    }
)


def _truth(q1: tuple[float, float], q2: tuple[float, float]) -> Truth:
    """Overall truth of the two nominal questions."""
    table = pd.DataFrame(
        {
            "question_id": ["q1", "q1", "q2", "q2"],
            "attribute": "overall",
            "group": "all",
            "option": ["Tea", "Coffee", "Rain", "Sun"],
            "weight": [*q1, *q2],
        }
    )
    return Truth("distribution", SURVEY, table)


def _row(pid: str, qid: str, probs, mass: float = 1.0, generator: str = "g", **extra) -> dict:
    return {
        "person_id": pid,
        "tier": "descriptive",
        "generator": generator,
        "simulator": "s",
        "question_id": qid,
        "estimator": "logprobs",
        "probs": probs,
        "answer": None,
        "valid_mass": mass,
        **extra,
    }


# --------------------------------------------------------------------------- zero mass


def test_score_never_reads_a_zero_mass_row_as_a_respondent() -> None:
    # b's row is the old uniform stand-in (mass 0), marked valid by whoever wrote the file
    rows = pd.DataFrame(
        [
            _row("a", "q1", [1.0, 0.0], valid=True),
            _row("b", "q1", [0.5, 0.5], mass=0.0, valid=True),
            _row("c", "q1", [0.0, 1.0], mass=0.4, valid=True),
            _row("d", "q1", [0.0, 1.0], valid=False),
        ]
    )
    truth = _truth((1, 0), (1, 1))
    s = score(rows, truth, n_boot=0).scores.set_index("metric")
    # kept: a [1, 0] and c [0, 1] -> [.5, .5]; truth [1, 0]: TV = .5, alignment .5
    # (with b read as uniform it would be [.5, .5] too, so check n and the counts)
    assert s.loc["tv", "value"] == pytest.approx(0.5) and s.loc["tv", "n"] == 2
    assert s.loc["tv", "answers"] == 4 and s.loc["tv", "excluded"] == 2
    assert s.loc["tv", "excluded_share"] == pytest.approx(0.5)
    # threshold 0.5 also drops c (0.4 <= 0.5): only a [1, 0] is left, TV 0
    s = score(rows, truth, n_boot=0, min_valid_mass=0.5).scores.set_index("metric")
    assert s.loc["tv", "value"] == pytest.approx(0.0) and s.loc["tv", "excluded"] == 3


def test_summary_excluded_adds_up_over_questions() -> None:
    rows = pd.DataFrame(
        [
            _row("a", "q1", [1.0, 0.0]),
            _row("b", "q1", [0.5, 0.5], mass=0.0),
            _row("a", "q2", [1.0, 0.0]),
            _row("b", "q2", [0.0, 1.0]),
        ]
    )
    summary = score(rows, _truth((1, 0), (1, 0)), n_boot=0).summary.set_index("metric")
    # 1 of 2 answers excluded on q1, 0 of 2 on q2 -> 1 of 4
    assert summary.loc["alignment", "excluded"] == 1
    assert summary.loc["alignment", "excluded_share"] == pytest.approx(0.25)
    # alignment q1 = 1 (only a), q2 = 1 - TV([.5,.5],[1,0]) = .5 -> mean .75
    assert summary.loc["alignment", "value"] == pytest.approx(0.75)


def _personas() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": [1, 2, 3],
            "tier": "descriptive",
            "generator": "g",
            "text": ["- Age: 30 years", "- Age: 50 years", ""],
            "valid": [True, True, False],
            "weight": 1.0,
        }
    )


def _by_profile(request, seen):
    """Letter probabilities by persona: age 30 -> A .6 / B .2; age 50 -> nothing on a letter."""
    return {"A": 0.6, "B": 0.2} if "30 years" in request.messages[0].content else {}


def test_simulate_excludes_invalid_personas_and_records_zero_mass_invalid() -> None:
    backend = ScriptedStandIn(choice_script=_by_profile)
    report = simulate(_personas(), SURVEY, backend, SimulateOptions())
    r = report.responses.set_index(["person_id", "question_id"])
    assert len(backend.calls) == 4  # persons 1 and 2 x 2 questions; person 3 never asked
    assert report.excluded == {("descriptive", "g"): 1}
    assert "1 invalid personas excluded (descriptive/g 1)" in report.summary()
    # person 1: .6/.2 renormalized to [.75, .25], valid_mass .8
    assert list(r.loc[(1, "q1"), "probs"]) == pytest.approx([0.75, 0.25])
    assert r.loc[(1, "q1"), "valid_mass"] == pytest.approx(0.8) and r.loc[(1, "q1"), "valid"]
    # person 2: zero mass -> invalid, no distribution, no answer
    assert not r.loc[(2, "q1"), "valid"] and r.loc[(2, "q1"), "probs"] is None
    assert pd.isna(r.loc[(2, "q1"), "answer"]) and r.loc[(2, "q1"), "valid_mass"] == 0.0
    assert report.invalid_answers == 2 and "2 invalid answers" in report.summary()
    # scoring reads the same rows: only person 1 enters; q1 truth [1, 0]: TV .25
    s = score(report.responses, _truth((1, 0), (0, 1)), n_boot=0).scores
    q1 = s[(s.question_id == "q1") & (s.metric == "tv")].iloc[0]
    assert q1["value"] == pytest.approx(0.25) and q1["n"] == 1 and q1["excluded"] == 1


def test_min_valid_mass_option_in_simulate(tmp_path) -> None:
    backend = ScriptedStandIn(choice_script=_by_profile)
    options = SimulateOptions(min_valid_mass=0.8)
    report = simulate(_personas(), SURVEY, backend, options)
    # person 1's mass .8 is not above .8: every answer is invalid
    assert not report.responses["valid"].any() and report.invalid_answers == 4


def test_score_excludes_responses_of_invalid_personas() -> None:
    # responses written before simulate excluded invalid personas: person 3's row must not count
    rows = pd.DataFrame([_row("1", "q1", [1.0, 0.0]), _row("3", "q1", [0.0, 1.0])])
    personas = _personas().assign(person_id=["1", "2", "3"])
    result = score(rows, _truth((1, 0), (1, 1)), n_boot=0, personas=personas)
    tv = result.scores.set_index("metric").loc["tv"]
    assert tv["value"] == 0.0 and tv["n"] == 1 and tv["excluded"] == 1
    assert "1 response row(s) of invalid personas excluded" in result.notes


# --------------------------------------------------------------------------- summary CI


def _summary_by_intervals(truths: list[tuple[float, float]], seed: int, n_boot: int) -> I.Estimate:
    """Mean TV over q1, q2 of persons a (first options) and b (second options), computed with
    intervals.py directly: persons drawn once for both questions with the overall group's
    seed."""
    keys, probs, w = person_hash(np.array(["a", "b"], dtype=object)), np.eye(2), np.ones(2)
    overall = _seed(seed, "overall", "all")
    reps = I.joint_replicate_means([keys, keys], [probs, probs], [w, w], n_boot, overall)
    return I.estimate_summary(
        [
            I.SummaryPart("tv", np.array([0.5, 0.5]), r, np.array(q), n=2, weights=w)
            for r, q in zip(reps, truths, strict=True)
        ]
    )


def test_summary_ci_resamples_persons_jointly_across_questions() -> None:
    # a says Tea and Rain, b says Coffee and Sun; truth: all Tea, all Sun. A replicate drawing
    # a k times gives q1 alignment k/2 and q2 alignment 1 - k/2: the mean does not move, so the
    # joint interval is far narrower than one from independent draws per question.
    rows = pd.DataFrame(
        [
            _row("a", "q1", [1.0, 0.0]),
            _row("b", "q1", [0.0, 1.0]),
            _row("a", "q2", [1.0, 0.0]),
            _row("b", "q2", [0.0, 1.0]),
        ]
    )
    result = score(rows, _truth((1, 0), (0, 1)), n_boot=400, seed=3)
    summary = result.summary.set_index("metric").loc["alignment"]
    assert summary["value"] == pytest.approx(0.5)
    joint = _summary_by_intervals([(1, 0), (0, 1)], seed=3, n_boot=400)
    assert (summary["corrected"], summary["ci_low"], summary["ci_high"]) == pytest.approx(
        joint.alignment()[1:]
    )
    assert (summary["p_equal"], summary["detectable"]) == pytest.approx(
        (joint.p_equal, joint.detectable)
    )
    # drawn jointly the replicates' mean distance does not move, drawn apart it does (at two
    # persons both intervals reach the ends of [0, 1], so their widths cannot show it)
    keys, w = person_hash(np.array(["a", "b"], dtype=object)), np.ones(2)
    overall, truths = _seed(3, "overall", "all"), [np.array([1.0, 0.0]), np.array([0.0, 1.0])]
    together = I.joint_replicate_means([keys, keys], [np.eye(2)] * 2, [w, w], 400, overall)
    apart = [I.replicate_means(keys, np.eye(2), w, 400, overall + j) for j in range(2)]
    for reps, spread in ((together, 0.0), (apart, 0.25)):
        mean_tv = np.mean([I.tv_rows(r, q) for r, q in zip(reps, truths, strict=True)], axis=0)
        assert mean_tv.std() == pytest.approx(spread, abs=0.03)
    per_question = result.scores[result.scores.metric == "tv"].set_index("question_id")
    reps = I.replicate_means(keys, np.eye(2), w, 400, _seed(3, "overall", "all"))
    q1 = I.estimate("tv", [0.5, 0.5], reps, [1.0, 0.0], 2, weights=w)
    assert (per_question.loc["q1", "ci_low"], per_question.loc["q1", "ci_high"]) == pytest.approx(
        (q1.ci_low, q1.ci_high)
    )


def test_summary_ci_of_correlated_questions_is_the_joint_one() -> None:
    # a says Tea and Rain on both, b Coffee and Sun; truth all Tea and all Rain: both
    # alignments are k/2 in a replicate, so the questions move together.
    rows = pd.DataFrame(
        [
            _row("a", "q1", [1.0, 0.0]),
            _row("b", "q1", [0.0, 1.0]),
            _row("a", "q2", [1.0, 0.0]),
            _row("b", "q2", [0.0, 1.0]),
        ]
    )
    summary = score(rows, _truth((1, 0), (1, 0)), n_boot=400).summary.set_index("metric")
    joint = _summary_by_intervals([(1, 0), (1, 0)], seed=0, n_boot=400)
    assert (summary.loc["alignment", "ci_low"], summary.loc["alignment", "ci_high"]) == (
        pytest.approx(joint.alignment()[2:])
    )


def test_cross_model_table_carries_the_joint_ci() -> None:
    rows = pd.DataFrame(
        [
            *(
                _row(p, q, probs, generator=g)
                for g in ("g1", "g2")
                for p, q, probs in (
                    ("a", "q1", [1.0, 0.0]),
                    ("b", "q1", [0.0, 1.0]),
                    ("a", "q2", [1.0, 0.0]),
                    ("b", "q2", [0.0, 1.0]),
                )
            ),
        ]
    )
    result = score(rows, _truth((1, 0), (0, 1)), n_boot=200)
    cross = result.cross_model.set_index("generator")
    assert list(cross.index) == ["g1", "g2"]
    joint = _summary_by_intervals([(1, 0), (0, 1)], seed=0, n_boot=200)
    expected = [0.5, 1 - joint.ci_high, 1 - joint.ci_low]
    found = cross[["value", "ci_low", "ci_high"]].to_numpy()
    assert found == pytest.approx(np.array([expected] * 2))


def test_election_summary_ci_resamples_within_states_shared_by_years() -> None:
    # CA: a votes Democrat in 2016 and 2020, b Republican; TX: c at .3 both years. Each state's
    # persons are drawn with its own seed, once for both years: the summary alignment is
    # 1 - mean |share - truth| over year x state, its interval the one intervals.py gives for
    # those four parts with CA's two years sharing one draw.
    rows = []
    for qid in ("president_2016", "president_2020"):
        rows += [_row("a", qid, [1.0, 0.0]), _row("b", qid, [0.0, 1.0]), _row("c", qid, [0.3, 0.7])]
    persons = pd.DataFrame({"person_id": ["a", "b", "c"], "state": ["CA", "CA", "TX"]})
    result = score(pd.DataFrame(rows), load_truth("elections"), persons, n_boot=400, seed=1)
    truth = {y: E.state_truth(y).set_index("state")["dem_share"] for y in (2016, 2020)}
    ca, tx = person_hash(np.array(["a", "b"], dtype=object)), person_hash(np.array(["c"]))
    ca_reps = I.joint_replicate_means(
        [ca, ca], [np.array([[1.0], [0.0]])] * 2, [np.ones(2)] * 2, 400, _seed(1, "state", "CA")
    )
    tx_reps = I.joint_replicate_means(
        [tx, tx], [np.array([[0.3]])] * 2, [np.ones(1)] * 2, 400, _seed(1, "state", "TX")
    )
    parts = []
    for j, year in enumerate((2016, 2020)):
        for state, share, reps, n in (("CA", 0.5, ca_reps, 2), ("TX", 0.3, tx_reps, 1)):
            t = truth[year][state]
            parts.append(
                I.SummaryPart(
                    "abs_diff",
                    np.array([share, 1 - share]),
                    np.column_stack([reps[j], 1 - reps[j]]),
                    np.array([t, 1 - t]),
                    n=n,
                    weights=np.ones(n),
                )
            )
    expected = I.estimate_summary(parts)
    row = result.summary.set_index("metric").loc["alignment"]
    assert row["value"] == pytest.approx(1 - expected.value)
    assert (row["corrected"], row["ci_low"], row["ci_high"]) == pytest.approx(
        expected.alignment()[1:]
    )


def test_summary_of_an_old_scores_file_has_no_invented_ci() -> None:
    rows = pd.DataFrame([_row("a", "q1", [1.0, 0.0]), _row("b", "q1", [0.0, 1.0])])
    scores = score(rows, _truth((1, 0), (1, 1)), n_boot=50).scores
    old = scores.drop(
        columns=["summary_ci_low", "summary_ci_high", "answers", "excluded", "excluded_share"]
    )
    summary = summarize(old)
    assert summary["ci_low"].isna().all() and summary["ci_high"].isna().all()


def _score_args(tmp_path) -> tuple[list[str], Path]:
    """`score` arguments for ``tmp_path/r.parquet`` against one question whose truth is all
    Tea (the survey and truth files written here), and the scores file they write."""
    survey = tmp_path / "v.json"
    survey.write_text(SURVEY.model_dump_json())
    counts = tmp_path / "truth.csv"
    counts.write_text("question_id,option,count\nq1,Tea,1\nq1,Coffee,0\n")
    out = tmp_path / "s.parquet"
    return [
        "--responses",
        str(tmp_path / "r.parquet"),
        "--truth",
        f"csv:{counts}",
        "--survey",
        str(survey),
        "--out",
        str(out),
        "--n-boot",
        "0",
    ], out


def test_score_cli_applies_min_valid_mass(tmp_path) -> None:
    from click.testing import CliRunner

    from personasim.cli.survey import score_command

    rows = pd.DataFrame(
        [
            _row("a", "q1", [1.0, 0.0], mass=0.9),
            _row("b", "q1", [0.0, 1.0], mass=0.3),
        ]
    )
    rows.to_parquet(tmp_path / "r.parquet")
    args, out = _score_args(tmp_path)
    result = CliRunner().invoke(score_command, [*args, "--min-valid-mass", "0.5"])
    assert result.exit_code == 0, result.output
    tv = pd.read_parquet(out).set_index("metric").loc["tv"]
    # b (mass .3 <= .5) is out: a alone says Tea, as the truth does
    assert tv["value"] == 0.0 and tv["excluded"] == 1
    bad = CliRunner().invoke(score_command, [*args, "--min-valid-mass", "1"])
    assert bad.exit_code == 2


def test_score_cli_leaves_out_responses_of_invalid_personas(tmp_path) -> None:
    """An old responses file still holds an invalid persona's answers; --personas drops them."""
    from click.testing import CliRunner

    from personasim.cli.survey import score_command

    rows = pd.DataFrame([_row("a", "q1", [1.0, 0.0]), _row("b", "q1", [0.0, 1.0])])
    rows.to_parquet(tmp_path / "r.parquet")
    pd.DataFrame(
        {"person_id": ["a", "b"], "tier": "descriptive", "generator": "g", "valid": [True, False]}
    ).to_parquet(tmp_path / "p.parquet")
    args, out = _score_args(tmp_path)
    assert CliRunner().invoke(score_command, args).exit_code == 0
    both = pd.read_parquet(out).set_index("metric").loc["tv"]
    assert both["value"] == 0.5 and both["excluded"] == 0  # a Tea, b Coffee: half off
    result = CliRunner().invoke(score_command, [*args, "--personas", str(tmp_path / "p.parquet")])
    assert result.exit_code == 0, result.output
    tv = pd.read_parquet(out).set_index("metric").loc["tv"]
    assert tv["value"] == 0.0 and tv["excluded"] == 1  # b is out: a alone matches the truth
