"""The tiny built-in study, end to end on the real embedded model (once per module)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.pipeline.driver import RunResult, run_study
from personasim.report import build_report
from personasim.spec.study import builtin_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> RunResult:
    """The tiny study run once: 2 states x 2 persons, meta/objective/descriptive, 3+3 questions."""
    return run_study(builtin_study("tiny"), tmp_path_factory.mktemp("study") / "tiny")


@pytest.fixture(scope="module")
def html(tiny_run: RunResult) -> str:
    return tiny_run.report_path.read_text(encoding="utf-8")


def test_run_directory_holds_every_stage(tiny_run: RunResult) -> None:
    run = tiny_run.out_dir
    for name in (
        "study.toml",
        "stages.json",
        "population.parquet",
        "raking.parquet",
        "personas.parquet",
        "responses_elections.parquet",
        "responses_topics.parquet",
        "scores_elections.parquet",
        "summary_elections.parquet",
        "cross_model_elections.parquet",
        "crosstab_elections.parquet",
        "text_stats.parquet",
        "drift.parquet",
        "manifest.json",
        "cache.sqlite",
        "report.html",
    ):
        assert (run / name).exists(), name
    assert not (run / "scores_topics.parquet").exists()  # no ground truth for topics
    raking = pd.read_parquet(run / "raking.parquet")
    assert set(raking["state"]) == {"VT", "TX"} and (raking["iterations"] > 0).all()
    assert (raking["ess"] > 0).all() and raking["max_rel_error"].notna().all()
    assert len(pd.read_parquet(run / "population.parquet")) == 4
    assert set(pd.read_parquet(run / "personas.parquet")["tier"]) == {
        "meta",
        "objective",
        "descriptive",
    }
    assert [s.stage for s in tiny_run.stages] == [
        "population",
        "personas",
        "simulate",
        "score",
        "diagnostics",
        "testbed",
        "report",
    ]
    assert tiny_run.model_calls > 0


def test_manifest_records_versions_models_and_hashes(tiny_run: RunResult) -> None:
    manifest = json.loads((tiny_run.out_dir / "manifest.json").read_text())
    assert manifest["personasim"] and manifest["python"]
    assert manifest["packages"]["llama_cpp_python"]
    (model,) = manifest["models"].values()
    assert model["identity"].startswith("sha256:")
    assert {"objective", "descriptive"} <= set(manifest["prompt_hashes"])
    assert manifest["model_calls"] == tiny_run.model_calls
    assert [s["stage"] for s in manifest["stages"]][-1] == "report"
    assert set(manifest["excluded"]["answers"]) == {"elections", "topics"}
    responses = {
        sid: pd.read_parquet(tiny_run.out_dir / f"responses_{sid}.parquet")
        for sid in ("elections", "topics")
    }
    assert manifest["excluded"]["answers"] == {
        sid: int((~frame["valid"].astype(bool)).sum()) for sid, frame in responses.items()
    }
    inputs = {name: entry["fingerprint"] for name, entry in manifest["stage_inputs"].items()}
    assert set(inputs["simulate"]["inputs"]) == {"personas.parquet"}
    assert len(inputs["simulate"]["inputs"]["personas.parquet"]) == 64  # a SHA-256
    assert len(inputs["score"]["code"]) == 64
    assert inputs["score"]["code"] != inputs["simulate"]["code"]
    assert manifest["stage_inputs"]["score"]["outputs"][0] == "scores_elections.parquet"
    assert set(inputs["score"]["inputs"]) == {
        "population.parquet",
        "personas.parquet",
        "responses_elections.parquet",
        "responses_topics.parquet",
    }


def _independent_state_scores(run: Path) -> pd.DataFrame:
    """Per question x tier x state: the Democratic two-party share of the simulated answers
    (population-weighted mean over persons of P(dem) / (P(dem) + P(rep))), the real share from
    the packaged results, |delta| and 1 - |delta|: numpy and pandas only, no scoring code."""
    from importlib import resources

    from personasim.survey.loaders import builtin_survey

    survey = builtin_survey("elections")
    with resources.as_file(resources.files("personasim.truth") / "data" / "elections.csv") as f:
        votes = pd.read_csv(f, dtype={"state": str})
    votes = votes[votes["level"] == "state"]
    ratio = votes["dem_votes"] / (votes["dem_votes"] + votes["rep_votes"])
    assert np.abs(votes["dem_share"] - ratio).max() <= 5e-9  # the table rounds to 8 decimals
    real = dict(
        zip(zip(votes["year"], votes["state"], strict=True), votes["dem_share"], strict=True)
    )
    persons = pd.read_parquet(run / "population.parquet")[["person_id", "state", "weight"]]
    answers = pd.read_parquet(
        run / "responses_elections.parquet",
        columns=["person_id", "tier", "question_id", "probs", "valid"],
    )
    answers = answers[answers["valid"].astype(bool)].merge(persons, on="person_id")
    rows = []
    for (qid, tier, state), cell in answers.groupby(["question_id", "tier", "state"]):
        question = survey.question(qid)
        dem, rep = question.index_of("dem"), question.index_of("rep")
        probs = np.vstack(cell["probs"].to_numpy())
        share = float(
            np.average(probs[:, dem] / (probs[:, dem] + probs[:, rep]), weights=cell["weight"])
        )
        truth = real[(int(question.tags["year"]), state)]
        for metric, value in (
            ("dem_share", share),
            ("abs_error", abs(share - truth)),
            ("alignment", 1 - abs(share - truth)),
        ):
            rows.append(
                {
                    "question_id": qid,
                    "tier": tier,
                    "group": state,
                    "metric": metric,
                    "expected": value,
                    "persons": len(cell),
                }
            )
    return pd.DataFrame(rows)


def test_election_scores_equal_an_independent_computation(tiny_run: RunResult) -> None:
    scores = pd.read_parquet(tiny_run.out_dir / "scores_elections.parquet")
    state = scores[scores["attribute"] == "state"]
    expected = _independent_state_scores(tiny_run.out_dir)
    assert len(expected) == 3 * 3 * 2 * 3  # questions x tiers x states x metrics
    both = expected.merge(state, on=["question_id", "tier", "group", "metric"], how="left")
    assert both["value"].notna().all(), "a state score is missing"
    np.testing.assert_allclose(both["value"], both["expected"], rtol=0, atol=1e-9)
    assert (both["n"] == both["persons"]).all() and (both["n"] == 2).all()
    # every interval holds its point value, and is a real interval when there are 2 persons
    finite = scores[scores["ci_low"].notna()]
    assert len(finite) == len(scores)
    assert (
        (finite["ci_low"] <= finite["value"] + 1e-12)
        & (finite["value"] <= finite["ci_high"] + 1e-12)
    ).all()
    continuous = both[both["metric"] != "winner_correct"]
    assert (continuous["ci_high"] - continuous["ci_low"] > 1e-6).all()
    winners = state[state["metric"] == "winner_correct"].merge(
        expected[expected["metric"] == "abs_error"], on=["question_id", "tier", "group"]
    )
    assert set(winners["value"]) <= {0.0, 1.0}


def test_report_is_self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    targets = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert targets and all(t.startswith(("data:image/png;base64,", "#")) for t in targets)
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_every_figure_is_present(html: str) -> None:
    images = re.findall(r'<img[^>]*src="data:image/png;base64,', html)
    # actual map, 3 simulated maps (one per tier), alignment, the cross-model heatmap (census
    # and embedded generators), a cross-tab per election, topic shares, sentiment, 2 clouds
    assert len(images) == 1 + 3 + 1 + 1 + 3 + 1 + 1 + 2
    assert html.count('alt="election map, actual result"') == 1
    for alt in (
        "election map, tier meta",
        "election map, tier objective",
        "election map, tier descriptive",
        "alignment, elections",
        "answer shares, topics",
        "sentiment per tier",
        "word cloud, tier objective",
        "word cloud, tier descriptive",
        "cross-model matrix, elections",
        "cross-tab, elections, president_2016",
        "cross-tab, elections, president_2024",
    ):
        assert f'alt="{alt}"' in html, alt
    assert "OpinionQA was not run" in html
    assert "Census raking per state" in html and "worst control" in html
    assert "Imputation drift" in html and "education" in html


def test_persona_text_is_escaped(tiny_run: RunResult, tmp_path: Path) -> None:
    run = tmp_path / "copy"
    shutil.copytree(tiny_run.out_dir, run)
    personas = pd.read_parquet(run / "personas.parquet")
    evil = "<script>alert('x')</script> & <b>bold</b>"
    personas["text"] = personas["text"].astype(object)
    personas.loc[personas["tier"] == "descriptive", "text"] = evil
    personas.to_parquet(run / "personas.parquet", index=False)
    html = build_report(run).read_text(encoding="utf-8")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_degenerate_persona_text_is_flagged_in_the_report(
    tiny_run: RunResult, tmp_path: Path
) -> None:
    """One descriptive persona made degenerate by hand: the diagnostics flag it, the report's
    reading counts it, its table row and its sample persona show why."""
    from personasim.analysis import text_stats

    run = tmp_path / "copy"
    shutil.copytree(tiny_run.out_dir, run)
    personas = pd.read_parquet(run / "personas.parquet")
    descriptive = personas.index[personas["tier"] == "descriptive"]
    personas["fields"] = personas["fields"].astype(object)
    for row in descriptive:  # the model's own text might be flagged too: make it plain first
        personas.loc[row, "fields"] = json.dumps({"description": "A retired nurse from Texas."})
    first = personas.loc[descriptive].sort_values("person_id").index[0]  # first sample shown
    personas.loc[first, "fields"] = json.dumps({"description": "None_None_None_None"})
    personas.to_parquet(run / "personas.parquet", index=False)
    text_stats(personas).to_parquet(run / "text_stats.parquet", index=False)
    html = build_report(run).read_text(encoding="utf-8")
    stats = text_stats(personas)
    llm = stats[stats["tier"] != "meta"]
    flagged = int(llm["flagged_fields"].ne("").sum())
    assert flagged >= 1  # the objective tier's own free text may add to it
    assert f"{flagged} of {len(llm)} LLM-written personas have degenerate text" in html
    assert 'id="quality">Persona text quality' in html
    assert "degenerate text: description (filler)" in html


def test_rerun_makes_zero_model_calls(tiny_run: RunResult) -> None:
    again = run_study(builtin_study("tiny"), tiny_run.out_dir)
    assert again.model_calls == 0
    assert all(
        s.reused for s in again.stages if s.stage in {"population", "personas", "simulate", "score"}
    )
    assert "total" in again.format_timings()


def test_resuming_another_study_is_refused(tiny_run: RunResult) -> None:
    from personasim.core.errors import ConfigError

    other = builtin_study("tiny").model_copy(update={"name": "other"})
    with pytest.raises(ConfigError, match="holds another study"):
        run_study(other, tiny_run.out_dir)


@pytest.mark.shared_data
def test_opinionqa_study_scores_census_groups_against_real_pew_counts(tmp_path: Path) -> None:
    from personasim.spec.study import study_from_dict
    from tests.conftest import require_shared_data

    data = require_shared_data() / "opinionqa"
    survey = f"opinionqa:{data / 'tatsu_opinions_qa_human_resp' / 'American_Trends_Panel_W26'}"
    spec = study_from_dict(
        {
            "name": "oqa",
            "population": {"states": ["VT", "TX"], "per_state": 2},
            "personas": {"tiers": ["meta"]},
            "score": {"n_boot": 20},
            "surveys": [
                {
                    "id": "w26",
                    "source": survey,
                    "max_questions": 2,
                    "truth": f"csv:{data / 'opinionqa_group_counts_unweighted.csv.gz'}",
                }
            ],
        }
    )
    result = run_study(spec, tmp_path / "oqa")
    scores = pd.read_parquet(result.out_dir / "scores_w26.parquet")
    alignment = scores[scores["metric"] == "alignment"]
    # per-group rows from Pew's vocabulary, derived from the census persons
    assert {"AGE", "SEX", "RACE", "CREGION"} <= set(alignment["attribute"])
    assert alignment["value"].between(0, 1).all()
    html = result.report_path.read_text(encoding="utf-8")
    assert 'alt="OpinionQA topics"' in html and "Alignment per demographic group" in html
    assert "Hispanic" in html or "White" in html  # RACE groups in the group table
    # the OpinionQA cross-tab is drawn too, a figure per question, its numbers collapsed below
    cross = pd.read_parquet(result.out_dir / "crosstab_w26.parquet")
    for question in cross["question_id"].unique():
        assert f'alt="cross-tab, w26, {question}"' in html
    section = re.search(r'<h2 id="crosstabs">(.*?)<h2 ', html, re.S)
    assert section and "<h4>by AGE</h4>" in section.group(1)


def test_report_opens_with_a_plain_reading(tiny_run: RunResult, html: str) -> None:
    reading = re.search(r'<section class="reading" id="reading">(.*?)</section>', html, re.S)
    assert reading and "came closest to the real vote" in reading.group(1)
    assert "points averaged over 3 elections" in reading.group(1)
    assert "SmolLM2-135M, the small model embedded" in reading.group(1)
    assert tiny_run.backend_lines and "threads=" in tiny_run.backend_lines[0]
    assert "retries=0" in tiny_run.backend_lines[0]
