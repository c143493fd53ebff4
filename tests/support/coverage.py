"""Coverage scenarios on the known-answer stand-in, shared by the coverage test and benchmark.

Each scenario draws one simulated dataset per call from :class:`KnownAnswerSimulator`, computes
the interval today's scorer gives ("before": percentile bootstrap of the plug-in distance, as
``personasim.scoring.metrics.bootstrap_ci`` and the scorer's summary do) and the new one ("after":
:func:`personasim.scoring.intervals.estimate` /
:func:`~personasim.scoring.intervals.estimate_summary`), and says
for each whether it covers the known true distance, and how wide it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from personasim.scoring import intervals as I
from personasim.scoring import metrics as M
from tests.support.known_answer import KnownAnswerSimulator, single

Outcome = dict[str, tuple[float, float, bool, float]]
"""Per label: (before covers, before width, after covers, after width); the "before" pair is
NaN when it was skipped."""
SKIPPED = (float("nan"), float("nan"))
"""The "before" interval of a dataset scored without it."""
ORDINAL_Q = np.array([0.10, 0.20, 0.30, 0.25, 0.15])
POSITIONS = np.arange(5.0)
NOMINAL_Q = np.array([0.30, 0.25, 0.20, 0.15, 0.10])


def _percentile(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Today's percentile interval of replicate values."""
    a = (1 - level) / 2
    low, high = np.quantile(values[np.isfinite(values)], [a, 1 - a])
    return float(low), float(high)


def _outcome(truth: float, before: tuple[float, float], after: I.Estimate) -> tuple:
    """Coverage and width of both intervals (NaN for a skipped "before")."""
    return (
        float(before[0] <= truth <= before[1]) if np.isfinite(before[0]) else float("nan"),
        before[1] - before[0],
        after.ci_low <= truth <= after.ci_high,
        after.ci_high - after.ci_low,
    )


@dataclass(frozen=True)
class QuestionCase:
    """One question of ``n`` persons scored with ``metric`` against ``q``."""

    sim: KnownAnswerSimulator
    """Where persons come from (its population distribution is the estimand)."""
    q: np.ndarray
    """The truth."""
    metric: str
    """Registry distance."""
    n: int = 100
    """Persons per dataset."""

    def __call__(
        self, rng: np.random.Generator, seed: int, n_boot: int, before: bool = True
    ) -> Outcome:
        """Draw a dataset, score it both ways (only the new way unless ``before``)."""
        pos = POSITIONS if self.metric == "wd" else None
        rows = METRIC_ROWS[self.metric]
        truth = float(rows(self.sim.population(0)[None, :], self.q, pos)[0])
        keys, answers, w = self.sim.draw(self.n, rng)
        old = (
            _percentile(rows(M.bootstrap_distributions(answers[0], w, n_boot, seed), self.q, pos))
            if before
            else SKIPPED
        )
        reps = I.replicate_means(keys, answers[0], w, n_boot, seed)
        after = I.estimate(
            self.metric, I.weighted_mean(answers[0], w), reps, self.q, self.n, pos, weights=w
        )
        return {"question": _outcome(truth, old, after)}


METRIC_ROWS: dict[str, Callable] = {name: m.rows for name, m in I.METRICS.items()}


@dataclass(frozen=True)
class ElectionCase:
    """Independent states of ``n`` voters each; the two-party share per state and its year mean."""

    shares: tuple[float, ...]
    """Population Democratic two-party share per state."""
    results: tuple[float, ...]
    """Actual share per state (the truth)."""
    n: int = 40
    """Voters per state."""

    def __call__(
        self, rng: np.random.Generator, seed: int, n_boot: int, before: bool = True
    ) -> Outcome:
        """Per state (pooled over states) and year alignment coverage (the old interval only
        when ``before``)."""
        parts, olds, out = [], [], {}
        for s, (share, result) in enumerate(zip(self.shares, self.results, strict=True)):
            q = np.array([result, 1 - result])
            keys, answers, w = single(np.array([share, 1 - share])).draw(self.n, rng, f"s{s}-")
            old = (
                I.abs_diff_rows(M.bootstrap_distributions(answers[0], w, n_boot, seed + s), q)
                if before
                else np.full(n_boot, np.nan)
            )
            reps = I.replicate_means(keys, answers[0], w, n_boot, seed * 100 + s)
            p_hat = I.weighted_mean(answers[0], w)
            est = I.estimate("abs_diff", p_hat, reps, q, self.n, weights=w)
            label = "state near result" if abs(share - result) <= 0.007 else "state off result"
            old_ci = _percentile(old) if before else SKIPPED
            out.setdefault(label, []).append(_outcome(abs(share - result), old_ci, est))
            parts.append(I.SummaryPart("abs_diff", p_hat, reps, q, n=self.n, weights=w))
            olds.append(old)
        truth = float(np.mean(np.abs(np.subtract(self.shares, self.results))))
        year = I.estimate_summary(parts)
        old_year = _percentile(np.mean(olds, axis=0)) if before else SKIPPED
        out["year"] = [_outcome(truth, old_year, year)]
        return {label: tuple(np.mean(v, axis=0)) for label, v in out.items()}


@dataclass(frozen=True)
class SummaryCase:
    """Several questions answered by the same persons (correlated through latent classes)."""

    sim: KnownAnswerSimulator
    """Its ``classes`` give one matrix per question."""
    qs: tuple[np.ndarray, ...]
    """Truth per question."""
    metric: str = "wd"
    """Distance of every question."""
    n: int = 100
    """Persons."""

    def __call__(
        self, rng: np.random.Generator, seed: int, n_boot: int, before: bool = True
    ) -> Outcome:
        """Coverage of the mean distance over questions (the old interval only when
        ``before``)."""
        pos = POSITIONS if self.metric == "wd" else None
        rows = METRIC_ROWS[self.metric]
        truth = float(
            np.mean(
                [rows(self.sim.population(j)[None, :], q, pos)[0] for j, q in enumerate(self.qs)]
            )
        )
        keys, answers, w = self.sim.draw(self.n, rng)
        reps = I.joint_replicate_means(
            [keys] * len(answers), answers, [w] * len(answers), n_boot, seed
        )
        old = (
            _percentile(
                np.mean([rows(r, q, pos) for r, q in zip(reps, self.qs, strict=True)], axis=0)
            )
            if before
            else SKIPPED
        )
        parts = [
            I.SummaryPart(self.metric, I.weighted_mean(a, w), r, q, pos, self.n, w)
            for a, r, q in zip(answers, reps, self.qs, strict=True)
        ]
        return {"summary": _outcome(truth, old, I.estimate_summary(parts))}


def _ordinal(shift: np.ndarray) -> np.ndarray:
    """``ORDINAL_Q`` plus ``shift`` (which sums to 0)."""
    return ORDINAL_Q + np.asarray(shift, dtype=float)


def _classes(q: np.ndarray, tilt: float, shift: np.ndarray) -> np.ndarray:
    """Two latent classes around ``q + shift``: one tilted towards low options, one high, so
    the mixture (equal shares) is exactly ``q + shift``."""
    lean = np.linspace(-tilt, tilt, q.size)
    return np.vstack([q + shift + lean, q + shift - lean])


NEAR = np.array([0.045, 0.0, 0.0, 0.0, -0.045])
"""About 2 standard errors of WD at n = 100 (WD = 0.045)."""
FAR = np.array([0.12, 0.05, -0.05, -0.05, -0.07])
ZERO = np.zeros(5)
SUMMARY_SHIFTS = (ZERO, ZERO, NEAR, FAR, ZERO)

SCENARIOS: dict[str, Callable[[np.random.Generator, int, int, bool], Outcome]] = {
    "far (WD)": QuestionCase(single(_ordinal(FAR)), ORDINAL_Q, "wd"),
    "near ~2 SE (WD)": QuestionCase(single(_ordinal(NEAR)), ORDINAL_Q, "wd"),
    "at truth (WD)": QuestionCase(single(ORDINAL_Q), ORDINAL_Q, "wd"),
    "at truth (WD, logprobs)": QuestionCase(
        single(ORDINAL_Q, estimator="logprobs"), ORDINAL_Q, "wd"
    ),
    "kink (TV, 3 of 5 equal)": QuestionCase(
        single(NOMINAL_Q + np.array([0.0, 0.0, 0.06, -0.06, 0.0])), NOMINAL_Q, "tv"
    ),
    "at truth (JS)": QuestionCase(single(NOMINAL_Q), NOMINAL_Q, "js"),
    "near (JS)": QuestionCase(
        single(NOMINAL_Q + np.array([0.06, 0.0, -0.06, 0.0, 0.0])), NOMINAL_Q, "js"
    ),
    "deff 1.4 near (WD)": QuestionCase(single(_ordinal(NEAR), deff=1.4), ORDINAL_Q, "wd"),
    "deff 3 near (WD)": QuestionCase(single(_ordinal(NEAR), deff=3.0), ORDINAL_Q, "wd"),
    "deff 3 at truth (WD)": QuestionCase(single(ORDINAL_Q, deff=3.0), ORDINAL_Q, "wd"),
    "elections 4x40, half at result": ElectionCase(
        (0.48, 0.55, 0.40, 0.62), (0.48, 0.55, 0.45, 0.55)
    ),
    "elections 4x40, 2 within 0.007": ElectionCase(
        (0.497, 0.515, 0.40, 0.62), (0.49, 0.52, 0.45, 0.55)
    ),
    "summary 5 q, mixed": SummaryCase(
        KnownAnswerSimulator(
            [_classes(ORDINAL_Q, 0.06, s) for s in SUMMARY_SHIFTS], np.array([0.5, 0.5])
        ),
        (ORDINAL_Q,) * 5,
    ),
    "summary 5 q, all at truth": SummaryCase(
        KnownAnswerSimulator([_classes(ORDINAL_Q, 0.06, ZERO)] * 5, np.array([0.5, 0.5])),
        (ORDINAL_Q,) * 5,
    ),
    "summary 5 q, deff 3": SummaryCase(
        KnownAnswerSimulator(
            [_classes(ORDINAL_Q, 0.06, s) for s in SUMMARY_SHIFTS], np.array([0.5, 0.5]), deff=3.0
        ),
        (ORDINAL_Q,) * 5,
    ),
}
"""Scenario name -> a callable ``(rng, seed, n_boot, before) -> Outcome`` for one simulated
dataset."""


def coverage(
    name: str, datasets: int, n_boot: int, seed: int = 0, before: bool = True
) -> dict[str, tuple[float, float, float, float]]:
    """Per label of scenario ``name``: (before coverage, before mean width, after coverage,
    after mean width) over ``datasets`` simulated datasets (fixed seeds); the "before" pair is
    NaN unless ``before`` (the datasets are the same either way)."""
    case, rng = SCENARIOS[name], np.random.default_rng(seed)
    found: dict[str, list] = {}
    for k in range(datasets):
        for label, result in case(rng, seed * 100_000 + k, n_boot, before).items():
            found.setdefault(label, []).append(result)
    return {label: tuple(float(x) for x in np.mean(v, axis=0)) for label, v in found.items()}
