"""Metric values against hand-computed cases, and property tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personasim.scoring import metrics as M


def test_wasserstein_hand_computed() -> None:
    # positions 1,2,3: all mass at 1 vs all at 3 -> WD 2, span 2 -> 1
    assert M.wasserstein_ordinal([1, 0, 0], [0, 0, 1], [1, 2, 3]) == pytest.approx(1.0)
    # [.5,.5,0] vs [0,.5,.5]: |CDF diff| = .5 on both gaps -> WD 1 -> /2 = .5
    assert M.wasserstein_ordinal([0.5, 0.5, 0], [0, 0.5, 0.5], [1, 2, 3]) == pytest.approx(0.5)
    assert M.ordinal_alignment([0.5, 0.5, 0], [0, 0.5, 0.5], [1, 2, 3]) == pytest.approx(0.5)


def test_wasserstein_drops_refusals_and_renormalizes() -> None:
    refusal = [False, False, True]
    # after dropping the refusal both are [.5,.5] -> distance 0
    assert M.wasserstein_ordinal([0.4, 0.4, 0.2], [0.5, 0.5, 0.0], [1, 2], refusal) == 0.0
    assert M.refusal_rate([0.4, 0.4, 0.2], refusal) == pytest.approx(0.2)


def test_wasserstein_unsorted_positions() -> None:
    # OpinionQA's WORLDDANGER: positions 1, 2, 1.5 (middle option last)
    assert M.wasserstein_ordinal([1, 0, 0], [0, 0, 1], [1, 2, 1.5]) == pytest.approx(0.5)


def test_tv_and_js_hand_computed() -> None:
    assert M.total_variation([1, 0], [0, 1]) == 1.0
    assert M.total_variation([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]) == pytest.approx(0.3)
    assert M.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert M.jensen_shannon([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)


def test_counts_are_normalized() -> None:
    assert M.total_variation([2, 2], [10, 0]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: M.total_variation([0.5, 0.5], [1, 0, 0]), "length mismatch"),
        (lambda: M.total_variation([-0.1, 1.1], [0.5, 0.5]), "negative"),
        (lambda: M.wasserstein_ordinal([0, 0, 1], [0, 1, 0], [1, 2], [0, 0, 1]), "all-zero"),
        (lambda: M.normalize([0, 0]), "no mass"),
        (lambda: M.wasserstein_ordinal([1, 0], [0, 1], [1, 2, 3]), "positions"),
        (lambda: M.group_distribution(np.ones((2, 2)), [1, 2, 3]), "length mismatch"),
        (lambda: M.two_party_alignment(1.2, 0.5), r"\[0, 1\]"),
    ],
)
def test_bad_input_raises_clear_error(call, match) -> None:
    with pytest.raises(M.MetricInputError, match=match) as info:
        call()
    assert "\n" not in info.value.one_line()


def test_group_distribution_and_one_hot() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert M.group_distribution(probs, [3, 1]).tolist() == [0.75, 0.25]
    hot = M.one_hot([0, 1, 1], 2)
    assert M.group_distribution(hot).tolist() == pytest.approx([1 / 3, 2 / 3])


def test_uniform_ignores_refusals() -> None:
    assert M.uniform(3, [False, False, True]).tolist() == [0.5, 0.5, 0.0]


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1, 1, 1], size=50)
    truth = np.array([0.2, 0.3, 0.5])

    def stat(d: np.ndarray) -> float:
        return M.total_variation(d, truth)

    first = M.bootstrap_ci(probs, None, stat, n_boot=100, seed=3)
    assert first == M.bootstrap_ci(probs, None, stat, n_boot=100, seed=3)
    assert first[0] <= stat(M.group_distribution(probs)) <= first[1]


def test_resampled_counts_are_bootstrap_draws_in_bounded_chunks() -> None:
    chunks = list(M.resample_counts(7, 70, np.random.default_rng(0), chunk=32))
    assert [c.shape for c in chunks] == [(32, 7), (32, 7), (6, 7)]
    counts = np.vstack(chunks)
    assert (counts.sum(axis=1) == 7).all()
    # a person's count is Binomial(7, 1/7): variance 6/7, and almost every replicate (1 - 7!/7**7
    # = 99.4 %) leaves someone out
    assert 0.7 < counts.var() < 1.0
    assert (counts == 0).any(axis=1).mean() > 0.95


def test_bootstrap_replicates_center_on_the_weighted_distribution() -> None:
    rng = np.random.default_rng(2)
    probs, weights = rng.dirichlet([1, 1], size=400), rng.random(400)
    replicates = M.bootstrap_distributions(probs, weights, n_boot=300, seed=1)
    assert replicates.shape == (300, 2)
    assert np.allclose(replicates.sum(axis=1), 1.0)
    center = M.group_distribution(probs, weights)
    assert np.abs(replicates.mean(axis=0) - center).max() < 0.01
    # all weight on persons never drawn together: a zero-weight replicate is NaN, then skipped
    lone = M.bootstrap_distributions(np.eye(2), [1.0, 0.0], n_boot=50, seed=0)
    assert np.isnan(lone).any() and not np.isnan(lone).all()
    low, high = M.percentile_ci(lone, lambda d: float(d[0]))
    assert low == high == 1.0


def test_election_metrics_hand_computed() -> None:
    truth = pd.DataFrame(
        {
            "state": ["A", "B"],
            "dem_share": [0.6, 0.4],
            "two_party_votes": [100, 300],
            "electoral_votes": [10, 20],
        }
    )
    out = M.election_metrics(np.array([[0.55, 0.5], [0.7, 0.3]]), truth)
    # replicate 1: |.55-.6| = .05, |.5-.4| = .1
    assert out["mean_abs_error"] == pytest.approx([0.075, 0.1])
    assert out["alignment"] == pytest.approx([0.925, 0.9])
    assert out["winner_accuracy"] == pytest.approx([0.75, 1.0])  # B a tie: half credit
    assert out["dem_electoral_votes"] == pytest.approx([20.0, 10.0])  # 10 + half of 20
    assert out["national_dem_share"] == pytest.approx([(55 + 150) / 400, (70 + 90) / 400])
    assert out["national_abs_error"] == pytest.approx([abs(205 - 180) / 400, abs(160 - 180) / 400])
    with pytest.raises(M.MetricInputError, match="3 simulated states for 2"):
        M.election_metrics(np.zeros((1, 3)), truth)


dists = st.integers(2, 6).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0, 1), min_size=n, max_size=n).filter(lambda v: sum(v) > 1e-3),
        st.lists(st.floats(0, 1), min_size=n, max_size=n).filter(lambda v: sum(v) > 1e-3),
    )
)


@settings(max_examples=60, deadline=None)
@given(dists)
def test_bounds_symmetry_identity(pair) -> None:
    p, q = pair
    pos = list(range(len(p)))
    for fn in (M.total_variation, M.jensen_shannon, lambda a, b: M.wasserstein_ordinal(a, b, pos)):
        d = fn(p, q)
        assert 0.0 <= d <= 1.0
        assert d == pytest.approx(fn(q, p), abs=1e-9)
        assert fn(p, p) == pytest.approx(0.0, abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_binary_case_equals_abs_difference(a: float, b: float) -> None:
    p, q = [a, 1 - a], [b, 1 - b]
    assert M.total_variation(p, q) == pytest.approx(abs(a - b), abs=1e-9)
    assert M.wasserstein_ordinal(p, q, [0, 1]) == pytest.approx(abs(a - b), abs=1e-9)
    assert M.two_party_alignment(a, b) == pytest.approx(1 - abs(a - b))
