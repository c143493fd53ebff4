"""Intervals for distances to a known truth that keep their coverage, even at the truth.

The scorer compares a simulated answer distribution ``p_hat`` (a weighted mean of persons'
probability vectors) with a fixed true distribution ``q`` through a distance ``T(p_hat - q)``.
``T`` is 0 at equality and the plug-in value is biased away from 0, so a percentile bootstrap of
``T`` cannot cover when the simulation equals the truth. This module holds:

- vectorized distances of many rows against ``q``: :func:`wd_rows` (OpinionQA's normalized
  1-Wasserstein over ordinal positions), :func:`tv_rows`, :func:`js_rows` (Jensen-Shannon
  distance, base 2), :func:`signed_diff_rows` and :func:`abs_diff_rows` (two-party share);
- order-free resampling: :func:`canonical_order` and :func:`bootstrap_counts` give the same
  replicates for the same persons whatever their row order, part layout or chunk size;
  :func:`replicate_means` and :func:`joint_replicate_means` turn them into weighted replicate
  distributions (one question, or several questions sharing each person's count);
- the metric registry :data:`METRICS` and :func:`estimate` / :func:`estimate_summary`: one call
  gives the plug-in value, a bias-corrected (median-unbiased) estimate, the interval, the p-value
  of "simulation equals truth" and the smallest distance the sample could detect.

The interval is a test inversion with recentred bootstrap replicates (see ``docs/surveys.md``,
"Intervals that cover the truth"); a one-dimensional difference (two options, a state's
two-party share) inverts the same kind of test in closed form (a folded t). Every distance and
end lies in ``[0, 1]``. When the truth is itself a sample (respondent microdata with Kish's
``n_eff``), :func:`truth_replicates` draws it again per replicate and :func:`estimate` /
:func:`estimate_summary` subtract that noise from the simulated one (``truth_noise``), so the
interval holds both.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from personasim.core.errors import DataError

__all__ = [
    "METRICS",
    "Estimate",
    "IntervalInputError",
    "Layout",
    "Metric",
    "SummaryPart",
    "abs_diff_rows",
    "bootstrap_counts",
    "canonical_order",
    "chunk_size",
    "degrees_of_freedom",
    "drop_refusal_columns",
    "estimate",
    "estimate_summary",
    "invert",
    "joint_replicate_means",
    "js_rows",
    "noise_scale",
    "replicate_means",
    "signed_diff_rows",
    "truth_replicates",
    "tv_rows",
    "variance_inflation",
    "wd_rows",
    "weighted_mean",
]

COUNTS_BUDGET = 2**22
"""Bootstrap counts held at once (persons x replicates per chunk): bounds memory."""
GRID = 32
"""Hypothesised distances tried per interval (endpoints are interpolated between them)."""


class IntervalInputError(DataError, ValueError):
    """Input the interval code cannot use (shapes that disagree, no replicates, bad level)."""


# --------------------------------------------------------------------------- distances


def _rows(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p`` as a 2-D float matrix with as many columns as ``q`` has entries."""
    mat, target = np.atleast_2d(np.asarray(p, dtype=float)), np.asarray(q, dtype=float)
    if target.ndim != 1 or mat.shape[1] != target.size:
        raise IntervalInputError(f"rows of {mat.shape[1]} options against a truth of {target.size}")
    return mat, target


def wd_rows(p: np.ndarray, q: np.ndarray, positions: Sequence[float] | np.ndarray) -> np.ndarray:
    """Normalized 1-Wasserstein distance of each row of ``p`` to ``q`` over ordinal positions.

    ``sum_k |F_p(k) - F_q(k)| * gap_k / span`` with the options sorted by position (any spacing),
    equal to ``scipy.stats.wasserstein_distance(pos, pos, row, q) / (max(pos) - min(pos))``. Rows
    need not be distributions: the formula is an L1 norm of a linear map of ``row - q``.
    """
    mat, target = _rows(p, q)
    pos = np.asarray(positions, dtype=float)
    if pos.shape != target.shape or pos.size < 2 or np.ptp(pos) <= 0:
        raise IntervalInputError(f"need {target.size} positions spanning a non-zero range")
    order = np.argsort(pos, kind="stable")
    gaps = np.diff(pos[order]) / np.ptp(pos)
    cum = np.cumsum((mat - target)[:, order], axis=1)[:, :-1]
    return np.abs(cum) @ gaps


def tv_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total variation ``0.5 * sum |row - q|`` of each row of ``p``."""
    mat, target = _rows(p, q)
    return 0.5 * np.abs(mat - target).sum(axis=1)


def _plogp_ratio(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``a * log2(a / m)`` with ``0 log 0 = 0``."""
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, a * np.log2(safe / np.where(m > 0, m, 1.0)), 0.0)


def js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (square root of the divergence, base 2) of each row to ``q``.

    Rows are clipped at 0 and renormalized first (as ``scipy.spatial.distance.jensenshannon``
    renormalizes), so shifted bootstrap rows that step outside the simplex stay scoreable.
    """
    mat, target = _rows(p, q)
    mat = np.clip(mat, 0.0, None)
    mat = mat / np.where(mat.sum(axis=1, keepdims=True) > 0, mat.sum(axis=1, keepdims=True), 1)
    target = target / target.sum()
    mid = 0.5 * (mat + target)
    div = 0.5 * (_plogp_ratio(mat, mid).sum(axis=1) + _plogp_ratio(target, mid).sum(axis=1))
    return np.sqrt(np.clip(div, 0.0, 1.0))


def signed_diff_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Signed difference of the first option's share (e.g. Democratic two-party share)."""
    mat, target = _rows(p, q)
    return mat[:, 0] - target[0]


def abs_diff_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``|p_0 - q_0|``: the two-party |delta share| (equals TV for two options)."""
    return np.abs(signed_diff_rows(p, q))


def drop_refusal_columns(p: np.ndarray, refusals: np.ndarray | None) -> np.ndarray:
    """Rows of ``p`` without the refusal columns, each renormalized (NaN where nothing is left)."""
    mat = np.atleast_2d(np.asarray(p, dtype=float))
    if refusals is not None:
        mat = mat[:, ~np.asarray(refusals, dtype=bool)]
    total = mat.sum(axis=1, keepdims=True)
    return np.where(total > 0, mat / np.where(total > 0, total, 1.0), np.nan)


# --------------------------------------------------------------------------- resampling


def _key_array(keys: Sequence[object] | np.ndarray) -> np.ndarray:
    """Person keys as a sortable array: integers (e.g. 64-bit hashes of ids) as they are,
    anything else as text."""
    arr = np.asarray(keys).ravel()
    return arr if arr.dtype.kind in "iu" else arr.astype(str)


def canonical_order(keys: Sequence[object] | np.ndarray) -> np.ndarray:
    """A permutation putting persons in an order that depends only on their keys.

    Sorted by a stable 64-bit hash of each key (``pandas.util.hash_array``, vectorized; text
    keys hashed as text, integer keys as integers), ties by the key, so the order is the same
    whatever order the rows arrive in and whatever part they came from.
    """
    arr = _key_array(keys)
    hashes = pd.util.hash_array(arr.astype(object) if arr.dtype.kind == "U" else arr)
    return np.lexsort((arr, hashes)).astype(np.int64)


def chunk_size(n: int, most: int = 64) -> int:
    """Replicates per chunk for ``n`` persons: at most ``most`` and at most
    :data:`COUNTS_BUDGET` counts per chunk (at least 1)."""
    return max(1, min(most, COUNTS_BUDGET // max(n, 1)))


def bootstrap_counts(
    n: int, n_boot: int, seed: int, chunk: int | None = None
) -> Iterator[np.ndarray]:
    """Multinomial bootstrap counts for ``n`` persons in canonical order, ``(c, n)`` per chunk.

    One seeded generator draws ``n`` indices per replicate, replicate after replicate, so the
    counts of replicate ``b`` do not depend on ``chunk`` (only memory does). Counts are floats,
    ready for the weighted sums; the indices are drawn as 32-bit integers (the same values the
    64-bit draw gives below ``2**32`` persons, in two thirds of the time).
    """
    if n < 1 or n_boot < 1:
        raise IntervalInputError(f"need persons and replicates, got n={n}, n_boot={n_boot}")
    rng, chunk = np.random.default_rng(seed), chunk or chunk_size(n)
    kind = np.int32 if n < 2**31 else np.int64
    for start in range(0, n_boot, chunk):
        picks = rng.integers(0, n, size=(min(chunk, n_boot - start), n), dtype=kind)
        counts = np.empty(picks.shape)
        for row, drawn in zip(counts, picks, strict=True):
            row[:] = np.bincount(drawn, minlength=n)
        yield counts


def _weighted(values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(w * y, w)`` for a persons x options matrix."""
    y = np.atleast_2d(np.asarray(values, dtype=float))
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (len(y),) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise IntervalInputError(f"need {len(y)} finite non-negative weights, got {w.shape}")
    if not np.all(np.isfinite(y)):
        raise IntervalInputError("person distributions must be finite")
    return w[:, None] * y, w


REPLICATES_KEPT = 8
"""Results of :func:`joint_replicate_means` kept for repeated calls (a one-question survey's
cell, summary and by-group interval draw the same persons with the same seed)."""
_KEPT: OrderedDict[bytes, list[np.ndarray]] = OrderedDict()
_KEPT_LOCK = threading.Lock()


def _digest(
    arrays: Sequence[np.ndarray], values: Sequence[np.ndarray], weights: Sequence, *rest: object
) -> bytes:
    """A content digest of the inputs of :func:`joint_replicate_means`."""
    h = hashlib.blake2b(repr(rest).encode(), digest_size=20)
    for part in (*arrays, *values, *weights):
        arr = np.ascontiguousarray(np.asarray(part if part is not None else []))
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    return h.digest()


def joint_replicate_means(
    keys: Sequence[Sequence[object] | np.ndarray],
    values: Sequence[np.ndarray],
    weights: Sequence[np.ndarray | None],
    n_boot: int,
    seed: int = 0,
    chunk: int | None = None,
) -> list[np.ndarray]:
    """Bootstrap replicates of several weighted means whose persons are drawn jointly.

    Block ``j`` (a question) has person keys ``keys[j]``, a persons x options matrix
    ``values[j]`` and weights ``weights[j]``. Each replicate gives every person of the union one
    count and every block uses that count for that person's rows, so blocks answered by the same
    persons move together. Returns one ``(n_boot, options_j)`` array per block, the weighted mean
    per replicate (NaN rows when a replicate leaves a block without weight). The last
    :data:`REPLICATES_KEPT` results are kept by a digest of the inputs, so a repeated call
    returns copies without drawing again.
    """
    if not len(keys) == len(values) == len(weights):
        raise IntervalInputError("keys, values and weights need one entry per block")
    arrays = [_key_array(ks) for ks in keys]
    digest = _digest(arrays, values, weights, n_boot, seed, chunk)
    with _KEPT_LOCK:
        found = _KEPT.get(digest)
    if found is None:
        found = _draw_means(arrays, values, weights, n_boot, seed, chunk)
        with _KEPT_LOCK:
            _KEPT[digest] = found
            while len(_KEPT) > REPLICATES_KEPT:
                _KEPT.popitem(last=False)
    return [r.copy() for r in found]


def _draw_means(
    arrays: list[np.ndarray],
    values: Sequence[np.ndarray],
    weights: Sequence[np.ndarray | None],
    n_boot: int,
    seed: int,
    chunk: int | None,
) -> list[np.ndarray]:
    """:func:`joint_replicate_means` without the memory of earlier results."""
    union = np.unique(np.concatenate(arrays)) if arrays else np.array([])
    rank = np.empty(len(union), dtype=np.int64)  # canonical slot of each key of the union
    rank[canonical_order(union)] = np.arange(len(union))
    cols = [rank[np.searchsorted(union, ks)] for ks in arrays]
    blocks = [_weighted(v, w) for v, w in zip(values, weights, strict=True)]
    if any(len(c) != len(b[1]) for c, b in zip(cols, blocks, strict=True)):
        raise IntervalInputError("each block needs one key per row of its values")
    # rows in canonical order too, so that even the floating-point sums are order-free
    sorts = [np.argsort(c, kind="stable") for c in cols]
    cols = [c[o] for c, o in zip(cols, sorts, strict=True)]
    # (options + 1, persons) rows: w * y, then w; contiguous, so each product below is a few
    # dot products of contiguous rows (a persons x options matrix was 4 times slower)
    both = [
        np.ascontiguousarray(np.column_stack([wy[o], w[o]]).T)
        for (wy, w), o in zip(blocks, sorts, strict=True)
    ]
    whole = [len(c) == len(union) for c in cols]  # a block of every person: no column gather
    sums = [[] for _ in blocks]
    for counts in bootstrap_counts(len(union), n_boot, seed, chunk):
        for j, col in enumerate(cols):
            mine = counts if whole[j] else counts[:, col]
            # one product per replicate: a matrix product's rounding depends on its shape, and
            # the replicates must not depend on the chunk
            sums[j].append(np.vstack([both[j] @ row for row in mine]))
    out = []
    for parts in sums:
        both = np.vstack(parts)
        total = both[:, -1:]
        out.append(np.where(total > 0, both[:, :-1] / np.where(total > 0, total, 1.0), np.nan))
    return out


def replicate_means(
    keys: Sequence[object] | np.ndarray,
    values: np.ndarray,
    weights: np.ndarray | None,
    n_boot: int,
    seed: int = 0,
    chunk: int | None = None,
) -> np.ndarray:
    """``(n_boot, options)`` bootstrap replicates of one weighted mean, order-free."""
    return joint_replicate_means([keys], [values], [weights], n_boot, seed, chunk)[0]


def weighted_mean(
    values: np.ndarray, weights: np.ndarray | None, keys: Sequence[object] | None = None
) -> np.ndarray:
    """The weighted mean row ``sum w y / sum w`` (the simulated distribution); given the persons'
    ``keys``, summed in canonical order so the result is the same, bit for bit, in any row
    order."""
    wy, w = _weighted(values, weights)
    if keys is not None:
        order = canonical_order(keys)
        wy, w = wy[order], w[order]
    if w.sum() <= 0:
        raise IntervalInputError("weights sum to 0: no simulated distribution")
    return wy.sum(axis=0) / w.sum()


# --------------------------------------------------------------------------- registry


Distance = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]


@dataclass(frozen=True)
class Metric:
    """One distance of the registry."""

    name: str
    """Registry name (``wd``, ``tv``, ``js``, ``abs_diff``)."""
    rows: Distance
    """``rows(P, q, positions) -> (M,)``: the distance of each row of ``P`` to ``q``."""
    folds_to_signed: bool
    """True when, for two options, the distance is ``|p_0 - q_0|`` (a folded signed difference)."""


METRICS: dict[str, Metric] = {
    "wd": Metric("wd", lambda p, q, pos: wd_rows(p, q, pos), True),
    "tv": Metric("tv", lambda p, q, pos: tv_rows(p, q), True),
    "js": Metric("js", lambda p, q, pos: js_rows(p, q), False),
    "abs_diff": Metric("abs_diff", lambda p, q, pos: abs_diff_rows(p, q), True),
}
"""Distances the scorer reports; alignment is ``1 - distance`` (interval ``1 - [high, low]``)."""


@dataclass(frozen=True)
class Estimate:
    """A distance to the truth with everything a report needs to read it."""

    value: float
    """Plug-in distance of the simulated distribution (kept for comparison with the papers)."""
    corrected: float
    """Median-unbiased estimate: the distance at which the observed value is the median of the
    recentred replicates (0 when even equality puts it below the median)."""
    ci_low: float
    """Lower end of the interval for the population distance (0 when equality is not rejected)."""
    ci_high: float
    """Upper end of the interval."""
    p_equal: float
    """p-value of H0 "simulation equals truth" (small: the sample can tell them apart)."""
    detectable: float
    """Smallest distance this sample could tell from 0: the 1 - alpha quantile of the distance
    under H0 at this n and these weights."""
    n_boot: int
    """Replicates used (after dropping any that left no weight)."""

    def alignment(self) -> tuple[float, float, float, float]:
        """``(value, corrected, ci_low, ci_high)`` of alignment ``1 - distance``."""
        return 1 - self.value, 1 - self.corrected, 1 - self.ci_high, 1 - self.ci_low


# --------------------------------------------------------------------------- intervals


def _check(level: float, reps: np.ndarray) -> np.ndarray:
    """Replicate rows without NaN; raises for a bad level or when none is left."""
    if not 0 < level < 1:
        raise IntervalInputError(f"need 0 < level < 1, got {level}")
    keep = reps[np.all(np.isfinite(reps), axis=1)]
    if len(keep) < 10:
        raise IntervalInputError(
            f"only {len(keep)} usable bootstrap replicates", hint="raise n_boot"
        )
    return keep


def _first_zero(c: np.ndarray, g: np.ndarray) -> float:
    """First ``c`` where ``g`` (decreasing-ish) reaches 0, interpolated between grid points."""
    hit = np.nonzero(g <= 0)[0]
    if hit.size == 0:
        return float(c[-1])
    i = int(hit[0])
    if i == 0:
        return float(c[0])
    t = g[i - 1] / (g[i - 1] - g[i])
    return float(c[i - 1] + t * (c[i] - c[i - 1]))


def _last_zero(c: np.ndarray, g: np.ndarray) -> float:
    """Last ``c`` where ``g`` (decreasing-ish) is still >= 0, interpolated beyond it."""
    hit = np.nonzero(g >= 0)[0]
    if hit.size == 0:
        return float(c[0])
    i = int(hit[-1])
    if i == len(c) - 1:
        return float(c[-1])
    t = g[i] / (g[i] - g[i + 1])
    return float(c[i] + t * (c[i + 1] - c[i]))


@dataclass(frozen=True)
class Layout:
    """Where each part (question, state) sits in a stacked difference vector, and its metric.

    Every registry distance is, at least near 0, a norm of the differences in some coordinates:
    WD a weighted L1 norm of the cumulative differences over sorted positions, TV (and JS near
    0) of the differences themselves. ``coords`` and ``from_coords`` move between the two.
    """

    metrics: tuple[str, ...]
    """Registry metric of each part."""
    edges: tuple[int, ...]
    """Part ``j`` holds columns ``edges[j]:edges[j + 1]``."""
    positions: tuple[np.ndarray | None, ...]
    """Ordinal positions of each part (``wd`` only)."""

    def spans(self) -> Iterator[tuple[str, int, int, np.ndarray | None]]:
        """``(metric, start, stop, positions)`` per part."""
        yield from zip(self.metrics, self.edges[:-1], self.edges[1:], self.positions, strict=True)

    def coords(self, delta: np.ndarray) -> list[np.ndarray]:
        """Per part, the coordinates (rows of ``delta``) in which its metric is an L1 norm."""
        out = []
        for metric, a, b, pos in self.spans():
            block = delta[:, a:b]
            if metric == "wd":
                block = np.cumsum(block[:, np.argsort(pos, kind="stable")], axis=1)[:, :-1]
            out.append(block)
        return out

    def from_coords(self, blocks: list[np.ndarray]) -> np.ndarray:
        """Differences (rows) back from per-part coordinates; a TV/JS part is rebalanced so its
        positive and negative parts carry the same mass (a difference of distributions)."""
        out = []
        for (metric, _, _, pos), block in zip(self.spans(), blocks, strict=True):
            if metric == "wd":
                zero = np.zeros((len(block), 1))
                steps = np.diff(np.hstack([zero, block, zero]), axis=1)
                block = np.empty_like(steps)
                block[:, np.argsort(pos, kind="stable")] = steps
            else:
                block = _balanced(block)
            out.append(block)
        return np.hstack(out)


def _balanced(block: np.ndarray) -> np.ndarray:
    """Rows scaled so positive and negative entries each carry their mean mass (0 when a side is
    empty)."""
    pos = np.clip(block, 0, None).sum(axis=1, keepdims=True)
    neg = -np.clip(block, None, 0).sum(axis=1, keepdims=True)
    mid = 0.5 * (pos + neg)
    ok = (pos > 0) & (neg > 0)
    scale_pos = np.where(ok, mid / np.where(pos > 0, pos, 1), 0.0)
    scale_neg = np.where(ok, mid / np.where(neg > 0, neg, 1), 0.0)
    return np.where(block > 0, block * scale_pos, block * scale_neg)


def _paths(layout: Layout, delta: np.ndarray, noise: np.ndarray) -> dict[str, Callable]:
    """Families of hypotheses ``delta0``, each a function of a grid ``g`` in [0, 1] (0 at
    equality, 1 at the observed difference; above 1 beyond it) returning ``(G, D)`` rows.

    ``scaled``: ``g * delta``. ``sparse``: the observed coordinates soft-thresholded in z-units
    (small ones become exactly 0: the most plug-in bias, least favourable for a lower end),
    scaled beyond the observed difference.
    """
    spreads = _spreads(layout, noise)
    z = [c[0] / s for c, s in zip(layout.coords(delta[None, :]), spreads, strict=True)]
    top = max(float(np.abs(np.concatenate(z)).max()), 1e-12)

    def sparse(g: np.ndarray) -> np.ndarray:
        lam = top * np.clip(1 - g, 0, 1)[:, None]
        grow = np.maximum(g, 1.0)[:, None]
        return layout.from_coords(
            [
                s * np.sign(zz) * np.maximum(np.abs(zz) - lam, 0) * grow
                for zz, s in zip(z, spreads, strict=True)
            ]
        )

    return {"scaled": lambda g: g[:, None] * delta[None, :], "sparse": sparse}


def _spreads(layout: Layout, noise: np.ndarray) -> list[np.ndarray]:
    """Standard deviation of each coordinate over the replicates (a floor avoids 0)."""
    return [np.maximum(c.std(axis=0), 1e-12) for c in layout.coords(noise)]


def _scan(
    stat: Callable[[np.ndarray], np.ndarray],
    path: Callable[[np.ndarray], np.ndarray],
    noise: Noise,
    observed: float,
    top: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Hypothesised distances along ``path`` (until they pass ``top``) and, for each, the share
    of recentred replicate distances at or below ``observed`` (:meth:`Noise.distances`)."""
    unit = float(stat(path(np.ones(1)))[0])
    g = np.linspace(0.0, max(1.0, top / unit) if unit > 0 else 1.0, GRID)
    hyps = path(g)
    dist = stat(hyps)
    below = np.array([np.mean(noise.distances(stat, h) <= observed) for h in hyps])
    return dist, below


@dataclass(frozen=True)
class Noise:
    """The replicates' noise about a hypothesis, in two scalings.

    ``tails`` is scaled for the tails of the test (:func:`noise_scale`: the HC2 variance factor
    and ``t(df)/z``); ``centre`` has the variance factor only (:func:`variance_inflation`). The
    Student factor says how far a tail quantile reaches when the variance is itself estimated;
    the centre of the distances under a hypothesis (its plug-in bias) is an expectation, which
    the corrected variance estimates as it is. So the distances come from ``tails`` and are
    shifted so that their median is the median under ``centre``.
    """

    tails: np.ndarray
    """``(B, D)`` noise for the spread of the distances."""
    centre: np.ndarray | None = None
    """``(B, D)`` noise for their median (None: ``tails``, no shift)."""

    def distances(self, stat: Callable[[np.ndarray], np.ndarray], delta0: np.ndarray) -> np.ndarray:
        """Replicate distances ``T(delta0 + noise)``, centred as the class docstring says."""
        spread = stat(delta0[None, :] + self.tails)
        if self.centre is None:
            return spread
        centre = stat(delta0[None, :] + self.centre)
        return spread - np.median(spread) + np.median(centre)


def invert(
    stat: Callable[[np.ndarray], np.ndarray],
    layout: Layout,
    delta: np.ndarray,
    noise: np.ndarray,
    level: float,
    centre: np.ndarray | None = None,
) -> tuple[float, float, float, float, float]:
    """Test inversion for ``T(delta)`` with recentred replicates.

    ``stat`` maps rows of differences ``(M, D)`` to distances; ``delta`` is the observed
    difference ``p_hat - q`` and ``noise`` the replicates' ``p* - p_hat``. A hypothesis
    ``delta0`` at distance ``d0 = T(delta0)`` is kept when the observed distance is in neither
    tail of ``T(delta0 + noise)``: a lower tail of ``pi`` and an upper tail of ``alpha - pi``
    (:func:`_lower_end`: 0 up to the detectable distance, ``alpha / 2`` beyond). The nuisance,
    how a distance spreads over the options, is unknown and matters for the lower end (zero
    coordinates add plug-in bias): it is the smallest ``d0`` kept by the ``scaled`` or the
    ``sparse`` family of :func:`_paths`. The upper end, beyond the detectable distance where
    that bias is small beside ``d0``, is the largest ``d0`` the ``scaled`` family keeps.
    ``corrected`` is the ``d0`` of the ``scaled`` family at which the observed value is the
    replicates' median.
    ``centre``: the noise without the Student factor, for the median of the distances under each
    hypothesis (:class:`Noise`; None: ``noise``). The equality test (``p_equal``,
    ``detectable``) uses ``noise`` as it is.
    Returns ``(corrected, low, high, p_equal, detectable)``.
    """
    alpha, observed = 1 - level, float(stat(delta[None, :])[0])
    null = stat(noise)
    p_equal = float((1 + np.count_nonzero(null >= observed)) / (len(null) + 1))
    detectable = float(np.quantile(null, 1 - alpha))
    if observed <= 0:
        return 0.0, 0.0, detectable, p_equal, detectable
    top = observed + 4.0 * float(np.quantile(null, 0.999))
    scans = {
        name: _scan(stat, path, Noise(noise, centre), observed, top)
        for name, path in _paths(layout, delta, noise).items()
    }

    low = min(
        _lower_end(d, b, alpha, detectable)
        for name, (d, b) in scans.items()
        if name in ("scaled", "sparse")
    )
    high = _upper_end(*scans["scaled"], alpha, detectable, low)
    corrected = _first_zero(scans["scaled"][0], scans["scaled"][1] - 0.5)
    return corrected, low, high, p_equal, detectable


def _lower_end(d0: np.ndarray, below: np.ndarray, alpha: float, detectable: float) -> float:
    """Smallest kept ``d0`` given the share ``below`` (decreasing in ``d0``) of hypothesised
    distances at or below the observed one. Up to the detectable distance the test is one-sided
    (only a large observed distance speaks against a distance the sample cannot tell from 0:
    kept while ``below <= 1 - alpha``), beyond it equal-tailed (``below <= 1 - alpha / 2``)."""
    low = _first_zero(d0, below - (1 - alpha))
    if low <= detectable:
        return low
    return max(detectable, _first_zero(d0, below - (1 - alpha / 2)))


def _upper_end(
    d0: np.ndarray, below: np.ndarray, alpha: float, detectable: float, low: float
) -> float:
    """Largest kept ``d0`` under the tests of :func:`_lower_end`: where ``below`` falls to
    ``alpha / 2``, and at least the detectable distance when the one-sided part keeps some
    ``d0`` (computed apart, not interpolated across the step of the tail at ``detectable``)."""
    high = _last_zero(d0, below - alpha / 2)
    return max(high, detectable) if low <= detectable else high


def degrees_of_freedom(n: int, weights: np.ndarray | None = None) -> float:
    """Degrees of freedom of the replicates' variance: ``n - 1``, or with weights Kish's
    effective sample size minus 1, ``(sum w)^2 / sum w^2 - 1`` (at least 1)."""
    if weights is None:
        return float(max(n - 1, 1))
    w = np.sort(np.asarray(weights, dtype=float))  # order-free sums
    return float(max(w.sum() ** 2 / max((w**2).sum(), 1e-300) - 1, 1.0))


def variance_inflation(n: int, weights: np.ndarray | None = None) -> float:
    """Factor on the replicates' variance of a weighted mean: ``sum w^2 / (1 - h) / sum w^2`` with
    leverages ``h = w / sum w`` (HC2), which is ``n / (n - 1)`` for equal weights.

    The bootstrap variance of a (weighted) mean is the sandwich ``sum w^2 r^2 / (sum w)^2`` of
    its residuals ``r``, biased low by the leverages; HC2 divides each term by ``1 - h``. The
    factor assumes the residuals' size does not depend on the weight (as Kish's design effect
    does), so it needs the weights only."""
    if weights is None:
        return n / max(n - 1, 1)
    w = np.sort(np.asarray(weights, dtype=float))  # sums in one order: the same in any row order
    total, square = w.sum(), (w**2).sum()
    if total <= 0 or square <= 0:
        return 1.0
    lev = np.minimum(w / total, 1 - 1 / max(len(w), 2))
    return float((w**2 / (1 - lev)).sum() / square)


def noise_scale(n: int, df: float, level: float, weights: np.ndarray | None = None) -> float:
    """Factor on the replicates' spread: ``sqrt`` of :func:`variance_inflation` (the bootstrap's
    variance is ``(n - 1) / n`` of the unbiased one, less still with uneven weights) times
    ``t_df / z`` at ``level`` (the variance is itself estimated, from ``df`` degrees of
    freedom)."""
    upper = 1 - (1 - level) / 2
    return float(
        np.sqrt(variance_inflation(n, weights)) * special.stdtrit(df, upper) / special.ndtri(upper)
    )


def _signed(
    delta: float,
    noise: np.ndarray,
    n: int,
    df: float,
    level: float,
    weights: np.ndarray | None = None,
    other: np.ndarray | None = None,
) -> tuple[float, float, float, float, float]:
    """``|delta|`` of a one-dimensional difference by inverting a test of ``mu = |delta|``.

    Under ``mu`` the observed ``x = |delta_hat|`` is modelled as ``|mu + s(mu) T|`` with ``T``
    Student t on ``df`` degrees of freedom and ``s(mu)^2 = se^2 + (x - mu)^2 / df``: the
    standard error from the replicates (times the root of :func:`variance_inflation`, less the
    truth's own replicate noise ``other`` when the truth is a sample) recomputed about the
    hypothesised share instead of the observed one (a score-type variance; it matters at small
    ``n`` only). ``mu`` is kept when the share of that folded law at or below ``x`` lies in
    ``[pi, 1 - alpha + pi]`` (:func:`_lower_end`), as in :func:`invert`, whose return order it
    shares."""
    own = noise * np.sqrt(variance_inflation(n, weights))
    se = float(np.std(own if other is None else own - other))
    x = abs(float(delta))
    if se <= 0:
        return x, x, x, float(x == 0), 0.0
    alpha = 1 - level
    crit = float(special.stdtrit(df, 1 - alpha / 2))
    # the x at which the equality test's p-value is alpha: x / s(0) = crit
    stretch = crit / np.sqrt(max(1 - crit**2 / df, 1e-6))
    detectable = min(stretch * se, 1.0)
    p_equal = float(2 * special.stdtr(df, -x / np.hypot(se, x / np.sqrt(df))))
    mu = np.linspace(0.0, x + 3 * (stretch + 1) * se, 4001)
    spread = np.sqrt(se**2 + (x - mu) ** 2 / df)
    below = special.stdtr(df, (x - mu) / spread) - special.stdtr(df, (-x - mu) / spread)
    low = _lower_end(mu, below, alpha, detectable)
    high = _upper_end(mu, below, alpha, detectable, low)
    return _first_zero(mu, below - 0.5), low, high, p_equal, detectable


def estimate(
    metric: str,
    p_hat: np.ndarray,
    replicates: np.ndarray,
    q: np.ndarray,
    n: int,
    positions: np.ndarray | None = None,
    level: float = 0.95,
    weights: np.ndarray | None = None,
    truth_noise: np.ndarray | None = None,
) -> Estimate:
    """Plug-in value, corrected estimate, interval, equality p-value and detectable distance.

    ``p_hat`` is the simulated distribution, ``replicates`` its bootstrap replicates
    (:func:`replicate_means`), ``q`` the truth (refusals already dropped from all three), ``n``
    the persons behind ``p_hat``, ``positions`` the ordinal positions (``wd`` only) and
    ``weights`` the persons' weights (for :func:`degrees_of_freedom`; None: equal weights).
    ``truth_noise``: when the truth is itself a sample (respondent microdata), one row
    ``q* - q`` per replicate (:func:`truth_replicates`); it is subtracted from the simulated
    noise, so the interval covers the sampling noise of both sides. None: ``q`` is exact.
    """
    entry = _metric(metric)
    p, target = np.asarray(p_hat, dtype=float), np.asarray(q, dtype=float)
    raw = np.atleast_2d(np.asarray(replicates, dtype=float))
    reps = _check(level, raw)
    if reps.shape[1] != p.size or p.size != target.size:
        raise IntervalInputError(
            f"{reps.shape[1]} replicate options, {p.size} simulated, {target.size} true"
        )
    other = _truth_rows(truth_noise, len(raw), raw.shape[1])[np.all(np.isfinite(raw), axis=1)]
    value = float(entry.rows(p[None, :], target, positions)[0])
    df = degrees_of_freedom(n, weights)
    if entry.folds_to_signed and p.size == 2:
        parts = _signed(p[0] - target[0], reps[:, 0] - p[0], n, df, level, weights, other[:, 0])
    else:
        noise = (reps - p) * noise_scale(n, df, level, weights) - other
        centre = (reps - p) * np.sqrt(variance_inflation(n, weights)) - other
        layout = Layout((metric,), (0, p.size), (_positions(positions),))
        parts = invert(
            lambda d: entry.rows(target + d, target, positions),
            layout,
            p - target,
            noise,
            level,
            centre,
        )
    return Estimate(value, *_in_range(parts), n_boot=len(reps))


@dataclass(frozen=True)
class SummaryPart:
    """One question (or state) of a summary: what :func:`estimate` takes for it."""

    metric: str
    """Registry name of the distance."""
    p_hat: np.ndarray
    """Simulated distribution."""
    replicates: np.ndarray
    """Its replicates, drawn jointly with the other parts' (:func:`joint_replicate_means`), or
    independently for independent samples (the states of an election)."""
    q: np.ndarray
    """True distribution."""
    positions: np.ndarray | None = None
    """Ordinal positions (``wd`` only)."""
    n: int | None = None
    """Persons behind ``p_hat`` (None: the replicates' spread is used as it is)."""
    weights: np.ndarray | None = None
    """Their weights (:func:`degrees_of_freedom`; None: equal weights)."""
    truth_noise: np.ndarray | None = None
    """The truth's own sampling noise, one row ``q* - q`` per replicate (None: ``q`` is exact;
    see :func:`estimate`)."""


def estimate_summary(parts: Sequence[SummaryPart], level: float = 0.95) -> Estimate:
    """The same quantities for the mean distance over ``parts`` (summary alignment is
    ``1 - mean distance``): one test inversion on the joint replicates, all parts' differences
    scaled together. Replicate rows with NaN in any part are dropped."""
    if not parts:
        raise IntervalInputError("a summary needs at least one part")
    reps = [np.atleast_2d(np.asarray(part.replicates, dtype=float)) for part in parts]
    if len({len(r) for r in reps}) != 1:
        raise IntervalInputError("every part needs the same number of replicates")
    joint = _check(level, np.hstack(reps))
    kept = np.all(np.isfinite(np.hstack(reps)), axis=1)
    edges = np.cumsum([0] + [r.shape[1] for r in reps])
    p_all = np.concatenate([np.asarray(part.p_hat, dtype=float) for part in parts])
    q_all = np.concatenate([np.asarray(part.q, dtype=float) for part in parts])

    stat = _mean_distance(parts, edges, q_all)
    noise, centre = joint - p_all, joint - p_all
    for part, a, b in zip(parts, edges[:-1], edges[1:], strict=True):
        if part.n:
            df = degrees_of_freedom(part.n, part.weights)
            noise[:, a:b] *= noise_scale(part.n, df, level, part.weights)
            centre[:, a:b] *= np.sqrt(variance_inflation(part.n, part.weights))
        truth = _truth_rows(part.truth_noise, len(kept), b - a)[kept]
        noise[:, a:b] -= truth
        centre[:, a:b] -= truth
    layout = Layout(
        tuple(part.metric for part in parts),
        tuple(int(e) for e in edges),
        tuple(_positions(part.positions) for part in parts),
    )
    value = float(stat((p_all - q_all)[None, :])[0])
    found = invert(stat, layout, p_all - q_all, noise, level, centre)
    return Estimate(value, *_in_range(found), n_boot=len(joint))


def _in_range(found: tuple[float, ...]) -> tuple[float, ...]:
    """:func:`invert`'s ``(corrected, low, high, p_equal, detectable)`` with the distances clipped
    to ``[0, 1]``, the range of every registry distance (so alignment stays in ``[0, 1]`` too):
    at a few persons the replicates' spread reaches past the range."""
    corrected, low, high, p_equal, detectable = found
    return (
        *(float(np.clip(v, 0.0, 1.0)) for v in (corrected, low, high)),
        p_equal,
        min(detectable, 1.0),
    )


def _difference_distance(
    metric: str, diffs: np.ndarray, positions: np.ndarray | None
) -> np.ndarray | None:
    """``(M, P)`` distances of ``(M, P, W)`` differences ``p - q`` for metrics that depend on the
    difference alone (``abs_diff``, ``tv``, ``wd``); None for the others (``js``)."""
    if metric == "abs_diff":
        return np.abs(diffs[..., 0])
    if metric == "tv":
        return 0.5 * np.abs(diffs).sum(axis=-1)
    if metric == "wd":
        pos = np.asarray(positions, dtype=float)
        order = np.argsort(pos, kind="stable")
        return np.abs(np.cumsum(diffs[..., order], axis=-1)[..., :-1]) @ (
            np.diff(pos[order]) / np.ptp(pos)
        )
    return None


def _mean_distance(
    parts: Sequence[SummaryPart], edges: np.ndarray, q_all: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """``stat(d)``: the mean over ``parts`` of each part's distance, for rows of stacked
    differences ``d``. Parts of one metric, width and positions are computed together (one
    array operation for the states of an election, not one call per state)."""
    groups: dict[tuple, list[int]] = {}
    for j, part in enumerate(parts):
        pos = None if part.positions is None else tuple(np.asarray(part.positions, dtype=float))
        groups.setdefault((part.metric, int(edges[j + 1] - edges[j]), pos), []).append(j)

    def stat(d: np.ndarray) -> np.ndarray:
        total = np.zeros(len(d))
        for (metric, width, pos), members in groups.items():
            cols = edges[members][:, None] + np.arange(width)
            # (q + d) - q, as the single-part distances compute it: the same to the last bit
            found = _difference_distance(metric, (q_all[cols] + d[:, cols]) - q_all[cols], pos)
            if found is None:
                found = np.column_stack(
                    [_metric(metric).rows(q_all[c] + d[:, c], q_all[c], pos) for c in cols]
                )
            total += found.sum(axis=1)
        return total / len(parts)

    return stat


def _truth_rows(truth_noise: np.ndarray | None, count: int, width: int) -> np.ndarray:
    """The truth's noise as a checked ``(count, width)`` array (zeros when it has none)."""
    if truth_noise is None:
        return np.zeros((count, width))
    rows = np.atleast_2d(np.asarray(truth_noise, dtype=float))
    if rows.shape != (count, width) or not np.all(np.isfinite(rows)):
        raise IntervalInputError(
            f"truth noise of shape {rows.shape}, need finite ({count}, {width}): one row per "
            "replicate"
        )
    return rows


def truth_replicates(q: np.ndarray, n_eff: float, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, options)`` parametric replicates of a true distribution estimated from a
    weighted sample: multinomial draws of ``m = max(1, round(n_eff))`` respondents from ``q``,
    as shares (``n_eff``: Kish's effective sample size, so each share's variance is
    ``q (1 - q) / n_eff``, the weighted share's design-based variance under Kish's
    approximation). An option with a true share of 0 stays 0."""
    target = np.asarray(q, dtype=float)
    if target.ndim != 1 or not np.all(np.isfinite(target)) or np.any(target < 0):
        raise IntervalInputError("a true distribution needs finite non-negative shares")
    if not np.isfinite(n_eff) or n_eff <= 0 or n_boot < 1:
        raise IntervalInputError(f"need n_eff > 0 and replicates, got {n_eff}, {n_boot}")
    m = max(1, round(float(n_eff)))
    counts = np.random.default_rng(seed).multinomial(m, target / target.sum(), size=n_boot)
    return counts / m


def _positions(positions: Sequence[float] | np.ndarray | None) -> np.ndarray | None:
    """Positions as a float array (None stays None)."""
    return None if positions is None else np.asarray(positions, dtype=float)


def _metric(name: str) -> Metric:
    """The registry entry of ``name`` (an error with the known names otherwise)."""
    if name not in METRICS:
        from personasim.core.errors import did_you_mean

        raise IntervalInputError(f"unknown metric {name!r}", hint=did_you_mean(name, METRICS))
    return METRICS[name]
