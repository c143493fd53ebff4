"""Distances between answer distributions, alignment scores, election metrics and bootstrap CIs.

All distances lie in ``[0, 1]`` and are 0 for identical distributions:

- :func:`wasserstein_ordinal` - OpinionQA's normalized Wasserstein distance for ordinal questions,
  ``wasserstein_distance(pos, pos, p, q) / (max(pos) - min(pos))``, computed after refusal options
  are dropped and both distributions renormalized (refusal rates are reported apart, see
  :func:`refusal_rate`). :func:`ordinal_alignment` is ``1 - WD``.
- :func:`total_variation` and :func:`jensen_shannon` (base 2) for nominal questions, where an
  order-dependent distance makes no sense.
- :func:`two_party_alignment` ``1 - |p_sim - p_true|``, :func:`winner_credit` and
  :func:`election_metrics` (vectorized over bootstrap replicates; the scorer's one home) for
  elections.

Bad input (length mismatch, negative or non-finite values, nothing left after dropping refusals)
raises :class:`MetricInputError`, a :class:`personasim.core.errors.DataError` that is also a
``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from personasim.core.errors import DataError

ArrayLike = Sequence[float] | np.ndarray

__all__ = [
    "MetricInputError",
    "bootstrap_ci",
    "bootstrap_distributions",
    "drop_refusals",
    "election_metrics",
    "group_distribution",
    "jensen_shannon",
    "normalize",
    "one_hot",
    "ordinal_alignment",
    "percentile_ci",
    "refusal_rate",
    "resample_counts",
    "boot_chunk",
    "total_variation",
    "two_party_alignment",
    "uniform",
    "wasserstein_ordinal",
    "winner_credit",
]


class MetricInputError(DataError, ValueError):
    """A metric got input it cannot score (wrong length, negative mass, empty distribution)."""


def _vector(p: ArrayLike, name: str) -> np.ndarray:
    """``p`` as a 1-D float array with finite, non-negative entries."""
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise MetricInputError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricInputError(f"{name} has non-finite values: {arr.tolist()}")
    if np.any(arr < 0):
        raise MetricInputError(
            f"{name} has negative probabilities: {arr.tolist()}",
            hint="probabilities and counts must be >= 0",
        )
    return arr


def normalize(p: ArrayLike, name: str = "p") -> np.ndarray:
    """Scale non-negative weights or counts to sum to 1; all-zero input raises."""
    arr = _vector(p, name)
    total = arr.sum()
    if total <= 0:
        raise MetricInputError(f"{name} has no mass (all zeros)", hint="nothing to compare")
    return arr / total


def _pair(p: ArrayLike, q: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Normalize two distributions over the same options, checking their lengths agree."""
    a, b = _vector(p, "p"), _vector(q, "q")
    if a.size != b.size:
        raise MetricInputError(f"length mismatch: p has {a.size} options, q has {b.size}")
    return normalize(a, "p"), normalize(b, "q")


def _mask(refusals: ArrayLike | None, n: int) -> np.ndarray:
    """A boolean refusal mask of length ``n`` (all False when ``refusals`` is None)."""
    if refusals is None:
        return np.zeros(n, dtype=bool)
    mask = np.asarray(refusals, dtype=bool)
    if mask.shape != (n,):
        raise MetricInputError(f"refusal mask has {mask.size} entries for {n} options")
    return mask


def refusal_rate(p: ArrayLike, refusals: ArrayLike) -> float:
    """Share of the mass of ``p`` on refusal options (``refusals`` is a boolean mask)."""
    arr = normalize(p)
    return float(arr[_mask(refusals, arr.size)].sum())


def drop_refusals(p: ArrayLike, refusals: ArrayLike | None) -> np.ndarray:
    """Remove refusal options and renormalize; raises when nothing substantive is left."""
    arr = _vector(p, "p")
    kept = arr[~_mask(refusals, arr.size)]
    if kept.size == 0 or kept.sum() <= 0:
        raise MetricInputError(
            "distribution is all-zero after dropping refusal options",
            hint="every answer was a refusal; report the refusal rate instead",
        )
    return kept / kept.sum()


def wasserstein_ordinal(
    p: ArrayLike, q: ArrayLike, positions: ArrayLike, refusals: ArrayLike | None = None
) -> float:
    """Normalized Wasserstein distance in [0, 1] between two answer distributions.

    ``p``, ``q`` and ``refusals`` follow the question's original option order (all options);
    ``positions`` gives the ordinal position of each *substantive* (non-refusal) option.
    """
    a, b = _vector(p, "p"), _vector(q, "q")
    if a.size != b.size:
        raise MetricInputError(f"length mismatch: p has {a.size} options, q has {b.size}")
    a, b = drop_refusals(a, refusals), drop_refusals(b, refusals)
    pos = np.asarray(positions, dtype=float)
    if pos.shape != a.shape or not np.all(np.isfinite(pos)):
        raise MetricInputError(
            f"{pos.size} positions for {a.size} substantive options",
            hint="give one finite position per non-refusal option",
        )
    span = float(pos.max() - pos.min())
    if span <= 0:
        raise MetricInputError("ordinal positions must span a non-zero range")
    wd = wasserstein_distance(pos, pos, a, b) / span
    return float(min(max(wd, 0.0), 1.0))


def ordinal_alignment(
    p: ArrayLike, q: ArrayLike, positions: ArrayLike, refusals: ArrayLike | None = None
) -> float:
    """OpinionQA alignment ``1 - WD`` (1 = identical distributions)."""
    return 1.0 - wasserstein_ordinal(p, q, positions, refusals)


def total_variation(p: ArrayLike, q: ArrayLike, refusals: ArrayLike | None = None) -> float:
    """Total variation distance ``0.5 * sum|p - q|`` in [0, 1], refusals dropped first."""
    a, b = _pair(p, q)
    a, b = drop_refusals(a, refusals), drop_refusals(b, refusals)
    return float(min(0.5 * np.abs(a - b).sum(), 1.0))


def jensen_shannon(p: ArrayLike, q: ArrayLike, refusals: ArrayLike | None = None) -> float:
    """Jensen-Shannon *distance* (square root of the divergence, base 2) in [0, 1]."""
    a, b = _pair(p, q)
    a, b = drop_refusals(a, refusals), drop_refusals(b, refusals)
    value = float(jensenshannon(a, b, base=2))
    return 0.0 if not np.isfinite(value) else min(max(value, 0.0), 1.0)


def two_party_alignment(p_sim: float, p_true: float) -> float:
    """Election alignment ``1 - |p_sim - p_true|`` for two-party shares in [0, 1]."""
    for name, v in (("p_sim", p_sim), ("p_true", p_true)):
        if not (np.isfinite(v) and 0.0 <= v <= 1.0):
            raise MetricInputError(f"{name} must be a share in [0, 1], got {v}")
    return 1.0 - abs(float(p_sim) - float(p_true))


def uniform(n_options: int, refusals: ArrayLike | None = None) -> np.ndarray:
    """The null baseline: equal mass on every substantive option, none on refusals."""
    if n_options < 1:
        raise MetricInputError(f"need at least one option, got {n_options}")
    mask = _mask(refusals, n_options)
    if mask.all():
        raise MetricInputError("every option is a refusal; no uniform baseline")
    out = (~mask).astype(float)
    return out / out.sum()


def one_hot(indices: Sequence[int] | np.ndarray, n_options: int) -> np.ndarray:
    """Rows of one-hot vectors for answer indices (e.g. sampled answers), shape (n, n_options)."""
    idx = np.asarray(indices, dtype=int)
    if idx.size and (idx.min() < 0 or idx.max() >= n_options):
        raise MetricInputError(f"answer index out of range 0..{n_options - 1}: {idx.tolist()}")
    out = np.zeros((idx.size, n_options))
    out[np.arange(idx.size), idx] = 1.0
    return out


def group_distribution(probs: np.ndarray, weights: ArrayLike | None = None) -> np.ndarray:
    """Weighted mean of persons' distributions (rows of ``probs``), renormalized to sum to 1."""
    mat = np.asarray(probs, dtype=float)
    if mat.ndim != 2 or mat.shape[0] == 0:
        raise MetricInputError(
            f"probs must be a non-empty (persons, options) matrix, got {mat.shape}"
        )
    if not np.all(np.isfinite(mat)) or np.any(mat < 0):
        raise MetricInputError("probs must be finite and non-negative")
    w = np.ones(mat.shape[0]) if weights is None else _vector(weights, "weights")
    if w.size != mat.shape[0]:
        raise MetricInputError(f"length mismatch: {w.size} weights for {mat.shape[0]} persons")
    return normalize(w @ mat, "group distribution")


COUNTS_BUDGET = 2**22
"""Counts per chunk of replicates (about 32 MB of int64): bounds the bootstrap's memory."""


def boot_chunk(n: int, most: int = 32) -> int:
    """Replicates per chunk for ``n`` persons: ``most``, fewer when ``n`` is so large that a
    chunk would pass :data:`COUNTS_BUDGET` counts (at least 1). Chunking never changes the
    draws: a seeded generator gives the same counts whatever the chunk."""
    return max(1, min(most, COUNTS_BUDGET // max(n, 1)))


def resample_counts(
    n: int, n_boot: int, rng: np.random.Generator, chunk: int | None = None
) -> Iterator[np.ndarray]:
    """Bootstrap replicates of ``n`` persons as counts: how often each person is drawn when ``n``
    are drawn with replacement (a Multinomial(n, 1/n) vector per replicate).

    Yields arrays of shape ``(c, n)`` with ``c <= chunk`` replicates (default
    :func:`boot_chunk` of ``n``), ``n_boot`` in all, so memory stays bounded whatever ``n`` and
    ``n_boot``.
    """
    chunk = chunk or boot_chunk(n)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        picks = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(picks.ravel(), minlength=size * n).reshape(size, n)


def bootstrap_distributions(
    probs: np.ndarray, weights: ArrayLike | None, n_boot: int = 200, seed: int = 0
) -> np.ndarray:
    """``n_boot`` bootstrap replicates of the weighted group distribution (resampling persons,
    seeded), shape ``(n_boot, options)``; a replicate whose weights sum to 0 is a row of NaN."""
    mat = np.asarray(probs, dtype=float)
    n = mat.shape[0]
    w = np.ones(n) if weights is None else _vector(weights, "weights")
    if n_boot < 1:
        raise MetricInputError(f"need n_boot >= 1, got {n_boot}")
    weighted = w[:, None] * mat
    sums = np.vstack(
        [counts @ weighted for counts in resample_counts(n, n_boot, np.random.default_rng(seed))]
    )
    totals = sums.sum(axis=1, keepdims=True)
    return np.where(totals > 0, sums / np.where(totals > 0, totals, 1.0), np.nan)


def percentile_ci(
    replicates: np.ndarray, statistic: Callable[[np.ndarray], float], level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over replicate distributions (rows); rows that are
    NaN or that the statistic cannot score are skipped (NaN, NaN when none is left)."""
    if not 0 < level < 1:
        raise MetricInputError(f"need 0 < level < 1, got {level}")
    values = []
    for row in replicates:
        if not np.all(np.isfinite(row)):
            continue
        try:
            values.append(statistic(row))
        except MetricInputError:
            continue
    if not values:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    probs: np.ndarray,
    weights: ArrayLike | None,
    statistic: Callable[[np.ndarray], float],
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic(group_distribution)``, resampling persons.

    :func:`bootstrap_distributions` then :func:`percentile_ci`; to score several statistics on
    the same replicates, call those two directly.
    """
    return percentile_ci(bootstrap_distributions(probs, weights, n_boot, seed), statistic, level)


def winner_credit(sim: ArrayLike, true: ArrayLike) -> np.ndarray:
    """Per state: 1 if the simulated two-party winner is the actual one, 0.5 for a simulated
    exact 50/50 tie, else 0 (element-wise over arrays of shares)."""
    s, t = np.asarray(sim, dtype=float), np.asarray(true, dtype=float)
    return np.where(s == 0.5, 0.5, ((s > 0.5) == (t > 0.5)).astype(float))


def election_metrics(shares: np.ndarray, truth: pd.DataFrame) -> dict[str, np.ndarray]:
    """Year-level election metrics of simulated Democratic two-party shares.

    ``shares``: shape ``(replicates, states)`` (one row for a point estimate), the states in the
    order of ``truth``'s rows; ``truth`` has columns ``dem_share``, ``two_party_votes`` and
    ``electoral_votes`` (:func:`personasim.truth.elections.state_truth`). Returns one value per
    replicate of: ``alignment`` (mean over states of ``1 - |p_sim - p_true|``),
    ``mean_abs_error``, ``winner_accuracy`` (:func:`winner_credit`), ``dem_electoral_votes``
    (winner-take-all, a tie split), ``national_dem_share`` (state shares weighted by actual
    two-party votes) and ``national_abs_error``.
    """
    s = np.atleast_2d(np.asarray(shares, dtype=float))
    t = truth["dem_share"].to_numpy(float)
    v = truth["two_party_votes"].to_numpy(float)
    ev = truth["electoral_votes"].to_numpy(float)
    if s.shape[1] != t.size:
        raise MetricInputError(f"{s.shape[1]} simulated states for {t.size} truth rows")
    err = np.abs(s - t)
    national = (s @ v) / v.sum()
    return {
        "alignment": 1.0 - err.mean(axis=1),
        "mean_abs_error": err.mean(axis=1),
        "winner_accuracy": winner_credit(s, t).mean(axis=1),
        "dem_electoral_votes": np.where(s == 0.5, 0.5, (s > 0.5).astype(float)) @ ev,
        "national_dem_share": national,
        "national_abs_error": np.abs(national - (t @ v) / v.sum()),
    }
