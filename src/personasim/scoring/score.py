"""Score simulated survey responses against ground truth.

Input: a responses table (one row per person x question x tier x models, ``probs`` per
*original* option), person weights and group columns (from the responses themselves or a persons
table), and a truth source: ``elections``, ``opinionqa:PATH`` or ``csv:PATH``.

Output (:class:`ScoreResult`): ``scores``, one row per group x question x tier x models x metric
with the simulated and true distributions, the value, a bootstrap CI over persons and the two null
baselines beside it (``uniform`` answers and the ``meta`` tier); a ``summary`` table (overall
group, averaged over questions) and a generator x simulator ``cross_model`` table.

Validity: a response row enters no distribution when it is marked ``valid = False``, when its
``valid_mass`` is at or below ``min_valid_mass`` (default 0: a row on which no probability landed
on any option letter is never read as a uniform respondent, whoever wrote the file), when it has
neither ``probs`` nor an ``answer``, or when its persona is invalid (``personas`` given). Such rows
are counted per tier x question x models: ``answers`` (rows read), ``excluded`` and
``excluded_share`` sit beside every score, as refusal rates do.

Confidence intervals: ``ci_low``/``ci_high`` of a per-question (or per-state) row are percentile
bootstrap intervals over that row's persons. ``summary_ci_low``/``summary_ci_high`` are the
interval of the *summary* statistic (the mean over questions; elections: the mean over years of
each year's aggregate over states): each replicate draws the persons once (elections: once within
each state) and every question uses the same draw, so a person's rows in all questions carry the
same count and correlated questions widen the interval as they should.

Metrics per question kind: ordinal -> ``alignment`` (1 - normalized WD), ``wd`` and, when the
question has refusal options, ``refusal_rate`` (simulated value, true value in ``truth_value``);
nominal -> ``tv``, ``js`` and ``alignment`` (1 - TV). Elections per state -> ``dem_share``,
``abs_error``, ``alignment`` (1 - |p_sim - p_true|), ``winner_correct``; per year overall ->
``alignment`` (mean over states), ``mean_abs_error``, ``winner_accuracy``,
``dem_electoral_votes``, ``national_dem_share``, ``national_abs_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.keys import MODEL_KEY
from personasim.scoring import metrics as M
from personasim.scoring.stream import (
    CELL,
    CellRows,
    Collected,
    Groups,
    ResponseSource,
    collect_cells,
)
from personasim.scoring.stream import (
    REQUIRED as REQUIRED,  # re-exported: the score command checks these columns
)
from personasim.survey.groups import with_opinionqa_groups
from personasim.survey.questions import Question, Survey
from personasim.truth import OVERALL, Truth
from personasim.truth import elections as E
from personasim.truth import load_truth as load_truth  # re-exported: callers score what they load

SCORE_COLUMNS = [
    "attribute",
    "group",
    "question_id",
    *MODEL_KEY,
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "sim_dist",
    "truth_dist",
    "truth_value",
    "uniform",
    "meta",
    "answers",
    "excluded",
    "excluded_share",
    "summary_ci_low",
    "summary_ci_high",
]
META_TIER = "meta"
UNSCORED_COLUMNS = ("raw", "option_order")
"""Response columns scoring never reads (readers skip them: the raw replies are the widest)."""


@dataclass
class ScoreResult:
    """What :func:`score` returns."""

    scores: pd.DataFrame
    """One row per group x question x tier x models x metric (columns :data:`SCORE_COLUMNS`)."""
    summary: pd.DataFrame
    """Overall group, each metric averaged over questions, per tier and models."""
    cross_model: pd.DataFrame
    """Mean overall alignment with its joint bootstrap CI per tier, generator and simulator
    (long form; empty with a single generator x simulator pair)."""
    notes: list[str] = field(default_factory=list)
    """Things skipped on the way (questions without truth, unusable rows)."""


# --------------------------------------------------------------------------- per-group scoring


def _truth_dist(question: Question, rows: pd.DataFrame) -> np.ndarray | None:
    """Truth totals in original option order (None when the group has no mass)."""
    out = np.zeros(len(question.options))
    for text, weight in zip(rows["option"], rows["weight"], strict=True):
        out[question.index_of(str(text))] += float(weight)
    return out / out.sum() if out.sum() > 0 else None


def _metric_fns(question: Question) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The metrics that apply to a question, each ``f(sim, truth) -> value``."""
    mask = question.refusal_mask
    if question.kind == "ordinal":
        pos = question.positions
        fns: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
            "alignment": lambda p, q: M.ordinal_alignment(p, q, pos, mask),
            "wd": lambda p, q: M.wasserstein_ordinal(p, q, pos, mask),
        }
    else:
        fns = {
            "alignment": lambda p, q: 1.0 - M.total_variation(p, q, mask),
            "tv": lambda p, q: M.total_variation(p, q, mask),
            "js": lambda p, q: M.jensen_shannon(p, q, mask),
        }
    if mask.any():
        fns["refusal_rate"] = lambda p, q: M.refusal_rate(p, mask)
    return fns


def _safe(fn: Callable[[], float]) -> float:
    """Evaluate a metric, NaN when the input cannot be scored (e.g. all refusals)."""
    try:
        return float(fn())
    except M.MetricInputError:
        return float("nan")


def _score_group(
    question: Question,
    probs: np.ndarray,
    weights: np.ndarray,
    truth: np.ndarray,
    n_boot: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Metric rows for one group of persons on one question."""
    sim = M.group_distribution(probs, weights)
    flat = M.uniform(len(question.options), question.refusal_mask)
    replicates = M.bootstrap_distributions(probs, weights, n_boot, seed) if n_boot else None
    rows = []
    for name, fn in _metric_fns(question).items():

        def stat(d: np.ndarray, fn: Callable = fn) -> float:
            return fn(d, truth)

        low, high = (
            M.percentile_ci(replicates, stat)
            if replicates is not None
            else (float("nan"), float("nan"))
        )
        truth_value = (
            M.refusal_rate(truth, question.refusal_mask) if name == "refusal_rate" else np.nan
        )
        rows.append(
            {
                "metric": name,
                "value": _safe(lambda: stat(sim)),
                "ci_low": low,
                "ci_high": high,
                "n": len(probs),
                "sim_dist": sim.tolist(),
                "truth_dist": truth.tolist(),
                "truth_value": truth_value,
                "uniform": _safe(lambda: stat(flat)),
            }
        )
    return rows


def _distribution_rows(
    question: Question, rows: CellRows, groups: Groups, truth: pd.DataFrame, n_boot: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Rows for one question and one tier x models combination, every truth group present."""
    out, members = [], {}
    for (attribute, group), truth_rows in truth.groupby(["attribute", "group"], sort=True):
        attribute = str(attribute)
        if attribute == OVERALL[0]:
            found = {OVERALL[1]: np.arange(len(rows))}
        else:
            if attribute not in members:  # once per attribute, not per truth group
                members[attribute] = groups.members(attribute, rows)
            found = members[attribute]
        where, target = found.get(str(group)), _truth_dist(question, truth_rows)
        if where is None or not len(where) or target is None:
            continue
        mat, w = rows.probs[where], rows.weight[where]
        if w.sum() <= 0:
            continue
        for row in _score_group(question, mat, w, target, n_boot, seed):
            out.append({"attribute": attribute, "group": group, **row})
    return out


# --------------------------------------------------------------------------- elections


def _state_shares(
    rows: CellRows, groups: Groups, dem: int, rep: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per state: each person's Democratic two-party share and weight."""
    out = {}
    for state, where in groups.members("state", rows).items():
        mat, weight = rows.probs[where], rows.weight[where]
        two = mat[:, dem] + mat[:, rep]
        ok = two > 0
        if ok.any() and weight[ok].sum() > 0:
            out[state] = (mat[ok, dem] / two[ok], weight[ok])
    return out


def _boot_shares(
    share: np.ndarray, w: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap replicates of a weighted mean share (resampling persons)."""
    parts = [
        (counts @ (w * share), counts @ w) for counts in M.resample_counts(len(share), n_boot, rng)
    ]
    weighted, total = (np.concatenate(column) for column in zip(*parts, strict=True))
    return np.where(total > 0, weighted / np.where(total > 0, total, 1), np.nan)


def _ci(values: np.ndarray) -> tuple[float, float]:
    """2.5 and 97.5 percentiles, ignoring NaN (NaN when nothing is left)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def _election_rows(
    question: Question, rows: CellRows, groups: Groups, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """Per-state and per-year election rows for one question x tier x models."""
    dem, rep = question.index_of("dem"), question.index_of("rep")
    year = int(question.tags.get("year", "0"))
    by_state = _state_shares(rows, groups, dem, rep)
    if not by_state:
        two = rows.probs[:, dem] + rows.probs[:, rep]
        ok = two > 0
        share, w = rows.probs[ok, dem] / two[ok], rows.weight[ok]
        return _national_rows(question, year, share, w, n_boot, seed)
    rng = np.random.default_rng(seed)
    truth = E.state_truth(year).set_index("state").loc[sorted(by_state)].reset_index()
    states = list(truth["state"])
    point = np.array([[np.average(by_state[s][0], weights=by_state[s][1]) for s in states]])
    boots = (
        np.column_stack([_boot_shares(*by_state[s], n_boot, rng) for s in states])
        if n_boot
        else np.full((0, len(states)), np.nan)
    )
    rows = _per_state_rows(states, truth, point[0], boots, {s: len(by_state[s][0]) for s in states})
    flat = np.full_like(point, 0.5)
    agg, agg_boot, agg_flat = (M.election_metrics(x, truth) for x in (point, boots, flat))
    n_total = sum(len(by_state[s][0]) for s in states)
    v = truth["two_party_votes"].to_numpy(float)
    truths = {
        "dem_electoral_votes": float(
            truth["electoral_votes"].to_numpy(float) @ (truth["dem_share"].to_numpy() > 0.5)
        ),
        "national_dem_share": float(truth["dem_share"].to_numpy(float) @ v / v.sum()),
    }
    for name, value in agg.items():
        low, high = _ci(agg_boot[name]) if n_boot else (np.nan, np.nan)
        rows.append(
            {
                "attribute": OVERALL[0],
                "group": OVERALL[1],
                "metric": name,
                "value": float(value[0]),
                "ci_low": low,
                "ci_high": high,
                "n": n_total,
                "truth_value": truths.get(name, np.nan),
                "uniform": float(agg_flat[name][0]),
            }
        )
    return [{"sim_dist": None, "truth_dist": None, **r} for r in rows]


def _per_state_rows(
    states: list[str], truth: pd.DataFrame, point: np.ndarray, boots: np.ndarray, n: dict[str, int]
) -> list[dict[str, Any]]:
    """dem_share / abs_error / alignment / winner_correct rows for each state."""
    rows = []
    for j, state in enumerate(states):
        t = float(truth["dem_share"].iloc[j])
        sims = {
            "dem_share": lambda s: s,
            "abs_error": lambda s, t=t: np.abs(s - t),
            "alignment": lambda s, t=t: 1 - np.abs(s - t),
            "winner_correct": lambda s, t=t: M.winner_credit(s, t),
        }
        for name, fn in sims.items():
            low, high = (
                _ci(np.asarray(fn(boots[:, j]), dtype=float)) if len(boots) else (np.nan, np.nan)
            )
            rows.append(
                {
                    "attribute": "state",
                    "group": state,
                    "metric": name,
                    "value": float(fn(point[j])),
                    "ci_low": low,
                    "ci_high": high,
                    "n": n[state],
                    "sim_dist": [float(point[j]), 1 - float(point[j])],
                    "truth_dist": [t, 1 - t],
                    "truth_value": t if name == "dem_share" else np.nan,
                    "uniform": float(fn(np.float64(0.5))),
                }
            )
    return rows


def _national_metrics(truth: float) -> dict[str, Callable[[Any], Any]]:
    """National election metrics of a simulated share (scalar or array) given the true share."""
    return {
        "national_dem_share": lambda s: s,
        "national_abs_error": lambda s: np.abs(s - truth),
        "alignment": lambda s: 1 - np.abs(s - truth),
    }


def _national_rows(
    question: Question, year: int, share: np.ndarray, w: np.ndarray, n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """Election rows when persons carry no state: national share only."""
    truth = E.national_share(year)
    sim = float(np.average(share, weights=w)) if w.sum() > 0 else np.nan
    boots = _boot_shares(share, w, n_boot, np.random.default_rng(seed)) if n_boot else np.array([])
    rows = []
    for name, fn in _national_metrics(truth).items():
        low, high = _ci(np.asarray(fn(boots), dtype=float))
        rows.append(
            {
                "attribute": OVERALL[0],
                "group": OVERALL[1],
                "metric": name,
                "value": float(fn(sim)),
                "ci_low": low,
                "ci_high": high,
                "n": len(share),
                "sim_dist": [sim, 1 - sim],
                "truth_dist": [truth, 1 - truth],
                "truth_value": truth if name == "national_dem_share" else np.nan,
                "uniform": float(fn(0.5)),
            }
        )
    return rows


# --------------------------------------------------------------------------- summary CIs


def _person_matrix(
    person: np.ndarray, index: pd.Index, values: np.ndarray, width: int
) -> np.ndarray:
    """A (persons, width) matrix with each row's ``values`` at its person's slot in ``index``
    (0 elsewhere)."""
    out = np.zeros((len(index), width))
    np.add.at(out, index.get_indexer(person), values)
    return out


def _persons_in_order(rows: list[CellRows]) -> tuple[np.ndarray, np.ndarray]:
    """The person of every row of a cell's questions in file order, and the row positions
    of that order within the concatenation of ``rows``."""
    order = np.argsort(np.concatenate([r.position for r in rows]), kind="stable")
    return np.concatenate([r.person for r in rows])[order], order


def _distribution_joint(
    cell: list[tuple[str, CellRows]], truth: Truth, by_question: dict[str, pd.DataFrame],
    n_boot: int, seed: int,
) -> dict[str, np.ndarray]:
    """Replicates of each metric's mean over questions (overall group), persons drawn once per
    replicate for all questions: every question replays the same seeded draws over the same
    person index (persons in order of first appearance), so memory holds one question's matrix
    at a time."""
    index = pd.Index(pd.unique(_persons_in_order([rows for _, rows in cell])[0]))
    found: dict[str, list[np.ndarray]] = {}
    for qid, rows in cell:
        question, table = truth.survey.question(qid), by_question.get(qid)
        overall = None if table is None else table[(table["attribute"] == OVERALL[0])
                                                   & (table["group"] == OVERALL[1])]  # fmt: skip
        target = None if overall is None or overall.empty else _truth_dist(question, overall)
        if target is None:
            continue
        weighted = rows.probs * rows.weight[:, None]
        mat = _person_matrix(rows.person, index, weighted, len(question.options))
        sums = np.vstack([counts @ mat for counts in
                          M.resample_counts(len(index), n_boot, np.random.default_rng(seed))])
        for name, fn in _metric_fns(question).items():
            found.setdefault(name, []).append(np.array(
                [_safe(lambda d=d, fn=fn, t=target: fn(d, t)) if d.sum() > 0 else np.nan
                 for d in sums]))  # fmt: skip
    return {name: np.nanmean(np.vstack(values), axis=0) for name, values in found.items()}


def _strata(cell: list[tuple[str, CellRows]], groups: Groups) -> dict[str, pd.Index]:
    """Per state (``""`` when no row has one): its persons in order of first appearance."""
    rows = [r for _, r in cell]
    persons, order = _persons_in_order(rows)
    codes = (np.concatenate([r.groups["state"] for r in rows])[order]
             if all("state" in r.groups for r in rows) else np.full(len(persons), -1))  # fmt: skip
    labels = groups.labels.get("state", [])
    present = sorted(np.unique(codes[codes >= 0]), key=lambda c: labels[c])
    if not present:
        return {"": pd.Index(pd.unique(persons))}
    return {labels[c]: pd.Index(pd.unique(persons[codes == c])) for c in present}


def _election_joint(cell: list[tuple[str, CellRows]], groups: Groups, survey: Survey,
                    n_boot: int, seed: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Replicates of each year-level election metric averaged over years: persons drawn once per
    replicate within each state (all persons when none carries a state), shared by all years."""
    index = _strata(cell, groups)
    years = []
    for qid, rows in cell:
        question = survey.question(qid)
        dem, rep = question.index_of("dem"), question.index_of("rep")
        members = ({"": np.arange(len(rows))} if list(index) == [""]
                   else groups.members("state", rows))  # fmt: skip
        per_state = {}
        for s in index:
            where = members.get(s, np.zeros(0, dtype=int))
            mat = rows.probs[where]
            two = mat[:, dem] + mat[:, rep]
            w = rows.weight[where] * (two > 0)
            share = np.divide(mat[:, dem], two, out=np.zeros_like(two), where=two > 0)
            if w.sum() > 0:
                per_state[s] = _person_matrix(rows.person[where], index[s],
                                              np.column_stack([w * share, w]), 2)  # fmt: skip
        years.append((int(question.tags.get("year", "0")), per_state))
    rng = np.random.default_rng(seed)  # one chunk size for all states: their draws interleave
    chunk = M.boot_chunk(max(len(persons) for persons in index.values()))
    draws = [M.resample_counts(len(index[s]), n_boot, rng, chunk) for s in index]
    found: dict[str, list[np.ndarray]] = {}
    for chunk in zip(*draws, strict=True):
        counts = dict(zip(index, chunk, strict=True))
        per_year = [_year_metrics(year, per_state, counts) for year, per_state in years]
        for name in per_year[0]:
            found.setdefault(name, []).append(np.mean([y[name] for y in per_year], axis=0))
    return {name: np.concatenate(chunks) for name, chunks in found.items()}


def _year_metrics(year: int, per_state: dict[str, np.ndarray], counts: dict[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:
    """One year's aggregate metrics for a chunk of replicates (rows of ``counts``)."""
    states = sorted(per_state)
    sums = [counts[s] @ per_state[s] for s in states]
    shares = np.column_stack([np.where(x[:, 1] > 0, x[:, 0] / np.where(x[:, 1] > 0, x[:, 1], 1),
                                       np.nan) for x in sums])  # fmt: skip
    if states == [""]:
        return {k: fn(shares[:, 0]) for k, fn in _national_metrics(E.national_share(year)).items()}
    truth = E.state_truth(year).set_index("state").loc[states].reset_index()
    return M.election_metrics(shares, truth)


def _summary_cis(collected: Collected, truth: Truth, n_boot: int, seed: int) -> pd.DataFrame:
    """Per tier x models x metric: the joint bootstrap CI of the summary statistic."""
    by_question = {str(k): v for k, v in truth.table.groupby("question_id")}
    by_model: dict[tuple[str, ...], list[tuple[str, CellRows]]] = {}
    for key in sorted(collected.cells):
        by_model.setdefault(key[1:], []).append((key[0], collected.cells[key]))
    out = []
    for keys, cell in sorted(by_model.items()):
        if truth.kind == "elections":
            found = _election_joint(cell, collected.groups, truth.survey, n_boot, seed)
        else:
            found = _distribution_joint(cell, truth, by_question, n_boot, seed)
        for name, values in found.items():
            low, high = _ci(np.asarray(values, dtype=float))
            out.append({**dict(zip(MODEL_KEY, keys, strict=True)), "metric": name,
                        "summary_ci_low": low, "summary_ci_high": high})  # fmt: skip
    return pd.DataFrame(out, columns=[*MODEL_KEY, "metric", "summary_ci_low",
                                      "summary_ci_high"])  # fmt: skip


# --------------------------------------------------------------------------- driver


def _add_meta(scores: pd.DataFrame) -> pd.DataFrame:
    """Fill ``meta``: the same metric, group and simulator scored on the meta tier."""
    keys = ["attribute", "group", "question_id", "simulator", "estimator", "metric"]
    meta = scores[scores["tier"].str.casefold() == META_TIER]
    if meta.empty:
        return scores.assign(meta=np.nan)
    means = meta.groupby(keys, as_index=False)["value"].mean().rename(columns={"value": "meta"})
    return scores.drop(columns="meta", errors="ignore").merge(means, on=keys, how="left")


def score(
    responses: pd.DataFrame | str | Path | ResponseSource,
    truth: Truth,
    persons: pd.DataFrame | None = None,
    n_boot: int = 200,
    seed: int = 0,
    min_valid_mass: float = 0.0,
    personas: pd.DataFrame | None = None,
    weights: pd.DataFrame | None = None,
) -> ScoreResult:
    """Score ``responses`` against ``truth``; see the module docstring for the metrics.

    ``responses``: a table, or the path of a Parquet file or folder of parts (or a
    :class:`~personasim.scoring.stream.ResponseSource`), read in one streaming pass of only the
    columns scoring needs: memory grows with the answers' compact arrays, not with the table.
    ``min_valid_mass``: rows with ``valid_mass`` at or below it are excluded and counted;
    ``personas``: a personas table whose invalid rows' responses are excluded likewise.
    ``weights``: calibrated weights by ``person_id`` (and ``tier``/``generator``), e.g. from
    ``personasim calibrate``; rows they do not cover keep their own weight and a note counts
    them (:func:`personasim.calibrate.attach_weights` does the same on a table).
    """
    notes: list[str] = []
    elections = truth.kind == "elections"
    attributes = ["state"] if elections else sorted(
        set(truth.table["attribute"].astype(str)) - {OVERALL[0]})  # fmt: skip
    if persons is not None and not elections:
        persons, derived = with_opinionqa_groups(persons, attributes)
        notes.extend(derived)
    source = responses if isinstance(responses, ResponseSource) else ResponseSource(responses)
    collected = collect_cells(source, truth.survey, attributes, persons,
                              personas, min_valid_mass, notes,
                              states=("state",) if elections else (),
                              weights=weights)  # fmt: skip
    out: list[dict[str, Any]] = []
    by_question = dict(tuple(truth.table.groupby("question_id")))
    for key in sorted(collected.cells):
        question, rows = truth.survey.question(key[0]), collected.cells[key]
        labels = dict(zip(CELL, key, strict=True))
        if elections:
            found = _election_rows(question, rows, collected.groups, n_boot, seed)
        elif question.id in by_question:
            found = _distribution_rows(question, rows, collected.groups,
                                       by_question[question.id], n_boot, seed)  # fmt: skip
        else:
            notes.append(f"no truth rows for question {question.id!r}")
            continue
        out.extend({**labels, **r} for r in found)
    if not out:
        raise DataError("nothing to score", hint="; ".join(notes) or "responses are empty")
    scores = _add_meta(pd.DataFrame(out).assign(meta=np.nan))
    scores = scores.merge(collected.counts, on=CELL, how="left")
    if n_boot:
        cis = _summary_cis(collected, truth, n_boot, seed)
        overall = (scores["attribute"] == OVERALL[0]) & (scores["group"] == OVERALL[1])
        scores = scores.merge(cis, on=[*MODEL_KEY, "metric"], how="left")
        scores.loc[~overall, ["summary_ci_low", "summary_ci_high"]] = np.nan
    scores = scores.reindex(columns=SCORE_COLUMNS)
    return ScoreResult(scores, summarize(scores), cross_model_table(scores), notes)


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Overall-group scores averaged over questions, per tier x models x metric.

    ``ci_low``/``ci_high`` are the joint bootstrap interval of that mean (``summary_ci_*`` of the
    scores; NaN for a scores file written before them, never an average of per-question CIs);
    ``excluded``/``excluded_share``: answers left out over all questions (see :func:`score`).
    """
    overall = scores[(scores["attribute"] == OVERALL[0]) & (scores["group"] == OVERALL[1])]
    overall = overall.assign(**{c: overall[c] if c in overall.columns else np.nan
                                for c in ("summary_ci_low", "summary_ci_high", "answers",
                                          "excluded")})  # fmt: skip
    grouped = overall.groupby([*MODEL_KEY, "metric"], as_index=False)
    table = grouped[["value", "uniform", "meta"]].mean()
    cis = grouped[["summary_ci_low", "summary_ci_high"]].first()
    table["ci_low"], table["ci_high"] = cis["summary_ci_low"], cis["summary_ci_high"]
    table["questions"] = grouped["question_id"].nunique()["question_id"].to_numpy()
    counts = grouped[["answers", "excluded"]].sum(min_count=1)
    table["excluded"] = counts["excluded"]
    table["excluded_share"] = counts["excluded"] / counts["answers"]
    return table[[*MODEL_KEY, "metric", "value", "ci_low", "ci_high", "uniform", "meta",
                  "questions", "excluded", "excluded_share"]]  # fmt: skip


def cross_model_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean overall alignment with its joint bootstrap CI per tier, generator and simulator
    (rows of :func:`summarize`); empty with a single generator x simulator pair."""
    summary = summarize(scores)
    sel = summary[summary["metric"] == "alignment"]
    if sel["generator"].nunique() < 2 and sel["simulator"].nunique() < 2:
        return pd.DataFrame()
    return sel[["tier", "generator", "simulator", "estimator", "value", "ci_low", "ci_high",
                "excluded_share"]].reset_index(drop=True)  # fmt: skip


def _cross_text(cross: pd.DataFrame) -> str:
    """The cross-model table as generator rows x simulator columns of ``value [low, high]``."""
    cells = cross.assign(cell=[f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                               zip(cross["value"], cross["ci_low"], cross["ci_high"],
                                   strict=True)])  # fmt: skip
    return cells.pivot_table(index=["tier", "generator"], columns="simulator", values="cell",
                             aggfunc="first").to_string()  # fmt: skip


def format_summary(result: ScoreResult) -> str:
    """The printed summary: headline metrics per tier x models, then the cross-model table."""
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        text = result.summary.to_string(index=False)
        if not result.cross_model.empty:
            text += ("\n\nalignment [95% bootstrap CI over persons, resampled jointly across "
                     "questions], generator x simulator:\n" + _cross_text(result.cross_model))
    notes = "".join(f"\nnote: {n}" for n in result.notes)
    return text + notes
