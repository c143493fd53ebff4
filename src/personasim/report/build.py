"""Build ``report.html`` from a run directory: one self-contained file, figures embedded as
base64 PNG, every piece of text (LLM text included) escaped by jinja2's autoescape.

The report reads only the run directory (``study.toml``, the stage Parquet files,
``manifest.json``), so it can be rebuilt at any time with :func:`build_report`. It computes no
score: the score stage writes ``summary_<id>.parquet`` (each headline number with its own
interval) and the report shows it. It imports neither :mod:`personasim.pipeline.driver` nor
:mod:`personasim.scoring.score`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.keys import PERSONA_KEY
from personasim.core.ledger import declared_outputs
from personasim.core.tables import read_table, write_text_atomic
from personasim.core.validity import valid_personas
from personasim.report import figures as F
from personasim.scoring.crosstab import TRUTH_SHARE_COLUMNS
from personasim.spec.study import StudySpec, SurveyEntry, load_study


@dataclass
class RunData:
    """Everything a report shows, read from a run directory."""

    run: Path
    spec: StudySpec
    manifest: dict[str, Any]
    personas: pd.DataFrame
    shares: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Mean answer distribution per question x tier, per survey id (:func:`answer_shares`)."""
    simulators: set[str] = field(default_factory=set)
    """Simulator names found in the responses."""
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Scores per survey id."""
    summaries: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Headline scores per survey id (``summary_<id>.parquet``, written by the score stage)."""
    text_stats: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None
    raking: pd.DataFrame | None = None
    """Each state's raking report (``raking.parquet``), or None for runs that lack it."""
    calibration: pd.DataFrame | None = None
    """``[calibration]`` diagnostics (``calibration.parquet``), or None."""
    calibrated: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Calibrated headline scores per survey id (``summary_<id>_calibrated.parquet``)."""
    crosstabs: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Cross-tabs per survey id (``crosstab_<id>.parquet``, written by the score stage)."""
    cross_models: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Generator x simulator alignment per survey id (``cross_model_<id>.parquet``)."""
    by_group: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Alignment by group per survey id (``scores_by_group_<id>.parquet``)."""

    declared: set[str] | None = None
    """The outputs the run's ledger records (None: no ledger, every table present is shown)."""

    def shows(self, name: str) -> bool:
        """True when the run-relative table ``name`` exists and the study declares it."""
        declared = self.declared is None or name in self.declared
        return declared and (self.run / name).exists()

    def entry(self, survey_id: str) -> SurveyEntry:
        """The study's ``[[surveys]]`` entry of ``survey_id``."""
        return self.spec.survey(survey_id)


def _read(data: RunData, name: str) -> pd.DataFrame | None:
    """A run-directory table through the one reader, or None when it does not exist or the
    study no longer declares it."""
    path = data.run / name
    return read_table(path, path.stem + " table") if data.shows(name) else None


def _manifest(path: Path) -> dict[str, Any]:
    """``manifest.json`` ({} when absent); an unreadable one is a one-line DataError."""
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, TypeError) as error:
        raise DataError(
            f"{path}: cannot read the manifest ({error})", hint="rerun the study to rewrite it"
        ) from None


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory written by :func:`personasim.pipeline.driver.run_study`."""
    run = Path(run_dir)
    if not (run / "study.toml").exists() or not (run / "personas.parquet").exists():
        raise DataError(
            f"{run}: not a finished run directory (study.toml, personas.parquet)",
            hint="run `personasim run --out DIR` first",
        )
    spec = load_study(run / "study.toml")
    manifest_path = run / "manifest.json"
    manifest = _manifest(manifest_path)
    data = RunData(
        run,
        spec,
        manifest,
        read_table(run / "personas.parquet", "personas table"),
        declared=declared_outputs(run),
    )
    for entry in spec.surveys:
        for store, name in (
            (data.scores, f"scores_{entry.id}"),
            (data.summaries, f"summary_{entry.id}"),
            (data.calibrated, f"summary_{entry.id}_calibrated"),
            (data.crosstabs, f"crosstab_{entry.id}"),
            (data.cross_models, f"cross_model_{entry.id}"),
            (data.by_group, f"scores_by_group_{entry.id}"),
        ):
            frame = _read(data, f"{name}.parquet")
            if frame is not None:
                store[entry.id] = frame
        responses = f"responses_{entry.id}.parquet"
        if data.shows(responses):  # streamed: a study's responses can outgrow memory
            data.shares[entry.id], simulators = answer_shares(run / responses)
            data.simulators |= simulators
    data.text_stats = _read(data, "text_stats.parquet")
    data.drift = _read(data, "drift.parquet")
    data.raking = _read(data, "raking.parquet")
    data.calibration = _read(data, "calibration.parquet")
    return data


# --------------------------------------------------------------------------- tables


def _cell(value: Any, digits: int = 3) -> str:
    """A table cell as text (a dash for None, NaN, NaT and pandas' NA)."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 3) -> dict:
    """A frame as ``{"columns": [...], "rows": [[cell, ...], ...]}`` for the template."""
    columns = columns or list(frame.columns)
    rows = [
        [{"text": _cell(v, digits), "num": _is_number(v)} for v in row]
        for row in frame[columns].itertuples(index=False)
    ]
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
        ("persons per state", str(spec.population.per_state)),
        ("tiers", ", ".join(spec.tiers)),
        ("generators", ", ".join(_backend_names(spec, spec.personas.generators))),
        ("simulators", ", ".join(_backend_names(spec, spec.simulate.simulators))),
        ("surveys", ", ".join(f"{e.id} ({e.source})" for e in spec.surveys)),
        ("estimator", spec.simulate.estimator),
        ("seed", str(spec.seed)),
        (
            "model calls / cache hits (last run)",
            f"{data.manifest.get('model_calls', '?')} / {data.manifest.get('cache_hits', '?')}",
        ),
    ]
    stages = pd.DataFrame(data.manifest.get("stages", []))
    return {
        "facts": facts,
        "personas": table(
            summarize(_with_flags(data.personas, data.text_stats)),
            [
                "tier",
                "generator",
                "rows",
                "first_valid",
                "valid",
                "excluded",
                "contradictions",
                "rejected_share",
                "pruned_share",
                "fill_invalid_share",
                "degenerate",
            ],
        ),
        "stages": table(stages, digits=1) if not stages.empty else None,
        "manifest": json.dumps(data.manifest, indent=2, default=str),
    }


def _backend_names(spec: StudySpec, names: tuple[str, ...]) -> list[str]:
    """``name (spec)`` for each named backend."""
    return [f"{n} ({spec.backends[n].spec})" if n in spec.backends else n for n in names]


def raking_section(data: RunData) -> dict | None:
    """Per state: raking iterations, convergence, effective sample size, the worst control and
    its relative error, unmet cells; None for a run without ``raking.parquet``."""
    frame = data.raking
    if frame is None or frame.empty:
        return None
    worst = frame.loc[frame.groupby("state", sort=False)["max_rel_error"].idxmax()]
    worst = worst.rename(columns={"control": "worst control"})
    columns = [
        "state",
        "iterations",
        "converged",
        "status",
        "ess",
        "n_seed",
        "worst control",
        "max_rel_error",
        "unmet",
        "note",
    ]
    return table(worst, [c for c in columns if c in worst.columns])


def _by_source(data: RunData, source: str) -> str | None:
    """The id of the survey whose source is ``source`` (e.g. ``elections``), or None."""
    return next((e.id for e in data.spec.surveys if e.source == source), None)


def _year_of(question_id: str) -> str:
    """The election year in a question id such as ``president_2020``."""
    found = re.search(r"(19|20)\d\d", question_id)
    return found.group(0) if found else question_id


def election_maps(data: RunData) -> dict[str, Any] | None:
    """The actual result's tile maps once, then per tier x models the simulated ones (a map per
    year in each row), with the numbers per state."""
    survey_id = _by_source(data, "elections")
    scores = data.scores.get(survey_id) if survey_id else None
    if scores is None:
        return None
    rows = scores[(scores["attribute"] == "state") & (scores["metric"] == "dem_share")].copy()
    rows["year"] = rows["question_id"].map(_year_of)
    years = sorted(rows["year"].unique())
    if not years:
        return None
    out = []
    for (tier, gen, sim), cell in rows.groupby(["tier", "generator", "simulator"]):
        out.append(
            {
                "tier": tier,
                "generator": gen,
                "simulator": sim,
                "order": _tier_rank(tier),
                "image": F.election_map(cell, str(tier), years),
                "table": _state_table(cell),
            }
        )
    tiers = sorted(out, key=lambda m: (m["order"], m["generator"], m["simulator"]))
    return {"actual": F.actual_map(years), "tiers": tiers}


def _tier_rank(tier: str) -> int:
    """Position of a tier in the paper's order."""
    return F.TIER_ORDER.index(tier) if tier in F.TIER_ORDER else 99


def _state_table(cell: pd.DataFrame) -> dict:
    """Simulated vs actual share per state and year."""
    frame = cell.rename(columns={"group": "state", "value": "simulated", "truth_value": "actual"})
    frame["error"] = frame["simulated"] - frame["actual"]
    return table(
        frame.sort_values(["year", "state"]), ["year", "state", "n", "simulated", "actual", "error"]
    )


def alignment_sections(data: RunData) -> list[dict[str, Any]]:
    """Per scored survey: alignment per tier with CIs and the null baselines (Figure 5), read
    from the score stage's ``summary_<id>`` table."""
    out = []
    for name, summary in data.summaries.items():
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
    return out


def calibration_section(data: RunData) -> dict[str, Any] | None:
    """Per survey and tier: alignment unweighted vs calibrated with CIs, the tier's design effect
    and ESS beside it; and the per-group diagnostics. None without ``[calibration]``."""
    from personasim.calibrate.diagnostics import tier_costs

    if data.calibration is None:
        return None
    costs = tier_costs(data.calibration)
    keys = ["tier", "generator", "simulator", "estimator", "metric"]
    surveys = []
    for name, after in data.calibrated.items():
        before = data.summaries.get(name)
        if before is None:
            continue
        cols = ["value", "ci_low", "ci_high"]
        both = before[[*keys, *cols]].merge(
            after[[*keys, *cols]], on=keys, suffixes=("_before", "_after")
        )
        both = both[both["metric"] == "alignment"].merge(
            costs[["tier", "generator", "n", "ess", "deff"]], on=["tier", "generator"], how="left"
        )
        both = both.assign(_r=both["tier"].map(_tier_rank)).sort_values(["_r", "generator"])
        surveys.append(
            {
                "survey": name,
                "table": table(
                    both,
                    [
                        "tier",
                        "generator",
                        "simulator",
                        "value_before",
                        "ci_low_before",
                        "ci_high_before",
                        "value_after",
                        "ci_low_after",
                        "ci_high_after",
                        "n",
                        "ess",
                        "deff",
                    ],
                ),
            }
        )
    spec = data.spec.calibration
    what = f"targets {spec.targets}, by {spec.by or '-'}, {spec.method}" if spec else ""
    return {
        "what": what,
        "surveys": surveys,
        "costs": table(costs),
        "groups": table(data.calibration.drop(columns=["deff_before"], errors="ignore")),
    }


#: Questions of one survey drawn as cross-tab figures (the rest stay in the compact table).
CROSSTAB_FIGURES = 12


def crosstab_section(data: RunData) -> dict[str, Any] | None:
    """Per survey with a ``crosstab_<id>`` table: per question, the simulated share of one
    option per group drawn as dot-and-interval plots by attribute (:func:`F.crosstab_figure`),
    and a compact table per attribute (rows: question x group, columns: tier x models) with the
    CI, the cell count, the small-n flag and the real share where the truth has the group.
    The option is the Democratic one for elections, else the question's most common real
    answer (the most common simulated one without truth). None without any cross-tab."""
    from personasim.scoring.crosstab import MIN_N

    surveys = [
        s
        for name, frame in data.crosstabs.items()
        if (s := _crosstab_survey(data, name, frame)) is not None
    ]
    if not surveys:
        return None
    weights = "census weights"
    if data.spec.calibration is not None:
        weights = "calibrated weights where [calibration] made them, else census weights"
    return {"surveys": surveys, "min_n": MIN_N, "weights": weights}


def _crosstab_survey(data: RunData, name: str, frame: pd.DataFrame) -> dict[str, Any] | None:
    """One survey's cross-tab figures and compact tables, or None when it has no cells."""
    if frame.empty:
        return None
    missing = [c for c in TRUTH_SHARE_COLUMNS if c not in frame.columns]
    frame = frame.assign(**dict.fromkeys(missing, np.nan))  # written before the real shares
    elections = data.entry(name).source == "elections"
    rows = _focus_rows(frame, data.entry(name).load() if elections else None)
    if rows.empty:
        return None
    index = "year" if elections else "question"
    rows[index] = rows["question_id"].map(_year_of) if elections else rows["question_id"]
    rows["model"] = _model_labels(rows)
    questions = list(dict.fromkeys(rows["question_id"]))
    figures = []
    for question in questions[:CROSSTAB_FIGURES]:
        part = rows[rows["question_id"] == question]
        option = str(part["option"].iloc[0])
        figures.append(
            {
                "question": str(question),
                "option": option,
                "image": F.crosstab_figure(
                    part, f"{name}, {question}", f'share answering "{F.option_caption(option, 60)}"'
                ),
            }
        )
    return {
        "survey": name,
        "figures": figures,
        "questions": len(questions),
        "tables": _crosstab_tables(rows, index),
    }


def _focus_rows(frame: pd.DataFrame, survey: Any) -> pd.DataFrame:
    """The rows of the option each question is drawn by: the Democratic option when ``survey``
    (an election survey) is given, else the option with the largest mean real share (mean
    simulated share when the question has no real one)."""
    if survey is not None:
        dem = {q.id: q.options[q.index_of("dem")].text for q in survey.questions}
        return frame[frame["option"] == frame["question_id"].map(dem)].copy()
    means = frame.groupby(["question_id", "option"], sort=False, as_index=False)[
        ["truth_share", "share"]
    ].mean()
    has_truth = means.groupby("question_id")["truth_share"].transform("count") > 0
    means["score"] = means["truth_share"].where(has_truth, means["share"])
    best = means.dropna(subset=["score"]).sort_values("score", ascending=False, kind="stable")
    best = best.drop_duplicates("question_id")[["question_id", "option"]]
    return frame.merge(best, on=["question_id", "option"])


def _crosstab_tables(rows: pd.DataFrame, index: str) -> list[dict[str, Any]]:
    """Per attribute, the cells as text: rows ``index`` (year or question) x group, columns
    tier x models, with the real share first where the truth has the group."""
    rows = rows.assign(cell=[_share_text(r) for r in rows.itertuples(index=False)])
    out = []
    for attribute, part in rows.groupby("attribute", sort=False):
        wide = part.pivot_table(
            index=[index, "group"], columns="model", values="cell", aggfunc="first"
        )
        wide = wide[sorted(wide.columns, key=lambda m: _tier_rank(m.split(" · ")[0]))]
        actual = part.groupby([index, "group"])[
            ["truth_share", "truth_ci_low", "truth_ci_high"]
        ].first()
        if actual["truth_share"].notna().any():
            wide.insert(0, "actual", [_real_text(*r) for r in actual.itertuples(index=False)])
        out.append({"attribute": attribute, "table": table(wide.reset_index())})
    return out


def cross_model_section(data: RunData) -> list[dict[str, Any]]:
    """Per survey with a non-empty ``cross_model_<id>`` table (several generators or
    simulators): the generator x simulator alignment heatmap with each cell's interval."""
    needed = {"tier", "generator", "simulator", "estimator", "value", "ci_low", "ci_high"}
    out = []
    for name, frame in data.cross_models.items():
        if frame.empty or not needed <= set(frame.columns):
            continue
        frame = frame.dropna(subset=["value"])
        if frame.empty:
            continue
        out.append(
            {
                "survey": name,
                "image": F.cross_model_figure(frame, f"{name}: alignment, generator x simulator"),
            }
        )
    return out


def _model_labels(rows: pd.DataFrame) -> list[str]:
    """A column label per row: the tier, plus generator and simulator when several ran."""
    parts = ["tier", *[c for c in ("generator", "simulator") if rows[c].nunique() > 1]]
    return [
        " · ".join(str(v) for v in values) for values in zip(*(rows[c] for c in parts), strict=True)
    ]


def _real_text(share: float, low: float, high: float) -> str:
    """``0.58``, or ``0.58 [0.55, 0.61]`` when the real share has an interval."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return _cell(share, 2)
    return f"{_cell(share, 2)} [{_cell(low, 2)}, {_cell(high, 2)}]"


def group_alignment_section(data: RunData) -> list[dict[str, Any]]:
    """Per survey with a ``scores_by_group_<id>`` table holding groups beyond the overall one:
    the alignment-by-group figure (:func:`F.group_alignment_figure`) and its numbers."""
    out = []
    for name, frame in data.by_group.items():
        if frame.empty or (frame["attribute"].astype(str) == "overall").all():
            continue
        rows = frame.assign(model=_model_labels(frame))
        shown = rows.assign(
            alignment=[
                _real_text(v, lo, hi)
                for v, lo, hi in zip(rows["value"], rows["ci_low"], rows["ci_high"], strict=True)
            ]
        )
        wide = shown.pivot_table(
            index=["attribute", "group"], columns="model", values="alignment", aggfunc="first"
        )
        wide = wide[sorted(wide.columns, key=lambda m: _tier_rank(m.split(" · ")[0]))]
        keys = ["attribute", "group"]
        wide["persons"] = rows.groupby(keys)["n"].max()
        wide["respondents (n_eff)"] = (
            rows.groupby(keys)["truth_n_eff"].min().map(lambda v: _cell(v, 0))
        )
        order = F.group_order(rows)
        wide = wide.reindex([k for k in wide.index if k[0] == "overall"] + order)
        out.append(
            {
                "survey": name,
                "image": F.group_alignment_figure(rows, f"{name}: alignment by group"),
                "table": table(wide.reset_index()),
            }
        )
    return out


def _share_text(row: Any) -> str:
    """``0.53 [0.41, 0.66] n=40``, with `` small`` below the minimum count."""
    text = f"{_cell(row.share, 2)} [{_cell(row.ci_low, 2)}, {_cell(row.ci_high, 2)}] n={row.n}"
    return text + (" small" if bool(row.small) else "")


def answer_shares(responses: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, set[str]]:
    """Mean probability of each option per question x tier (over persons and models; rows
    without ``probs`` left out), read a batch at a time; and the simulator names seen."""
    from personasim.scoring.stream import ResponseSource, text_column

    sums: dict[tuple[str, str], list[Any]] = {}
    simulators: set[str] = set()
    source = ResponseSource(responses, "rerun the study to rewrite it")
    for batch in source.batches(["question_id", "tier", "simulator", "probs"]):
        simulators |= set(text_column(batch.column("simulator")).tolist())
        keys = pd.MultiIndex.from_arrays(
            [text_column(batch.column(c)) for c in ("question_id", "tier")]
        )
        probs = batch.column("probs")
        for key, rows in pd.Series(np.arange(len(keys))).groupby(keys).indices.items():
            _add_shares(sums, key, probs.take(rows).drop_null())
    records = [
        (q, t, k, share / n)
        for (q, t), (total, n) in sorted(sums.items())
        if n
        for k, share in enumerate(total)
    ]
    frame = pd.DataFrame(records, columns=["question_id", "tier", "option", "share"])
    return frame, simulators


def _add_shares(sums: dict[tuple[str, str], list[Any]], key: tuple[str, str], listed: Any) -> None:
    """Add the ``probs`` lists of one question x tier to its running sum and count (lists of
    another length than the first seen are left out)."""
    import pyarrow.compute as pc

    if not len(listed):
        return
    sizes = pc.list_value_length(listed).to_numpy(zero_copy_only=False)
    total = sums.setdefault(key, [np.zeros(int(sizes[0])), 0])
    same = listed.filter(sizes == len(total[0]))
    values = same.flatten().to_numpy(zero_copy_only=False).astype(float)
    total[0] = total[0] + values.reshape(len(same), len(total[0])).sum(axis=0)
    total[1] += len(same)


def topic_sections(data: RunData) -> list[dict[str, Any]]:
    """Per survey other than elections: answer shares per tier for every question (Figure 6)."""
    out = []
    for name, shares in data.shares.items():
        if data.entry(name).source == "elections" or shares.empty:
            continue
        survey = data.entry(name).load()
        asked = set(shares["question_id"].astype(str))
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
        out.append(
            {"survey": name, "image": F.answer_shares_figure(shares, questions), "legend": legend}
        )
    return out


def opinionqa_section(data: RunData) -> dict[str, Any] | None:
    """OpinionQA topics ranked by the variance of alignment among tiers (Figure 7), or None."""
    names = [n for n in data.scores if data.entry(n).source.startswith("opinionqa")]
    if not names:
        return None
    frames = []
    for name in names:
        survey = data.entry(name).load()
        topic = {q.id: q.tags.get("topic") or q.tags.get("wave") or q.id for q in survey.questions}
        s = data.scores[name]
        s = s[(s["attribute"] == "overall") & (s["metric"] == "alignment")]
        frames.append(s.assign(topic=s["question_id"].map(topic)))
    scores = pd.concat(frames)
    per_tier = scores.groupby(["topic", "tier"])["value"].mean().reset_index()
    ranks = per_tier.groupby("topic")["value"].var().fillna(0).rename("variance").reset_index()
    ranks = ranks.sort_values("variance", ignore_index=True)
    groups = pd.concat(data.scores[name] for name in names)
    return {
        "image": F.topic_rank_figure(ranks),
        "table": table(ranks, digits=4),
        "groups": group_table(groups),
    }


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
    if stats is not None:
        stats = valid_personas(stats)
    if stats is None or stats.empty:
        return None
    return {"image": F.sentiment_figure(stats), "table": table(sentiment_summary(stats))}


def word_clouds(data: RunData) -> list[dict[str, Any]]:
    """A word cloud per LLM tier (Figure 9)."""
    from personasim.analysis import word_cloud_png

    out = []
    personas = valid_personas(data.personas)
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
    flags = _persona_flags(data.text_stats)
    personas = data.personas.sort_values("person_id", kind="stable")
    for tier in F.tier_sort(list(personas["tier"])):
        rows = _spread(personas[personas["tier"] == tier], n)
        items = [
            {
                "person_id": str(r.person_id),
                "state": str(getattr(r, "state", "")),
                "generator": str(r.generator),
                "valid": bool(r.valid),
                "text": str(r.text) if isinstance(r.text, str) and r.text else str(r.raw or ""),
                "flags": flags.get((str(r.person_id), str(r.tier), str(r.generator)), ""),
            }
            for r in rows.itertuples(index=False)
        ]
        out.append({"tier": tier, "personas": items})
    return out


def _with_flags(personas: pd.DataFrame, stats: pd.DataFrame | None) -> pd.DataFrame:
    """The personas with ``text_stats``' ``flagged_fields`` joined on, so the summary counts
    degenerate personas without parsing every persona again (as they are, without stats)."""
    if stats is None or "flagged_fields" not in stats.columns:
        return personas
    keys = list(PERSONA_KEY)
    return personas.merge(stats[[*keys, "flagged_fields"]], on=keys, how="left")


def _persona_flags(stats: pd.DataFrame | None) -> dict[tuple[str, str, str], str]:
    """(person, tier, generator) -> its flagged fields (:mod:`personasim.personas.quality`)."""
    if stats is None or "flagged_fields" not in stats.columns:
        return {}
    flagged = stats[stats["flagged_fields"].fillna("").ne("")]
    return {
        (str(r.person_id), str(r.tier), str(r.generator)): str(r.flagged_fields)
        for r in flagged.itertuples(index=False)
    }


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


def testbed_section(data: RunData) -> dict[str, Any] | None:
    """The PERSONA testbed's figures and ranked attributes (None without a ``[testbed]`` run)."""
    from personasim.report.testbed import report_section
    from personasim.testbed import FOLDER

    if not data.shows(f"{FOLDER}/pairs.parquet"):
        return None
    section = report_section(data.run, lambda name: data.shows(f"{FOLDER}/{name}"))
    if section is not None:
        centre = ["median_kappa"] if section["loo_protocol"] == "paper" else ["mean_kappa"]
        columns = [
            "rank",
            "attribute",
            *centre,
            "ci_low",
            "ci_high",
            "influence",
            "n",
            "n_undefined",
            "conditional",
        ]
        section["loo_table"] = table(section["loo_summary"], columns)
    return section


# --------------------------------------------------------------------------- render


def reading_section(data: RunData) -> list[str]:
    """The report's opening paragraphs: the headline numbers in plain words (a template, see
    :mod:`personasim.report.reading`)."""
    from personasim.report.reading import headline_reading

    names = {s for s in data.simulators if s}
    models = data.manifest.get("models", {})  # a study's backend name -> its model
    simulators = [str(models.get(n, {}).get("display_name", n)) for n in sorted(names)]
    return headline_reading(data.summaries or data.scores, simulators, quality_frame(data))


def quality_frame(data: RunData) -> pd.DataFrame | None:
    """Degenerate-text counts per LLM tier x generator (None for a run without text stats, or
    one written before the flags existed)."""
    from personasim.analysis import quality_summary

    stats = data.text_stats
    if stats is None or "flagged_fields" not in stats.columns:
        return None
    summary = quality_summary(stats)
    return summary if not summary.empty else None


def quality_section(data: RunData) -> dict[str, Any] | None:
    """The "Persona text quality" table (counts of flagged personas per tier)."""
    summary = quality_frame(data)
    return None if summary is None else table(summary)


def render(data: RunData) -> str:
    """The report HTML of one run."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("personasim.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    template = env.get_template("report.html.j2")
    return template.render(
        title=data.spec.report.title,
        reading=reading_section(data),
        summary=summary_section(data),
        maps=election_maps(data),
        alignment=alignment_sections(data),
        topics=topic_sections(data),
        opinionqa=opinionqa_section(data),
        sentiment=sentiment_section(data),
        quality=quality_section(data),
        clouds=word_clouds(data),
        drift=drift_section(data),
        samples=sample_personas(data),
        testbed=testbed_section(data),
        surveys=[e.id for e in data.spec.surveys],
        raking=raking_section(data),
        calibration=calibration_section(data),
        crosstabs=crosstab_section(data),
        cross_models=cross_model_section(data),
        by_group=group_alignment_section(data),
    )


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) for a run directory and return its path."""
    data = load_run(run_dir)
    path = Path(out) if out is not None else data.run / "report.html"
    write_text_atomic(render(data), path)
    return path
