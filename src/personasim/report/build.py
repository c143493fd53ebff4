"""Build ``report.html`` from a run directory: one self-contained file, figures embedded as
base64 PNG, every piece of text (LLM text included) escaped by jinja2's autoescape.

The report reads only the run directory (``study.toml``, the stage Parquet files,
``manifest.json``), so it can be rebuilt at any time with :func:`build_report`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.errors import DataError
from personasim.report import figures as F
from personasim.spec import StudySpec, load_study


@dataclass
class RunData:
    """Everything a report shows, read from a run directory."""

    run: Path
    spec: StudySpec
    manifest: dict[str, Any]
    personas: pd.DataFrame
    responses: dict[str, pd.DataFrame] = field(default_factory=dict)
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    text_stats: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None


def _read(path: Path) -> pd.DataFrame | None:
    """A Parquet file, or None when it does not exist."""
    return pd.read_parquet(path) if path.exists() else None


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory written by :func:`personasim.study.run_study`."""
    from personasim.study import survey_slug

    run = Path(run_dir)
    if not (run / "study.toml").exists() or not (run / "personas.parquet").exists():
        raise DataError(f"{run}: not a finished run directory (study.toml, personas.parquet)",
                        hint="run `personasim run --out DIR` first")  # fmt: skip
    spec = load_study(run / "study.toml")
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) if manifest_path.exists() else {}
    data = RunData(run, spec, manifest, pd.read_parquet(run / "personas.parquet"))
    for name in spec.surveys:
        slug = survey_slug(name)
        for store, prefix in ((data.responses, "responses"), (data.scores, "scores")):
            frame = _read(run / f"{prefix}_{slug}.parquet")
            if frame is not None:
                store[name] = frame
    data.text_stats = _read(run / "text_stats.parquet")
    data.drift = _read(run / "drift.parquet")
    return data


# --------------------------------------------------------------------------- tables


def _cell(value: Any, digits: int = 3) -> str:
    """A table cell as text."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 3) -> dict:
    """A frame as ``{"columns": [...], "rows": [[cell, ...], ...]}`` for the template."""
    columns = columns or list(frame.columns)
    rows = [[{"text": _cell(v, digits), "num": _is_number(v)} for v in row]
            for row in frame[columns].itertuples(index=False)]  # fmt: skip
    return {"columns": columns, "rows": rows}


def _is_number(value: Any) -> bool:
    """True for numbers (right-aligned in tables), False for text and booleans."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


# --------------------------------------------------------------------------- sections


def summary_section(data: RunData) -> dict[str, Any]:
    """Run summary: the study, persona validity per tier, stage timings, the manifest."""
    from personasim.personas.generate import summarize

    spec = data.spec
    facts = [
        ("study", spec.name),
        ("states", ", ".join(spec.states)),
        ("persons per state", str(spec.per_state)),
        ("tiers", ", ".join(spec.tiers)),
        ("generators", ", ".join(spec.generators)),
        ("simulators", ", ".join(spec.simulators)),
        ("surveys", ", ".join(spec.surveys)),
        ("estimator", spec.estimator),
        ("seed", str(spec.seed)),
        (
            "model calls / cache hits (last run)",
            f"{data.manifest.get('model_calls', '?')} / {data.manifest.get('cache_hits', '?')}",
        ),
    ]
    stages = pd.DataFrame(data.manifest.get("stages", []))
    return {
        "facts": facts,
        "personas": table(summarize(data.personas), ["tier", "generator", "rows", "first_valid",
                                                     "valid", "excluded", "contradictions"]),
        "stages": table(stages, digits=1) if not stages.empty else None,
        "manifest": json.dumps(data.manifest, indent=2, default=str),
    }  # fmt: skip


def _year_of(question_id: str) -> str:
    """The election year in a question id such as ``president_2020``."""
    found = re.search(r"(19|20)\d\d", question_id)
    return found.group(0) if found else question_id


def election_maps(data: RunData) -> dict[str, Any] | None:
    """The actual result's tile maps once, then per tier x models the simulated ones (a map per
    year in each row), with the numbers per state."""
    scores = data.scores.get("elections")
    if scores is None:
        return None
    rows = scores[(scores["attribute"] == "state") & (scores["metric"] == "dem_share")].copy()
    rows["year"] = rows["question_id"].map(_year_of)
    years = sorted(rows["year"].unique())
    if not years:
        return None
    out = []
    for (tier, gen, sim), cell in rows.groupby(["tier", "generator", "simulator"]):
        out.append({"tier": tier, "generator": gen, "simulator": sim, "order": _tier_rank(tier),
                    "image": F.election_map(cell, str(tier), years),
                    "table": _state_table(cell)})  # fmt: skip
    tiers = sorted(out, key=lambda m: (m["order"], m["generator"], m["simulator"]))
    return {"actual": F.actual_map(years), "tiers": tiers}


def _tier_rank(tier: str) -> int:
    """Position of a tier in the paper's order."""
    return F.TIER_ORDER.index(tier) if tier in F.TIER_ORDER else 99


def _state_table(cell: pd.DataFrame) -> dict:
    """Simulated vs actual share per state and year."""
    frame = cell.rename(columns={"group": "state", "value": "simulated", "truth_value": "actual"})
    frame["error"] = frame["simulated"] - frame["actual"]
    return table(frame.sort_values(["year", "state"]),
                 ["year", "state", "n", "simulated", "actual", "error"])  # fmt: skip


def alignment_sections(data: RunData) -> list[dict[str, Any]]:
    """Per scored survey: alignment per tier with CIs and the null baselines (Figure 5)."""
    from personasim.scoring import summarize

    out = []
    for name, scores in data.scores.items():
        summary = summarize(scores)
        summary = summary[summary["metric"] == "alignment"]
        summary = summary.assign(_r=summary["tier"].map(_tier_rank)).sort_values(
            ["_r", "generator", "simulator"], ignore_index=True
        )
        if summary.empty:
            continue
        out.append(
            {
                "survey": name,
                "image": F.alignment_figure(summary, f"{name}: alignment per persona tier"),
                "table": table(
                    summary,
                    [
                        "tier",
                        "generator",
                        "simulator",
                        "value",
                        "ci_low",
                        "ci_high",
                        "uniform",
                        "meta",
                        "questions",
                        "excluded",
                        "excluded_share",
                    ],
                ),
            }
        )
    return out  # fmt: skip


def answer_shares(responses: pd.DataFrame) -> pd.DataFrame:
    """Mean probability of each option per question x tier (over persons and models)."""
    records = []
    for r in responses.itertuples(index=False):
        if r.probs is None:
            continue
        for k, p in enumerate(np.asarray(r.probs, dtype=float)):
            records.append((r.question_id, r.tier, k, p))
    frame = pd.DataFrame(records, columns=["question_id", "tier", "option", "share"])
    return frame.groupby(["question_id", "tier", "option"], as_index=False)["share"].mean()


def topic_sections(data: RunData) -> list[dict[str, Any]]:
    """Per survey other than elections: answer shares per tier for every question (Figure 6)."""
    from personasim.study import study_survey

    out = []
    for name, responses in data.responses.items():
        if name == "elections" or responses.empty:
            continue
        survey = study_survey(data.spec, name)
        asked = set(responses["question_id"].astype(str))
        questions = [q for q in survey.questions if q.id in asked][:60]
        legend = [
            {
                "id": q.id,
                "domain": q.tags.get("domain", ""),
                "text": q.text,
                "options": [f"{o.label}: {o.text}" for o in q.options],
            }
            for q in questions
        ]
        out.append({"survey": name, "image": F.answer_shares_figure(answer_shares(responses),
                                                                      questions),
                    "legend": legend})  # fmt: skip
    return out


def opinionqa_section(data: RunData) -> dict[str, Any] | None:
    """OpinionQA topics ranked by the variance of alignment among tiers (Figure 7), or None."""
    from personasim.study import study_survey

    names = [n for n in data.scores if n.startswith("opinionqa")]
    if not names:
        return None
    frames = []
    for name in names:
        survey = study_survey(data.spec, name)
        topic = {q.id: q.tags.get("topic") or q.tags.get("wave") or q.id for q in survey.questions}
        s = data.scores[name]
        s = s[(s["attribute"] == "overall") & (s["metric"] == "alignment")]
        frames.append(s.assign(topic=s["question_id"].map(topic)))
    scores = pd.concat(frames)
    per_tier = scores.groupby(["topic", "tier"])["value"].mean().reset_index()
    ranks = per_tier.groupby("topic")["value"].var().fillna(0).rename("variance").reset_index()
    ranks = ranks.sort_values("variance", ignore_index=True)
    groups = pd.concat(data.scores[name] for name in names)
    return {"image": F.topic_rank_figure(ranks), "table": table(ranks, digits=4),
            "groups": group_table(groups)}  # fmt: skip


def group_table(scores: pd.DataFrame) -> dict | None:
    """Mean alignment per demographic group (rows) and tier (columns), over questions, with the
    uniform-answer baseline and the group's persons (largest over tiers); None when no group was
    scored."""
    rows = scores[(scores["metric"] == "alignment") & (scores["attribute"] != "overall")]
    if rows.empty:
        return None
    keys = ["attribute", "group"]
    wide = rows.pivot_table(index=keys, columns="tier", values="value", aggfunc="mean")
    wide = wide[sorted(wide.columns, key=_tier_rank)]
    wide["uniform"] = rows.groupby(keys)["uniform"].mean()
    wide["questions"] = rows.groupby(keys)["question_id"].nunique()
    wide["persons"] = rows.groupby(keys)["n"].max()
    return table(wide.reset_index())


def sentiment_section(data: RunData) -> dict[str, Any] | None:
    """TextBlob polarity and subjectivity per tier (Figure 8) and length statistics."""
    from personasim.analysis import sentiment_summary

    stats = data.text_stats
    if stats is not None and "valid" in stats.columns:
        stats = stats[stats["valid"]]
    if stats is None or stats.empty:
        return None
    return {"image": F.sentiment_figure(stats), "table": table(sentiment_summary(stats))}


def word_clouds(data: RunData) -> list[dict[str, Any]]:
    """A word cloud per LLM tier (Figure 9)."""
    from personasim.analysis import word_cloud_png

    out = []
    personas = data.personas[data.personas["valid"].astype(bool)]
    for tier in F.tier_sort(list(personas["tier"])):
        if tier == "meta":
            continue
        texts = personas.loc[personas["tier"] == tier, "text"].dropna().astype(str)
        png = word_cloud_png(texts, max_words=data.spec.report.wordcloud_words)
        if png is not None:
            out.append({"tier": tier, "image": F.bytes_data(png), "personas": len(texts)})
    return out


def sample_personas(data: RunData) -> list[dict[str, Any]]:
    """The first few personas of each tier, with their text (escaped by the template)."""
    n = data.spec.report.sample_personas
    out = []
    personas = data.personas.sort_values("person_id", kind="stable")
    for tier in F.tier_sort(list(personas["tier"])):
        rows = _spread(personas[personas["tier"] == tier], n)
        items = [{"person_id": str(r.person_id), "state": str(getattr(r, "state", "")),
                  "generator": str(r.generator), "valid": bool(r.valid),
                  "text": str(r.text) if isinstance(r.text, str) and r.text else str(r.raw or "")}
                 for r in rows.itertuples(index=False)]  # fmt: skip
        out.append({"tier": tier, "personas": items})
    return out


def _spread(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to ``n`` rows, taking one state after another (first person of each state first)."""
    if "state" not in rows.columns:
        return rows.head(n)
    rank = rows.groupby("state", sort=False).cumcount()
    return rows.assign(_rank=rank).sort_values("_rank", kind="stable").head(n)


def drift_section(data: RunData) -> dict | None:
    """The imputation drift table, or None when no objective tier ran."""
    if data.drift is None or data.drift.empty:
        return None
    drift = data.drift
    if drift["generator"].nunique() == 1 and drift["tier"].nunique() == 1:
        drift = drift.drop(columns=["tier", "generator"])
    return table(drift)


# --------------------------------------------------------------------------- render


def render(data: RunData) -> str:
    """The report HTML of one run."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("personasim.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    template = env.get_template("report.html.j2")
    return template.render(
        title=data.spec.report.title, summary=summary_section(data), maps=election_maps(data),
        alignment=alignment_sections(data), topics=topic_sections(data),
        opinionqa=opinionqa_section(data), sentiment=sentiment_section(data),
        clouds=word_clouds(data), drift=drift_section(data), samples=sample_personas(data),
        surveys=list(data.spec.surveys),
    )  # fmt: skip


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) for a run directory and return its path."""
    data = load_run(run_dir)
    path = Path(out) if out is not None else data.run / "report.html"
    path.write_text(render(data), encoding="utf-8")
    return path
