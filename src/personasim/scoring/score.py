"""Score simulated survey responses against ground truth.

Input: a responses table (one row per person x question x tier x models, ``probs`` per
*original* option), person weights and group columns (from the responses themselves or a persons
table), and a truth source: ``elections``, ``opinionqa:PATH`` or ``csv:PATH``.

Output (:class:`ScoreResult`): ``scores``, one row per group x question x tier x models x metric
with the simulated and true distributions, the value, its interval over persons and the two null
baselines beside it (``uniform`` answers and the ``meta`` tier); a ``summary`` table (overall
group, averaged over questions) and a generator x simulator ``cross_model`` table.

Validity: a response row enters no distribution when it is marked ``valid = False``, when its
``valid_mass`` is at or below ``min_valid_mass`` (default 0: a row on which no probability landed
on any option letter is never read as a uniform respondent, whoever wrote the file), when it has
neither ``probs`` nor an ``answer``, or when its persona is invalid (``personas`` given). Such rows
are counted per tier x question x models: ``answers`` (rows read), ``excluded`` and
``excluded_share`` sit beside every score, as refusal rates do.

Intervals (:mod:`personasim.scoring.intervals`): a distance row (WD, TV, JS, |delta share| and
their alignments) carries the plug-in ``value``, the median-unbiased ``corrected``, a
test-inversion interval ``ci_low``/``ci_high`` that covers also when the simulation equals the
truth, ``p_equal`` (p-value of equality) and ``detectable`` (smallest distance the sample could
tell from 0); shares, counts, winner credit and refusal rates carry a percentile interval of the
same replicates. Persons are drawn in a canonical order of their id hashes with a seed per group
(elections: per state, jointly for all years), so any row order or part layout gives the same
tables. ``summary_*`` (overall rows) are the same for the *summary* statistic (the mean over
questions; elections: over years x states): each replicate draws the persons once (elections:
within each state) and every question uses the same draw, so correlated questions widen the
interval as they should.

A truth that is a respondent sample (``microdata:``, whose table carries Kish's ``n_eff`` per
question x group) is not exact: every distance interval then also holds the truth's own noise,
its shares redrawn per replicate from ``n_eff`` respondents
(:func:`personasim.scoring.intervals.truth_replicates`). ``by_group``
(:func:`group_alignment`) is the alignment of each truth group over questions with that
interval, the summary's computation run per group.

Metrics per question kind: ordinal -> ``alignment`` (1 - normalized WD), ``wd`` and, when the
question has refusal options, ``refusal_rate`` (simulated value, true value in ``truth_value``);
nominal -> ``tv``, ``js`` and ``alignment`` (1 - TV). Elections per state -> ``dem_share``,
``abs_error``, ``alignment`` (1 - |p_sim - p_true|), ``winner_correct``; per year overall ->
``alignment`` (mean over states), ``mean_abs_error``, ``winner_accuracy``,
``dem_electoral_votes``, ``national_dem_share``, ``national_abs_error``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.keys import MODEL_KEY
from personasim.scoring import intervals as I
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
    "corrected",
    "ci_low",
    "ci_high",
    "p_equal",
    "detectable",
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
    "summary_corrected",
    "summary_p_equal",
    "summary_detectable",
]
INTERVAL_COLUMNS = ("corrected", "ci_low", "ci_high", "p_equal", "detectable")
"""What an interval gives each row (NaN where a metric has none, e.g. a share or a count)."""
SUMMARY_COLUMNS = tuple(f"summary_{c}" for c in INTERVAL_COLUMNS)
DISTANCE = {"ordinal": "wd", "nominal": "tv", "wd": "wd", "tv": "tv", "js": "js"}
"""Registry distance (:data:`personasim.scoring.intervals.METRICS`) of each metric: alignment is
1 - WD for ordinal questions, 1 - TV for nominal ones."""
MIN_BOOT = 10
"""Fewest replicates an interval is computed from (below it rows carry no interval)."""
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
    by_group: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BY_GROUP_COLUMNS))
    """Alignment per group over questions with its interval (:func:`group_alignment`)."""


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


def _seed(seed: int, *labels: str) -> int:
    """The replicate seed of one sample (a group, a state): derived from ``seed`` and its labels,
    so every sample draws its own persons and the draw does not depend on what else is scored."""
    text = "\x1f".join(labels).encode("utf-8")
    state = np.random.SeedSequence([seed, zlib.crc32(text)]).generate_state(1, np.uint64)
    return int(state[0])


def _no_interval() -> dict[str, float]:
    """The interval fields of a row without one."""
    return dict.fromkeys(INTERVAL_COLUMNS, float("nan"))


def _fields(est: I.Estimate, alignment: bool) -> dict[str, float]:
    """An estimate's interval fields (of alignment ``1 - distance`` when ``alignment``;
    ``detectable`` stays a distance)."""
    corrected, low, high = est.corrected, est.ci_low, est.ci_high
    if alignment:
        _, corrected, low, high = est.alignment()
    return {
        "corrected": corrected,
        "ci_low": low,
        "ci_high": high,
        "p_equal": est.p_equal,
        "detectable": est.detectable,
    }


def _estimated(find: Callable[[], I.Estimate], alignment: bool) -> dict[str, float]:
    """:func:`_fields` of ``find()``; no interval when too few replicates are usable (a small
    ``n_boot``, replicates that left a group without weight)."""
    try:
        return _fields(find(), alignment)
    except I.IntervalInputError:
        return _no_interval()


def _percentile(values: np.ndarray) -> dict[str, float]:
    """The interval fields of a quantity without a distance (a share, a count, a refusal rate):
    the percentile interval of its replicates."""
    low, high = _ci(np.asarray(values, dtype=float))
    return {**_no_interval(), "ci_low": low, "ci_high": high}


def _substantive(question: Question, *dists: np.ndarray) -> list[np.ndarray] | None:
    """Each distribution (vector or replicate rows) without the refusal options, renormalized;
    None when a single distribution has nothing left."""
    out = [I.drop_refusal_columns(d, question.refusal_mask) for d in dists]
    return None if any(d.shape[0] == 1 and not np.all(np.isfinite(d)) for d in out) else out


def _distance_interval(
    question: Question,
    name: str,
    sim: np.ndarray,
    reps: np.ndarray,
    truth: np.ndarray,
    weights: np.ndarray,
    truth_reps: np.ndarray | None = None,
) -> dict[str, float]:
    """The interval fields of metric ``name`` of one group (:func:`personasim.scoring.intervals.
    estimate`, with the truth's own noise when ``truth_reps`` holds its replicates; the refusal
    rate: a percentile interval)."""
    if name == "refusal_rate":
        return _percentile(reps[:, question.refusal_mask].sum(axis=1))
    dists = _substantive(question, sim, truth, reps)
    if dists is None:
        return _no_interval()
    p, q, r = dists
    noise = _truth_noise(question, truth_reps, q[0])
    metric = DISTANCE[question.kind if name == "alignment" else name]
    positions = question.positions if metric == "wd" else None
    return _estimated(
        lambda: I.estimate(
            metric, p[0], r, q[0], len(weights), positions, weights=weights, truth_noise=noise
        ),
        name == "alignment",
    )


def _truth_noise(
    question: Question, truth_reps: np.ndarray | None, target: np.ndarray
) -> np.ndarray | None:
    """``q* - q`` of the truth's replicates without refusal options (``target``: ``q`` without
    them); a replicate whose draw held only refusals adds no noise. None without replicates."""
    if truth_reps is None:
        return None
    drawn = I.drop_refusal_columns(truth_reps, question.refusal_mask)
    return np.nan_to_num(drawn - target, nan=0.0)


def _truth_draws(
    target: np.ndarray, n_eff: float, n_boot: int, seed: int, *labels: str
) -> np.ndarray | None:
    """Replicates of a true distribution that is itself a weighted sample of ``n_eff``
    respondents (:func:`personasim.scoring.intervals.truth_replicates`, seeded by the question
    and group ``labels``); None for an exact truth (no ``n_eff``) or without replicates."""
    if not n_boot or not np.isfinite(n_eff) or n_eff <= 0:
        return None
    return I.truth_replicates(target, n_eff, n_boot, _seed(seed, "truth", *labels))


def _n_eff(rows: pd.DataFrame) -> float:
    """Kish's effective sample size of one question x group of the truth (NaN: an exact
    truth, e.g. election results or a truth without it)."""
    if "n_eff" not in rows.columns or rows.empty:
        return float("nan")
    return float(pd.to_numeric(rows["n_eff"], errors="coerce").iloc[0])


def _score_group(
    question: Question,
    keys: np.ndarray,
    probs: np.ndarray,
    weights: np.ndarray,
    truth: np.ndarray,
    n_boot: int,
    seed: int,
    truth_reps: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Metric rows for one group of persons (``keys``) on one question (``truth_reps``: the
    truth's replicates when it is a sample, see :func:`_truth_draws`)."""
    sim = I.weighted_mean(probs, weights, keys)
    flat = M.uniform(len(question.options), question.refusal_mask)
    reps = I.replicate_means(keys, probs, weights, n_boot, seed) if n_boot else None
    rows = []
    for name, fn in _metric_fns(question).items():

        def stat(d: np.ndarray, fn: Callable = fn) -> float:
            return fn(d, truth)

        interval = (
            _distance_interval(question, name, sim, reps, truth, weights, truth_reps)
            if reps is not None
            else _no_interval()
        )
        truth_value = (
            M.refusal_rate(truth, question.refusal_mask) if name == "refusal_rate" else np.nan
        )
        rows.append(
            {
                "metric": name,
                "value": _safe(lambda: stat(sim)),
                **interval,
                "n": len(probs),
                "sim_dist": sim.tolist(),
                "truth_dist": truth.tolist(),
                "truth_value": truth_value,
                "uniform": _safe(lambda: stat(flat)),
            }
        )
    return rows


def _distribution_rows(
    question: Question,
    rows: CellRows,
    groups: Groups,
    truth: pd.DataFrame,
    n_boot: int,
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
        labels = (question.id, attribute, str(group))
        drawn = _truth_draws(target, _n_eff(truth_rows), n_boot, seed, *labels)
        for row in _score_group(
            question,
            rows.person[where],
            mat,
            w,
            target,
            n_boot,
            _seed(seed, attribute, str(group)),
            drawn,
        ):
            out.append({"attribute": attribute, "group": group, **row})
    return out


# --------------------------------------------------------------------------- elections


@dataclass
class StateDraw:
    """One state's (or, without states, the nation's) simulated Democratic two-party share."""

    share: float
    """Weighted mean share (summed in canonical person order: the same in any row order)."""
    reps: np.ndarray | None
    """Its bootstrap replicates (None without ``n_boot``), persons drawn once per replicate for
    all years of the tier x models (:func:`personasim.scoring.intervals.joint_replicate_means`)."""
    n: int
    """Persons with a two-party share."""
    weights: np.ndarray
    """Their weights."""

    def estimate(self, truth: float) -> I.Estimate:
        """``|share - truth|`` with its interval (``abs_diff``)."""
        assert self.reps is not None  # only called with replicates
        return I.estimate(
            "abs_diff",
            [self.share, 1 - self.share],
            np.column_stack([self.reps, 1 - self.reps]),
            [truth, 1 - truth],
            self.n,
            weights=self.weights,
        )

    def part(self, truth: float) -> I.SummaryPart:
        """This state as one part of a mean of ``|share - truth|``."""
        assert self.reps is not None
        return I.SummaryPart(
            "abs_diff",
            np.array([self.share, 1 - self.share]),
            np.column_stack([self.reps, 1 - self.reps]),
            np.array([truth, 1 - truth]),
            n=self.n,
            weights=self.weights,
        )


def _two_party(
    question: Question, rows: CellRows, where: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys, Democratic two-party shares and weights of the rows ``where`` with a two-party
    share."""
    dem, rep = question.index_of("dem"), question.index_of("rep")
    mat, weight, keys = rows.probs[where], rows.weight[where], rows.person[where]
    two = mat[:, dem] + mat[:, rep]
    ok = two > 0
    return keys[ok], mat[ok, dem] / two[ok], weight[ok]


def _state_draws(
    cell: list[tuple[str, CellRows]], groups: Groups, survey: Survey, n_boot: int, seed: int
) -> dict[str, dict[str, StateDraw]]:
    """Per question of one tier x models, per state: its :class:`StateDraw` (one entry ``""``
    per question when no row carries a state). Each state's persons are drawn with that
    state's own seed, jointly for all years."""
    by_state: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for qid, rows in cell:
        question = survey.question(qid)
        found = {
            s: _two_party(question, rows, where)
            for s, where in groups.members("state", rows).items()
        }
        found = {s: v for s, v in found.items() if len(v[0]) and v[2].sum() > 0}
        if not found:
            found = {"": _two_party(question, rows, np.arange(len(rows)))}
        for state, value in found.items():
            by_state.setdefault(state, {})[qid] = value
    out: dict[str, dict[str, StateDraw]] = {}
    for state, years in sorted(by_state.items()):
        qids = list(years)
        keys, shares, weights = (list(x) for x in zip(*years.values(), strict=True))
        reps = (
            I.joint_replicate_means(
                keys, [s[:, None] for s in shares], weights, n_boot, _seed(seed, "state", state)
            )
            if n_boot
            else [None] * len(qids)
        )
        for qid, k, s, w, r in zip(qids, keys, shares, weights, reps, strict=True):
            point = float(I.weighted_mean(s[:, None], w, k)[0]) if w.sum() > 0 else np.nan
            out.setdefault(qid, {})[state] = StateDraw(
                point, None if r is None else r[:, 0], len(s), w
            )
    return out


def _ci(values: np.ndarray) -> tuple[float, float]:
    """2.5 and 97.5 percentiles, ignoring NaN (NaN when nothing is left)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def _election_rows(question: Question, draws: dict[str, StateDraw]) -> list[dict[str, Any]]:
    """Per-state and per-year election rows for one question x tier x models."""
    year = int(question.tags.get("year", "0"))
    if list(draws) == [""]:
        return _national_rows(year, draws[""])
    states = sorted(draws)
    truth = E.state_truth(year).set_index("state").loc[states].reset_index()
    point = np.array([[draws[s].share for s in states]])
    rows = _per_state_rows(states, truth, draws)
    agg, agg_flat = (
        M.election_metrics(point, truth),
        M.election_metrics(np.full_like(point, 0.5), truth),
    )
    intervals = _year_intervals([draws[s] for s in states], truth)
    n_total = sum(draws[s].n for s in states)
    v = truth["two_party_votes"].to_numpy(float)
    truths = {
        "dem_electoral_votes": float(
            truth["electoral_votes"].to_numpy(float) @ (truth["dem_share"].to_numpy() > 0.5)
        ),
        "national_dem_share": float(truth["dem_share"].to_numpy(float) @ v / v.sum()),
    }
    for name, value in agg.items():
        rows.append(
            {
                "attribute": OVERALL[0],
                "group": OVERALL[1],
                "metric": name,
                "value": float(value[0]),
                **intervals.get(name, _no_interval()),
                "n": n_total,
                "truth_value": truths.get(name, np.nan),
                "uniform": float(agg_flat[name][0]),
            }
        )
    return [{"sim_dist": None, "truth_dist": None, **r} for r in rows]


def _year_intervals(draws: list[StateDraw], truth: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Interval fields of one year's aggregates over ``draws`` (states in ``truth``'s order):
    ``alignment`` and ``mean_abs_error`` by :func:`personasim.scoring.intervals.
    estimate_summary` over the states (independent samples), ``national_abs_error`` by one of
    the vote-weighted national share (:func:`_national_part`), the others percentile
    intervals."""
    if draws[0].reps is None:
        return {}
    boots = M.election_metrics(np.column_stack([d.reps for d in draws]), truth)
    out = {name: _percentile(values) for name, values in boots.items()}
    parts = [d.part(t) for d, t in zip(draws, truth["dem_share"].to_numpy(float), strict=True)]
    for name in ("alignment", "mean_abs_error"):
        out[name] = _estimated(lambda: I.estimate_summary(parts), name == "alignment")
    national = _national_part(draws, truth)
    out["national_abs_error"] = _estimated(lambda: I.estimate_summary([national]), False)
    return out


def _national_part(draws: list[StateDraw], truth: pd.DataFrame) -> I.SummaryPart:
    """``|national share - national truth|`` as one summary part: the states' shares (and each
    replicate's) weighted by actual two-party votes, as :func:`personasim.scoring.metrics.
    election_metrics` computes ``national_dem_share``. The states are independent samples of
    different sizes, so the replicates' spread is used as it is (no ``n``)."""
    votes = truth["two_party_votes"].to_numpy(float)
    share = votes / votes.sum()
    sim = float(np.array([d.share for d in draws]) @ share)
    reps = np.column_stack([d.reps for d in draws]) @ share
    real = float(truth["dem_share"].to_numpy(float) @ share)
    return I.SummaryPart(
        "abs_diff",
        np.array([sim, 1 - sim]),
        np.column_stack([reps, 1 - reps]),
        np.array([real, 1 - real]),
    )


def _per_state_rows(
    states: list[str], truth: pd.DataFrame, draws: dict[str, StateDraw]
) -> list[dict[str, Any]]:
    """dem_share / abs_error / alignment / winner_correct rows for each state."""
    rows = []
    for j, state in enumerate(states):
        t, draw = float(truth["dem_share"].iloc[j]), draws[state]
        sims = {
            "dem_share": lambda s: s,
            "abs_error": lambda s, t=t: np.abs(s - t),
            "alignment": lambda s, t=t: 1 - np.abs(s - t),
            "winner_correct": lambda s, t=t: M.winner_credit(s, t),
        }
        for name, fn in sims.items():
            if draw.reps is None:
                interval = _no_interval()
            elif name in ("abs_error", "alignment"):
                interval = _estimated(lambda t=t, d=draw: d.estimate(t), name == "alignment")
            else:
                interval = _percentile(fn(draw.reps))
            rows.append(
                {
                    "attribute": "state",
                    "group": state,
                    "metric": name,
                    "value": float(fn(draw.share)),
                    **interval,
                    "n": draw.n,
                    "sim_dist": [draw.share, 1 - draw.share],
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


def _national_rows(year: int, draw: StateDraw) -> list[dict[str, Any]]:
    """Election rows when persons carry no state: national share only."""
    truth, sim = E.national_share(year), draw.share
    rows = []
    for name, fn in _national_metrics(truth).items():
        if draw.reps is None:
            interval = _no_interval()
        elif name == "national_dem_share":
            interval = _percentile(draw.reps)
        else:
            interval = _estimated(lambda: draw.estimate(truth), name == "alignment")
        rows.append(
            {
                "attribute": OVERALL[0],
                "group": OVERALL[1],
                "metric": name,
                "value": float(fn(sim)),
                **interval,
                "n": draw.n,
                "sim_dist": [sim, 1 - sim],
                "truth_dist": [truth, 1 - truth],
                "truth_value": truth if name == "national_dem_share" else np.nan,
                "uniform": float(fn(0.5)),
            }
        )
    return rows


# --------------------------------------------------------------------------- summary intervals


@dataclass(frozen=True)
class _Block:
    """One question of a summary over questions: the persons of one group and the truth."""

    question: Question
    person: np.ndarray
    """Person keys (:attr:`personasim.scoring.stream.CellRows.person`)."""
    probs: np.ndarray
    weight: np.ndarray
    target: np.ndarray
    """The group's true distribution."""
    truth_reps: np.ndarray | None
    """Its replicates when the truth is a sample (:func:`_truth_draws`)."""


def _blocks(
    cell: list[tuple[str, CellRows]],
    truth: Truth,
    by_question: dict[str, pd.DataFrame],
    members: Callable[[str, CellRows], dict[str, np.ndarray]],
    key: tuple[str, str],
    n_boot: int,
    seed: int,
) -> list[_Block]:
    """The questions of ``cell`` (one tier x models) that group ``key`` (attribute, group)
    answered and the truth has, with a weight above 0."""
    out = []
    for qid, rows in cell:
        question, table = truth.survey.question(qid), by_question.get(qid)
        if table is None:
            continue
        mine = table[
            (table["attribute"].astype(str) == key[0]) & (table["group"].astype(str) == key[1])
        ]
        target = None if mine.empty else _truth_dist(question, mine)
        where = np.arange(len(rows)) if key == OVERALL else members(key[0], rows).get(key[1])
        if target is None or where is None or rows.weight[where].sum() <= 0:
            continue
        drawn = _truth_draws(target, _n_eff(mine), n_boot, seed, qid, *key)
        out.append(
            _Block(
                question,
                rows.person[where],
                rows.probs[where],
                rows.weight[where],
                target,
                drawn,
            )
        )
    return out


def _summary_fields(
    blocks: list[_Block], n_boot: int, seed: int, key: tuple[str, str]
) -> dict[str, dict[str, float]]:
    """Interval fields of each metric's mean over the questions of ``blocks`` (one group):
    persons drawn once per replicate for all questions
    (:func:`personasim.scoring.intervals.joint_replicate_means`, the group's seed: the
    per-question rows draw the same counts), then one
    :func:`personasim.scoring.intervals.estimate_summary` per metric, the truth's own noise
    included where it is a sample; the refusal rate: a percentile interval of its mean."""
    if not blocks:
        return {}
    reps = I.joint_replicate_means(
        [b.person for b in blocks],
        [b.probs for b in blocks],
        [b.weight for b in blocks],
        n_boot,
        _seed(seed, *key),
    )
    parts: dict[str, list[I.SummaryPart]] = {}
    refusals: list[np.ndarray] = []
    for block, rep in zip(blocks, reps, strict=True):
        question = block.question
        sim = I.weighted_mean(block.probs, block.weight, block.person)
        for name in _metric_fns(question):
            dists = _substantive(question, sim, block.target, rep)
            if name == "refusal_rate":
                refusals.append(rep[:, question.refusal_mask].sum(axis=1))
            elif dists is not None:
                metric = DISTANCE[question.kind if name == "alignment" else name]
                parts.setdefault(name, []).append(
                    I.SummaryPart(
                        metric,
                        dists[0][0],
                        dists[2],
                        dists[1][0],
                        question.positions if metric == "wd" else None,
                        len(block.probs),
                        block.weight,
                        _truth_noise(question, block.truth_reps, dists[1][0]),
                    )
                )
    out = {
        name: _estimated(lambda p=p: I.estimate_summary(p), name == "alignment")
        for name, p in parts.items()
    }
    if refusals:
        out["refusal_rate"] = _percentile(np.nanmean(np.vstack(refusals), axis=0))
    return out


def _distribution_summary(
    cell: list[tuple[str, CellRows]],
    truth: Truth,
    by_question: dict[str, pd.DataFrame],
    n_boot: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """:func:`_summary_fields` of the overall group of one tier x models."""
    blocks = _blocks(cell, truth, by_question, lambda a, r: {}, OVERALL, n_boot, seed)
    return _summary_fields(blocks, n_boot, seed, OVERALL)


def _election_summary(
    cell_draws: dict[str, dict[str, StateDraw]], survey: Survey
) -> dict[str, dict[str, float]]:
    """Interval fields of each year-level election metric averaged over years: ``alignment`` and
    ``mean_abs_error`` by one :func:`personasim.scoring.intervals.estimate_summary` over every
    year x state (the states' replicates drawn jointly for all years), ``national_abs_error`` by
    one over the years' vote-weighted national shares (:func:`_national_part`; it used to take
    the states' mean error interval, which need not even hold its value), the others percentile
    intervals of the mean over years."""
    found: dict[str, list[np.ndarray]] = {}
    parts, national = [], []
    for qid, draws in sorted(cell_draws.items()):
        year = int(survey.question(qid).tags.get("year", "0"))
        states = sorted(draws)
        if states == [""]:
            truth = E.national_share(year)
            boots = {k: fn(draws[""].reps) for k, fn in _national_metrics(truth).items()}
            parts.append(draws[""].part(truth))
            national.append(draws[""].part(truth))
        else:
            truth_table = E.state_truth(year).set_index("state").loc[states].reset_index()
            boots = M.election_metrics(
                np.column_stack([draws[s].reps for s in states]), truth_table
            )
            parts += [
                draws[s].part(t)
                for s, t in zip(states, truth_table["dem_share"].to_numpy(float), strict=True)
            ]
            national.append(_national_part([draws[s] for s in states], truth_table))
        for name, values in boots.items():
            found.setdefault(name, []).append(np.asarray(values, dtype=float))
    out = {name: _percentile(np.mean(values, axis=0)) for name, values in found.items()}
    for name in ("alignment", "mean_abs_error"):
        if name in out:
            out[name] = _estimated(lambda: I.estimate_summary(parts), name == "alignment")
    if "national_abs_error" in out:
        out["national_abs_error"] = _estimated(lambda: I.estimate_summary(national), False)
    return out


def _by_model(collected: Collected) -> dict[tuple[str, ...], list[tuple[str, CellRows]]]:
    """The cells of each tier x models combination, questions sorted."""
    by_model: dict[tuple[str, ...], list[tuple[str, CellRows]]] = {}
    for key in sorted(collected.cells):
        by_model.setdefault(key[1:], []).append((key[0], collected.cells[key]))
    return by_model


def _summary_intervals(
    collected: Collected,
    truth: Truth,
    n_boot: int,
    seed: int,
    draws: dict[tuple[str, ...], dict[str, dict[str, StateDraw]]],
) -> pd.DataFrame:
    """Per tier x models x metric: the interval fields of the summary statistic
    (:data:`SUMMARY_COLUMNS`)."""
    by_question = {str(k): v for k, v in truth.table.groupby("question_id")}
    out = []
    for keys, cell in sorted(_by_model(collected).items()):
        if truth.kind == "elections":
            found = _election_summary(draws[keys], truth.survey)
        else:
            found = _distribution_summary(cell, truth, by_question, n_boot, seed)
        for name, fields in found.items():
            out.append(
                {
                    **dict(zip(MODEL_KEY, keys, strict=True)),
                    "metric": name,
                    **{f"summary_{c}": fields[c] for c in INTERVAL_COLUMNS},
                }
            )
    return pd.DataFrame(out, columns=[*MODEL_KEY, "metric", *SUMMARY_COLUMNS])


BY_GROUP_COLUMNS = [
    *MODEL_KEY,
    "attribute",
    "group",
    "value",
    *INTERVAL_COLUMNS,
    "uniform",
    "questions",
    "n",
    "truth_n",
    "truth_n_eff",
]
"""Columns of :attr:`ScoreResult.by_group`."""


def group_alignment(
    collected: Collected, truth: Truth, scores: pd.DataFrame, n_boot: int, seed: int
) -> pd.DataFrame:
    """Alignment by group (:data:`BY_GROUP_COLUMNS`): per tier x models and every group of the
    truth (overall included), ``value`` the mean alignment over the questions scored for the
    group (the ``alignment`` rows of ``scores``), its interval one
    :func:`personasim.scoring.intervals.estimate_summary` over those questions with the group's
    persons drawn jointly and, where the truth is a sample with ``n_eff``, the truth's
    parametric replicates subtracted from the noise (both sources). ``n``: the group's persons
    (most over questions); ``truth_n``/``truth_n_eff``: its respondents and Kish's effective
    size (fewest over questions; NaN for an exact truth). Empty for elections."""
    rows = scores[scores["metric"] == "alignment"]
    if truth.kind == "elections" or rows.empty:
        return pd.DataFrame(columns=BY_GROUP_COLUMNS)
    keys = [*MODEL_KEY, "attribute", "group"]
    table = rows.groupby(keys, as_index=False).agg(
        value=("value", "mean"),
        uniform=("uniform", "mean"),
        questions=("question_id", "nunique"),
        n=("n", "max"),
    )
    sizes = _truth_sizes(truth.table)
    table = table.merge(sizes, on=["attribute", "group"], how="left")
    by_question = {str(k): v for k, v in truth.table.groupby("question_id")}
    cells = _by_model(collected)
    fields = []
    for row in table.itertuples(index=False):
        model = tuple(getattr(row, k) for k in MODEL_KEY)
        key = (str(row.attribute), str(row.group))
        found = {}
        if n_boot >= MIN_BOOT and model in cells:
            blocks = _blocks(
                cells[model], truth, by_question, collected.groups.members, key, n_boot, seed
            )
            found = _summary_fields(blocks, n_boot, seed, key).get("alignment", {})
        fields.append(found or _no_interval())
    table = pd.concat([table, pd.DataFrame(fields, index=table.index)], axis=1)
    return table.reindex(columns=BY_GROUP_COLUMNS)


def _truth_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """Per attribute x group of a truth table, its fewest respondents ``truth_n`` and smallest
    ``truth_n_eff`` over questions (NaN without these columns)."""
    keys = ["attribute", "group"]
    if not {"n", "n_eff"} <= set(table.columns):
        out = table[keys].drop_duplicates()
        return out.assign(truth_n=np.nan, truth_n_eff=np.nan)
    return table.groupby(keys, as_index=False).agg(
        truth_n=("n", "min"), truth_n_eff=("n_eff", "min")
    )


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
    n_boot: int = 1000,
    seed: int = 0,
    min_valid_mass: float = 0.0,
    personas: pd.DataFrame | None = None,
    weights: pd.DataFrame | None = None,
    by_group: bool = True,
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
    ``by_group``: compute :attr:`ScoreResult.by_group` (one summary interval per truth group);
    False leaves it empty.
    """
    notes: list[str] = []
    elections = truth.kind == "elections"
    attributes = (
        ["state"] if elections else sorted(set(truth.table["attribute"].astype(str)) - {OVERALL[0]})
    )
    if persons is not None and not elections:
        persons, derived = with_opinionqa_groups(persons, attributes)
        notes.extend(derived)
    source = responses if isinstance(responses, ResponseSource) else ResponseSource(responses)
    collected = collect_cells(
        source,
        truth.survey,
        attributes,
        persons,
        personas,
        min_valid_mass,
        notes,
        states=("state",) if elections else (),
        weights=weights,
    )
    if 0 < n_boot < MIN_BOOT:
        notes.append(f"n_boot {n_boot} < {MIN_BOOT}: no intervals (too few replicates)")
    out: list[dict[str, Any]] = []
    by_question = dict(tuple(truth.table.groupby("question_id")))
    draws = (
        {
            keys: _state_draws(cell, collected.groups, truth.survey, n_boot, seed)
            for keys, cell in _by_model(collected).items()
        }
        if elections
        else {}
    )
    for key in sorted(collected.cells):
        question, rows = truth.survey.question(key[0]), collected.cells[key]
        labels = dict(zip(CELL, key, strict=True))
        if elections:
            found = _election_rows(question, draws[key[1:]][key[0]])
        elif question.id in by_question:
            found = _distribution_rows(
                question, rows, collected.groups, by_question[question.id], n_boot, seed
            )
        else:
            notes.append(f"no truth rows for question {question.id!r}")
            continue
        out.extend({**labels, **r} for r in found)
    if not out:
        raise DataError("nothing to score", hint="; ".join(notes) or "responses are empty")
    scores = _add_meta(pd.DataFrame(out).assign(meta=np.nan))
    scores = scores.merge(collected.counts, on=CELL, how="left")
    if n_boot:
        cis = _summary_intervals(collected, truth, n_boot, seed, draws)
        overall = (scores["attribute"] == OVERALL[0]) & (scores["group"] == OVERALL[1])
        scores = scores.merge(cis, on=[*MODEL_KEY, "metric"], how="left")
        scores.loc[~overall, list(SUMMARY_COLUMNS)] = np.nan
    scores = scores.reindex(columns=SCORE_COLUMNS)
    groups = (
        group_alignment(collected, truth, scores, n_boot, seed)
        if by_group
        else pd.DataFrame(columns=BY_GROUP_COLUMNS)
    )
    return ScoreResult(scores, summarize(scores), cross_model_table(scores), notes, groups)


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Overall-group scores averaged over questions, per tier x models x metric.

    ``corrected``, ``ci_low``, ``ci_high``, ``p_equal``, ``detectable`` are those of that mean
    (``summary_*`` of the scores, persons drawn jointly; NaN for a scores file written before
    them, never an average of per-question intervals);
    ``excluded``/``excluded_share``: answers left out over all questions (see :func:`score`).
    """
    overall = scores[(scores["attribute"] == OVERALL[0]) & (scores["group"] == OVERALL[1])]
    overall = overall.assign(
        **{
            c: overall[c] if c in overall.columns else np.nan
            for c in (*SUMMARY_COLUMNS, "answers", "excluded")
        }
    )
    grouped = overall.groupby([*MODEL_KEY, "metric"], as_index=False)
    table = grouped[["value", "uniform", "meta"]].mean()
    cis = grouped[list(SUMMARY_COLUMNS)].first()
    for column in INTERVAL_COLUMNS:
        table[column] = cis[f"summary_{column}"]
    table["questions"] = grouped["question_id"].nunique()["question_id"].to_numpy()
    counts = grouped[["answers", "excluded"]].sum(min_count=1)
    table["excluded"] = counts["excluded"]
    table["excluded_share"] = counts["excluded"] / counts["answers"]
    return table[
        [
            *MODEL_KEY,
            "metric",
            "value",
            *INTERVAL_COLUMNS,
            "uniform",
            "meta",
            "questions",
            "excluded",
            "excluded_share",
        ]
    ]


def cross_model_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean overall alignment with its joint bootstrap CI per tier, generator and simulator
    (rows of :func:`summarize`); empty with a single generator x simulator pair."""
    summary = summarize(scores)
    sel = summary[summary["metric"] == "alignment"]
    if sel["generator"].nunique() < 2 and sel["simulator"].nunique() < 2:
        return pd.DataFrame()
    return sel[
        [
            "tier",
            "generator",
            "simulator",
            "estimator",
            "value",
            *INTERVAL_COLUMNS,
            "excluded_share",
        ]
    ].reset_index(drop=True)


def _cross_text(cross: pd.DataFrame) -> str:
    """The cross-model table as generator rows x simulator columns of ``value [low, high]``."""
    cells = cross.assign(
        cell=[
            f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(cross["value"], cross["ci_low"], cross["ci_high"], strict=True)
        ]
    )
    return cells.pivot_table(
        index=["tier", "generator"], columns="simulator", values="cell", aggfunc="first"
    ).to_string()


def format_summary(result: ScoreResult) -> str:
    """The printed summary: headline metrics per tier x models, then the cross-model table."""
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.precision", 3):
        text = result.summary.to_string(index=False)
        if not result.cross_model.empty:
            text += (
                "\n\nalignment [95% bootstrap CI over persons, resampled jointly across "
                "questions], generator x simulator:\n" + _cross_text(result.cross_model)
            )
    notes = "".join(f"\nnote: {n}" for n in result.notes)
    return text + notes
