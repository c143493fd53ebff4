"""Report parts that need no model: the tile grid, diagnostics, the topics survey."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from personasim.analysis import imputation_drift, sentiment_summary, text_stats
from personasim.analysis.drift import bucket, sample_tv
from personasim.report.tilegrid import TILES
from personasim.survey.loaders import load_survey

STATES = {
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "DC",
}


def test_tile_grid_has_every_state_once() -> None:
    assert set(TILES) == STATES
    assert len(set(TILES.values())) == len(TILES)


def test_topics_survey_has_five_domains() -> None:
    survey = load_survey("topics")
    domains = {q.tags["domain"] for q in survey.questions}
    assert domains == {"climate", "consumer choices", "education", "entertainment", "technology"}
    assert len(survey.questions) == 20
    assert len({q.tags["domain"] for q in survey.questions[:5]}) == 5  # round-robin order


def _persona(pid: int, fields: dict, census: dict, text: str = "x") -> dict:
    return {
        "person_id": pid,
        "tier": "objective",
        "generator": "g",
        "valid": True,
        "fields": json.dumps(fields),
        "census": json.dumps(census),
        "text": text,
    }


def test_imputation_drift_tv_and_changed_share() -> None:
    rows = [
        _persona(
            0,
            {"age": 30, "education": "Bachelor's", "income": 5000},
            {"age": 30, "education": "High school", "income": 60000},
        ),
        _persona(
            1,
            {"age": 40, "education": "High school", "income": 70000},
            {"age": 40, "education": "Bachelor's", "income": 72000},
        ),
    ]
    drift = imputation_drift(pd.DataFrame(rows)).set_index("attribute")
    assert "age" not in drift.index  # pinned meta attribute
    # education: same distribution (TV 0), but both persons changed
    assert drift.loc["education", "tv"] == 0.0 and drift.loc["education", "changed"] == 1.0
    # income in brackets: {0-10k, 50-75k} vs {50-75k, 50-75k} -> TV 0.5; both values changed
    assert drift.loc["income", "tv"] == 0.5 and drift.loc["income", "changed"] == 1.0
    assert bucket("income", 72000) == "$50k-75k" and bucket("income", 2e6) == "$150k+"
    assert sample_tv(["a", "b"], ["a", "a"]) == 0.5


def test_text_stats_sentiment_offline() -> None:
    frame = pd.DataFrame(
        [
            {
                "person_id": 0,
                "tier": "descriptive",
                "generator": "g",
                "valid": True,
                "text": "A wonderful, happy teacher who loves her family.",
            },
            {"person_id": 1, "tier": "descriptive", "generator": "g", "valid": False, "text": ""},
        ]
    )
    stats = text_stats(frame)
    assert (
        stats.loc[0, "polarity"] > 0.3 and stats.loc[0, "words"] == 7
    )  # one-letter "A" is not a word
    assert not stats.loc[1, "valid"]
    summary = sentiment_summary(stats)
    assert summary.loc[0, "personas"] == 1


def test_opinionqa_topics_ranked_by_variance_among_tiers(monkeypatch) -> None:
    from personasim.report import build as B
    from personasim.spec.study import StudySpec
    from personasim.survey.questions import Survey

    options = [{"label": "A", "text": "yes"}, {"label": "B", "text": "no"}]
    questions = [
        {"id": q, "text": q, "options": options, "tags": {"topic": topic}}
        for q, topic in (("q1", "guns"), ("q2", "science"))
    ]
    survey = Survey.model_validate({"id": "oqa", "title": "oqa", "questions": questions})
    monkeypatch.setattr("personasim.spec.study.SurveyEntry.load", lambda entry: survey)
    rows = [
        {
            "attribute": "overall",
            "group": "all",
            "metric": "alignment",
            "question_id": q,
            "tier": tier,
            "value": value,
        }
        for q, tier, value in (
            ("q1", "meta", 0.9),
            ("q1", "descriptive", 0.5),
            ("q2", "meta", 0.8),
            ("q2", "descriptive", 0.8),
        )
    ]
    spec = StudySpec(surveys=({"id": "oqa", "source": "opinionqa:x"},))
    data = B.RunData(Path("."), spec, {}, pd.DataFrame(), scores={"oqa": pd.DataFrame(rows)})
    section = B.opinionqa_section(data)
    assert section["image"].startswith("data:image/png;base64,")
    assert [r[0]["text"] for r in section["table"]["rows"]] == ["science", "guns"]


def test_report_imports_neither_study_nor_scoring() -> None:
    import subprocess
    import sys

    import personasim.report.build as B

    source = Path(B.__file__).read_text(encoding="utf-8")
    assert "from personasim.pipeline.driver" not in source
    assert "from personasim.scoring.score" not in source
    banned = "('personasim.pipeline.driver', 'personasim.scoring.score')"
    code = f"import sys, personasim.report.build; print([m for m in {banned} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_cells_read_as_a_dash_whatever_pandas_calls_them() -> None:
    """None, NaN, NaT and pandas' NA (a nullable column's gap) show as a dash, not "<NA>"."""
    from personasim.report.build import table

    frame = pd.DataFrame(
        {
            "share": pd.array([0.25, None], dtype="Float64"),
            "count": pd.array([3, None], dtype="Int64"),
            "plain": [float("nan"), 1.5],
            "when": pd.to_datetime(["2024-11-05", None]),
        }
    )
    cells = [[cell["text"] for cell in row] for row in table(frame)["rows"]]
    assert cells == [["0.250", "3", "–", "2024-11-05 00:00:00"], ["–", "–", "1.500", "–"]]
