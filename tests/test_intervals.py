"""personasim.scoring.intervals: distances against scipy, order-free replicates, weights, the folded
interval by hand, endpoints within the distance's range, bias correction and the equality test on
the known-answer stand-in, and a coverage check that fails when any scenario's 95 % interval
covers less than 90 % or more than 99 %."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from personasim.scoring import intervals as I
from tests.support.coverage import coverage
from tests.support.known_answer import single

Q5 = np.array([0.10, 0.20, 0.30, 0.25, 0.15])
POS5 = np.arange(5.0)


def _random_pairs(seed: int, k: int, rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Random distributions, some with exact zeros."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.7), size=rows)
    p[::5, 0] = 0.0
    return p / p.sum(axis=1, keepdims=True), rng.dirichlet(np.ones(k))


@pytest.mark.parametrize("positions", [[0, 1, 2, 3, 4], [0, 1, 2.5, 3, 7], [3, 0, 7, 1, 2.5]])
def test_wd_rows_equals_scipy_wasserstein(positions: list[float]) -> None:
    p, q = _random_pairs(1, 5)
    pos = np.asarray(positions, dtype=float)
    want = [wasserstein_distance(pos, pos, row, q) / np.ptp(pos) for row in p]
    np.testing.assert_allclose(I.wd_rows(p, q, pos), want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_js_tv_and_share_rows_equal_independent_values(k: int) -> None:
    p, q = _random_pairs(k, k)
    np.testing.assert_allclose(
        I.js_rows(p, q), [jensenshannon(r, q, base=2) for r in p], atol=1e-10, rtol=0
    )
    by_hand = [0.5 * sum(abs(a - b) for a, b in zip(r, q, strict=True)) for r in p]
    np.testing.assert_allclose(I.tv_rows(p, q), by_hand, atol=1e-12)
    np.testing.assert_allclose(I.abs_diff_rows(p, q), np.abs(p[:, 0] - q[0]), atol=1e-12)
    assert I.js_rows(q[None, :], q)[0] == pytest.approx(0.0, abs=1e-7)


def test_counts_do_not_depend_on_the_chunk() -> None:
    whole = np.vstack(list(I.bootstrap_counts(37, 50, seed=3, chunk=50)))
    for chunk in (1, 7, 64):
        assert np.array_equal(np.vstack(list(I.bootstrap_counts(37, 50, 3, chunk))), whole)
    assert (whole.sum(axis=1) == 37).all()


def _persons(seed: int = 0, n: int = 60) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Keys, one question's one-hot rows and log-normal weights from the stand-in."""
    return single(Q5 + np.array([0.05, 0, 0, 0, -0.05]), deff=1.4).draw(
        n, np.random.default_rng(seed)
    )


def test_replicates_and_interval_ignore_row_order_parts_and_chunks() -> None:
    keys, rows, w = _persons()
    base = I.replicate_means(keys, rows[0], w, 300, seed=5)
    shuffle = np.random.default_rng(9).permutation(len(keys))
    moved = I.replicate_means(keys[shuffle], rows[0][shuffle], w[shuffle], 300, 5, chunk=7)
    np.testing.assert_array_equal(moved, base)
    # two "parts" of the same persons given as two blocks of one joint draw, in either order
    half = len(keys) // 2
    a, b = slice(0, half), slice(half, None)
    one = I.joint_replicate_means(
        [keys[a], keys[b]], [rows[0][a], rows[0][b]], [w[a], w[b]], 300, 5, chunk=13
    )
    two = I.joint_replicate_means(
        [keys[b], keys[a]], [rows[0][b], rows[0][a]], [w[b], w[a]], 300, 5
    )
    np.testing.assert_array_equal(one[0], two[1])
    est = I.estimate("wd", I.weighted_mean(rows[0], w, keys), base, Q5, len(keys), POS5)
    p_moved = I.weighted_mean(rows[0][shuffle], w[shuffle], keys[shuffle])
    again = I.estimate("wd", p_moved, moved, Q5, len(keys), POS5)
    assert again == est


def test_questions_of_the_same_persons_share_their_counts() -> None:
    keys, rows, w = _persons(1)
    first, second = I.joint_replicate_means(
        [keys, keys[::-1]], [rows[0], rows[0][::-1]], [w, w[::-1]], 200, 2
    )
    np.testing.assert_allclose(first, second, atol=1e-12)


def test_weights_scale_free_and_replicate_spread_matches_linearization() -> None:
    keys, rows, w = _persons(2, n=200)
    reps = I.replicate_means(keys, rows[0], w, 4000, 1)
    np.testing.assert_allclose(I.replicate_means(keys, rows[0], 3.5 * w, 4000, 1), reps, atol=1e-12)
    p_hat = I.weighted_mean(rows[0], w)
    # Taylor linearization of a ratio mean, by hand: sum w^2 (y - p)^2 / (sum w)^2
    linear = np.sqrt((w[:, None] ** 2 * (rows[0] - p_hat) ** 2).sum(axis=0)) / w.sum()
    np.testing.assert_allclose(reps.std(axis=0), linear, rtol=0.08)
    assert not np.allclose(linear, np.sqrt(p_hat * (1 - p_hat) / len(w)), rtol=0.05)


def _folded_t_below(mu: float, x: float, se: float, df: float) -> float:
    """P(|mu + s T| <= x), T ~ t(df), s^2 = se^2 + (x - mu)^2 / df, from scipy.stats."""
    spread = np.sqrt(se**2 + (x - mu) ** 2 / df)
    return stats.t.cdf((x - mu) / spread, df) - stats.t.cdf((-x - mu) / spread, df)


def test_two_options_invert_the_folded_t_test() -> None:
    n, s = 50, 0.05
    p_hat, q = np.array([0.55, 0.45]), np.array([0.5, 0.5])
    noise = np.where(np.arange(400) % 2 == 0, s, -s)  # standard deviation exactly s
    reps = p_hat + np.column_stack([noise, -noise])
    est = I.estimate("abs_diff", p_hat, reps, q, n)
    se, df = s * np.sqrt(n / (n - 1)), n - 1
    crit = stats.t.ppf(0.975, df)
    # equality: |x| / sqrt(se^2 + x^2 / df) against t(df), both tails
    assert est.p_equal == pytest.approx(2 * stats.t.sf(0.05 / np.hypot(se, 0.05 / 7), df))
    assert est.detectable == pytest.approx(crit * se / np.sqrt(1 - crit**2 / df))
    assert est.ci_low == 0.0  # not told from equality
    assert est.ci_high > est.detectable  # beyond it: equal tails, 2.5 % below the observed
    assert _folded_t_below(est.ci_high, 0.05, se, df) == pytest.approx(0.025, abs=5e-4)
    assert _folded_t_below(est.corrected, 0.05, se, df) == pytest.approx(0.5, abs=5e-4)
    far = I.estimate("tv", np.array([0.8, 0.2]), reps + 0.25, q, n)
    assert _folded_t_below(far.ci_low, 0.3, se, df) == pytest.approx(0.975, abs=5e-4)
    assert _folded_t_below(far.ci_high, 0.3, se, df) == pytest.approx(0.025, abs=5e-4)


def test_two_options_exactly_at_the_truth_keep_up_to_the_detectable_difference() -> None:
    # a share on the lattice k / n equal to the result: nothing speaks against any difference
    # the sample cannot detect (a two-sided test there would give the interval [0, 0])
    p_hat = np.array([0.45, 0.55])
    noise = np.where(np.arange(400) % 2 == 0, 0.08, -0.08)
    est = I.estimate("abs_diff", p_hat, p_hat + np.column_stack([noise, -noise]), p_hat, 40)
    assert (est.ci_low, est.corrected, est.p_equal) == (0.0, 0.0, 1.0)
    assert est.ci_high == pytest.approx(est.detectable, rel=1e-3)


@pytest.mark.parametrize(
    ("metric", "options", "positions"),
    [("abs_diff", 2, None), ("tv", 2, None), ("tv", 5, None), ("wd", 5, POS5)],
)
def test_endpoints_stay_in_the_distance_range_at_three_persons(
    metric: str, options: int, positions: np.ndarray | None
) -> None:
    keys, rows = np.array(["a", "b", "c"]), np.eye(options)[[0, 0, options - 1]]
    q = np.full(options, 0.05 / (options - 1))
    q[-1] = 0.95
    reps = I.replicate_means(keys, rows, None, 400, 0)
    est = I.estimate(metric, I.weighted_mean(rows, None), reps, q, 3, positions)
    for value in (est.corrected, est.ci_low, est.ci_high, est.detectable):
        assert 0.0 <= value <= 1.0
    assert est.ci_low <= est.corrected <= est.ci_high
    summary = I.estimate_summary([I.SummaryPart(metric, rows.mean(axis=0), reps, q, positions, 3)])
    assert 0.0 <= summary.ci_low <= summary.ci_high <= 1.0


def _at_truth_and_kink(datasets: int = 80) -> dict[str, np.ndarray]:
    """Plug-in and corrected values on the stand-in: WD at the truth, TV with a kink."""
    rng, out = np.random.default_rng(11), {}
    kink = np.array([0.30, 0.25, 0.20, 0.15, 0.10])
    cases = {"truth": ("wd", Q5, Q5), "kink": ("tv", kink + [0, 0, 0.06, -0.06, 0], kink)}
    for name, (metric, p, q) in cases.items():
        found = []
        for k in range(datasets):
            keys, rows, w = single(p).draw(100, rng)
            reps = I.replicate_means(keys, rows[0], w, 300, k)
            est = I.estimate(
                metric, I.weighted_mean(rows[0], w), reps, q, 100, POS5 if metric == "wd" else None
            )
            found.append((est.value, est.corrected, est.p_equal, est.detectable))
        out[name] = np.array(found)
    return out


@pytest.fixture(scope="module")
def known() -> dict[str, np.ndarray]:
    """Estimates on fixed-seed stand-in datasets, shared by the tests below."""
    return _at_truth_and_kink()


@pytest.mark.slow
def test_bias_correction_moves_towards_the_known_distance(known: dict[str, np.ndarray]) -> None:
    truth = known["truth"]
    assert truth[:, 0].mean() > 0.02  # the plug-in distance is biased away from 0
    assert np.median(truth[:, 1]) == 0.0
    assert truth[:, 1].mean() < 0.5 * truth[:, 0].mean()
    kink = known["kink"]  # true TV 0.06
    assert abs(kink[:, 1].mean() - 0.06) < 0.6 * abs(kink[:, 0].mean() - 0.06)


@pytest.mark.slow
def test_equality_p_value_is_uniform_and_detectable_is_its_threshold(
    known: dict[str, np.ndarray],
) -> None:
    value, _, p_equal, detectable = known["truth"].T
    assert stats.kstest(p_equal, "uniform").pvalue > 0.01
    assert 0.0 < np.mean(p_equal < 0.05) < 0.12
    assert np.mean((value > detectable) != (p_equal < 0.05)) < 0.05  # ties aside, one rule
    # the detectable distance is the 95 % point of the plug-in distance at the truth, here
    # from 3000 independent datasets of the stand-in
    rng, sim = np.random.default_rng(5), single(Q5)
    plug_in = [
        I.wd_rows(sim.draw(100, rng)[1][0].mean(axis=0)[None, :], Q5, POS5)[0] for _ in range(3000)
    ]
    assert np.median(detectable) == pytest.approx(np.quantile(plug_in, 0.95), rel=0.1)


def test_bad_input_raises_with_a_hint() -> None:
    with pytest.raises(I.IntervalInputError) as bad:
        I.estimate("wass", Q5, np.tile(Q5, (20, 1)), Q5, 10, POS5)
    assert "wd" in bad.value.hint
    with pytest.raises(I.IntervalInputError):
        I.estimate("wd", Q5, np.tile(Q5, (5, 1)), Q5, 10, POS5)
    part = I.SummaryPart("tv", Q5, np.tile(Q5, (20, 1)), Q5)
    with pytest.raises(I.IntervalInputError):
        I.estimate_summary([part, I.SummaryPart("tv", Q5, np.tile(Q5, (30, 1)), Q5)])


def test_summary_of_one_question_is_that_question() -> None:
    keys, rows, w = _persons(3)
    reps = I.replicate_means(keys, rows[0], w, 300, 0)
    p_hat = I.weighted_mean(rows[0], w)
    alone = I.estimate("wd", p_hat, reps, Q5, len(keys), POS5)
    assert I.estimate_summary([I.SummaryPart("wd", p_hat, reps, Q5, POS5, len(keys))]) == alone


COVERAGE_SCENARIOS = [
    "near ~2 SE (WD)",
    "at truth (WD)",
    "kink (TV, 3 of 5 equal)",
    "deff 3 near (WD)",
    "elections 4x40, half at result",
    "summary 5 q, mixed",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", COVERAGE_SCENARIOS)
def test_intervals_cover_the_known_distance(name: str) -> None:
    found = coverage(name, datasets=100, n_boot=200, seed=1, before=False)
    for label, (_, _, covered, _) in found.items():
        # below 0.90 the intervals are too narrow; 100 of 100 covered (p = 0.006 at 0.95) means
        # a construction far more conservative than nominal
        assert 0.90 <= covered <= 0.99, f"{name} / {label}: coverage {covered:.2f}"


def test_variance_inflation_is_hc2_over_hc0_of_the_weighted_mean() -> None:
    import statsmodels.api as sm

    assert I.variance_inflation(40) == pytest.approx(40 / 39)
    assert I.variance_inflation(40, np.full(40, 3.0)) == pytest.approx(40 / 39)
    # residuals of equal size (weighted mean 0): the ratio of statsmodels' HC2 to HC0 variance
    # of the WLS intercept is the factor exactly; by hand 10.667 / 6 for weights 1, 1, 2
    w, y = np.array([1.0, 1.0, 2.0, 0.5, 0.5]), np.array([1.0, 1.0, -1.0, 1.0, -1.0])
    fit = sm.WLS(y, np.ones((5, 1)), weights=w)
    ratio = fit.fit(cov_type="HC2").bse[0] ** 2 / fit.fit(cov_type="HC0").bse[0] ** 2
    assert I.variance_inflation(5, w) == pytest.approx(ratio)
    assert I.variance_inflation(3, np.array([1.0, 1.0, 2.0])) == pytest.approx(10.666667 / 6)


def test_a_repeated_draw_is_the_same_and_a_changed_input_is_drawn_anew() -> None:
    """joint_replicate_means keeps recent results: a repeat returns equal copies (changing one
    leaves the kept result alone); another weight or seed draws again."""
    rng = np.random.default_rng(4)
    keys = np.array([f"k{i}" for i in range(300)])
    values, weights = rng.dirichlet(np.ones(3), 300), rng.random(300) + 0.5
    first = I.replicate_means(keys, values, weights, 50, seed=9)
    first[0, 0] = 7.0
    again = I.replicate_means(keys, values, weights, 50, seed=9)
    assert again[0, 0] != 7.0
    I._KEPT.clear()
    assert np.array_equal(again, I.replicate_means(keys, values, weights, 50, seed=9))
    heavier = weights.copy()
    heavier[0] *= 3
    assert not np.array_equal(again, I.replicate_means(keys, values, heavier, 50, seed=9))
    assert not np.array_equal(again, I.replicate_means(keys, values, weights, 50, seed=10))
