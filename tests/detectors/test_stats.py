"""detectors.stats against reference values computed with scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from detectors import stats

ALPHAS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]


@pytest.mark.parametrize("alpha", [0.4, 0.05, *ALPHAS, 1e-12])
def test_normal_upper_quantile(alpha: float) -> None:
    assert stats.normal_upper_quantile(alpha) == pytest.approx(
        scipy_stats.norm.isf(alpha), rel=1e-6)


@pytest.mark.parametrize("alpha", [1e-15, 1e-16, 1e-20, 1e-30, 1e-100])
def test_normal_upper_quantile_far_tail(alpha: float) -> None:
    # The asymptotic branch is good to a few parts in 10^4 out there.
    assert stats.normal_upper_quantile(alpha) == pytest.approx(
        scipy_stats.norm.isf(alpha), rel=1e-3)


def test_chi2_upper_quantile_for_df_1_to_60() -> None:
    df = np.arange(1, 61)
    for alpha in ALPHAS:
        ours = np.array([stats.chi2_upper_quantile(int(k), alpha) for k in df])
        exact = scipy_stats.chi2.isf(alpha, df)
        # Far inside the ~3% that Wilson–Hilferty alone promised (and missed by 25% at df 1).
        np.testing.assert_allclose(ours, exact, rtol=1e-6, err_msg=f"alpha={alpha}")


@pytest.mark.parametrize("df", [1, 2, 3, 7, 21, 60, 200])
def test_chi2_survival(df: int) -> None:
    statistics = np.r_[0.01, 0.5, 1.0, np.linspace(2, 10 * df + 50, 40)]
    ours = np.array([stats.chi2_survival(float(x), df) for x in statistics])
    exact = scipy_stats.chi2.sf(statistics, df)
    np.testing.assert_allclose(ours, exact, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("df", [1, 4, 21])
def test_chi2_survival_inverts_the_quantile(df: int) -> None:
    for alpha in ALPHAS:
        assert stats.chi2_survival(stats.chi2_upper_quantile(df, alpha), df) == pytest.approx(
            alpha, rel=1e-6)


def test_chi2_survival_edges() -> None:
    assert stats.chi2_survival(0.0, 5) == 1.0
    assert stats.chi2_survival(-3.0, 5) == 1.0
    assert stats.chi2_survival(1e7, 5) == 0.0
    assert stats.chi2_survival(3.0, 0) == pytest.approx(scipy_stats.chi2.sf(3.0, 1))


@pytest.mark.parametrize("alpha", [0.05, 1e-3, 1e-6, 1e-9])
@pytest.mark.parametrize(("n", "m"), [(5000, 2000), (1000, 1000), (10_000, 500)])
def test_ks_critical_value(alpha: float, n: int, m: int) -> None:
    scale = math.sqrt((n + m) / (n * m))
    assert stats.ks_critical_value(alpha, n, m) == pytest.approx(
        scipy_stats.kstwobign.isf(alpha) * scale, rel=1e-3)
    # The p-value is the same first-term approximation, so the two agree exactly.
    assert stats.ks_p_value(stats.ks_critical_value(alpha, n, m), n, m) == pytest.approx(alpha)


@pytest.mark.parametrize("statistic", [0.0, 0.01, 0.03, 0.05, 0.1, 0.3])
def test_ks_p_value_is_an_upper_bound_on_the_asymptotic_one(statistic: float) -> None:
    n, m = 5000, 2000
    p = stats.ks_p_value(statistic, n, m)
    asymptotic = scipy_stats.kstwobign.sf(statistic * math.sqrt(n * m / (n + m)))
    assert asymptotic <= p <= 1.0
    if asymptotic < 1e-3:
        assert p == pytest.approx(asymptotic, rel=1e-3)


def histograms(reference: np.ndarray, window: np.ndarray,
               edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count both samples on ``edges`` the way NumericDrift does."""
    def count(sample: np.ndarray) -> np.ndarray:
        bins = np.searchsorted(edges, sample, side="right")
        return np.bincount(bins, minlength=edges.size + 1).astype(np.float64)

    return count(reference), count(window)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_binned_ks_never_exceeds_the_exact_statistic(seed: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=5000)
    window = rng.normal(shift, 1.0 + shift, 2000)
    exact = scipy_stats.ks_2samp(reference, window).statistic
    quantiles = [0.01, 0.05, *np.arange(2, 19) / 20, 0.95, 0.99]
    edges = np.unique(np.quantile(reference, quantiles))
    binned = stats.binned_ks(*histograms(reference, window, edges))
    assert 0.0 <= binned <= exact + 1e-12
    if shift >= 0.5:
        assert binned >= 0.8 * exact  # 21 quantile bins lose little of a location shift


@pytest.mark.parametrize("seed", range(3))
def test_binned_ks_on_every_observed_value_is_the_exact_statistic(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=300)
    window = rng.normal(0.3, 1.0, 200)
    edges = np.unique(np.r_[reference, window])
    assert stats.binned_ks(*histograms(reference, window, edges)) == pytest.approx(
        scipy_stats.ks_2samp(reference, window).statistic, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_chi2_homogeneity_matches_the_contingency_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.multinomial(5000, [0.4, 0.3, 0.2, 0.1]).astype(np.float64)
    window = rng.multinomial(2000, [0.35, 0.3, 0.2, 0.15]).astype(np.float64)
    statistic, df = stats.chi2_homogeneity(np.r_[reference, 0.0], np.r_[window, 0.0])
    expected = scipy_stats.chi2_contingency(np.vstack([reference, window]), correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert df == expected.dof == 3  # the bin empty in both samples does not count


def test_chi2_homogeneity_degenerate_inputs() -> None:
    counts = np.array([10.0, 20.0, 30.0])
    assert stats.chi2_homogeneity(counts, np.zeros(3)) == (0.0, 2)
    assert stats.chi2_homogeneity(np.zeros(3), counts) == (0.0, 2)
    assert stats.chi2_homogeneity(np.array([5.0, 0.0]), np.array([7.0, 0.0])) == (0.0, 1)
    assert stats.chi2_homogeneity(counts, 3 * counts) == (pytest.approx(0.0, abs=1e-12), 2)


def test_psi_by_hand() -> None:
    reference = np.array([90.0, 10.0])
    window = np.array([50.0, 50.0])
    ref = (reference + 0.5) / 101.0
    win = (window + 0.5) / 101.0
    assert stats.psi(reference, window) == pytest.approx(np.sum((win - ref) * np.log(win / ref)))
    assert stats.psi(reference, window) == pytest.approx(stats.psi(window, reference))


@pytest.mark.parametrize("seed", range(3))
def test_psi_is_zero_for_equal_shares_and_positive_otherwise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 1000, 12).astype(np.float64)
    assert stats.psi(reference, reference) == 0.0
    assert stats.psi(reference, rng.permutation(reference)) > 0.0
    # A 0.5σ shift of a normal has PSI ≈ 0.25 (its Jeffreys divergence).
    edges = np.quantile(rng.normal(size=100_000), np.linspace(0.01, 0.99, 60))
    ref_counts, win_counts = histograms(rng.normal(size=100_000), rng.normal(0.5, 1, 100_000),
                                        edges)
    assert stats.psi(ref_counts, win_counts) == pytest.approx(0.25, rel=0.1)


@pytest.mark.parametrize(("n", "p"), [(10, 0.5), (60, 0.03), (2000, 0.0126), (2189, 0.2857),
                                      (5000, 1e-4), (300, 0.97)])
def test_binomial_survival_is_exact(n: int, p: float) -> None:
    ks = np.unique(np.linspace(1, n, 25).astype(int))
    ours = np.array([stats.binomial_survival(int(k), n, p) for k in ks])
    exact = scipy_stats.binom.sf(ks - 1, n, p)
    np.testing.assert_allclose(ours, exact, rtol=1e-9, atol=1e-300)


def test_binomial_survival_edges() -> None:
    assert stats.binomial_survival(0, 10, 0.3) == 1.0
    assert stats.binomial_survival(-1, 10, 0.3) == 1.0
    assert stats.binomial_survival(11, 10, 0.3) == 0.0
    assert stats.binomial_survival(3, 10, 0.0) == 0.0
    assert stats.binomial_survival(3, 10, 1.0) == 1.0
    assert stats.binomial_survival(10, 10, 0.5) == pytest.approx(2.0**-10)


@pytest.mark.parametrize("seed", range(4))
def test_binned_wasserstein_matches_scipy_on_lower_edge_masses(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.lognormal(size=5000)
    window = rng.lognormal(0.3, 1.2, 2000)
    edges = np.unique(np.quantile(reference, np.linspace(0.01, 0.99, 23)))
    ref_counts, win_counts = histograms(reference, window, edges)
    # Bin i's mass sits at edges[i - 1]; the bin below the first edge at edges[0].
    positions = np.r_[edges[0], edges]
    expected = scipy_stats.wasserstein_distance(positions, positions, ref_counts, win_counts)
    assert stats.binned_wasserstein(ref_counts, win_counts, edges) == pytest.approx(
        expected, rel=1e-9)


def test_binned_wasserstein_of_a_shift_is_the_shift_between_the_outer_edges() -> None:
    rng = np.random.default_rng(9)
    reference = rng.normal(size=200_000)
    edges = np.quantile(reference, np.linspace(0.001, 0.999, 200))
    ref_counts, win_counts = histograms(reference, reference + 0.5, edges)
    assert stats.binned_wasserstein(ref_counts, win_counts, edges) == pytest.approx(0.5, rel=0.02)
    assert stats.binned_wasserstein(ref_counts, ref_counts, edges) == 0.0
    assert stats.binned_wasserstein(ref_counts, win_counts, edges[:1]) == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_jensen_shannon_matches_scipy(seed: int) -> None:
    from scipy.spatial import distance

    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 50, 12).astype(np.float64)
    window = rng.integers(0, 50, 12).astype(np.float64)
    window[3] = reference[5] = 0.0  # empty bins on either side
    assert stats.jensen_shannon(reference, window) == pytest.approx(
        distance.jensenshannon(reference, window, base=2), rel=1e-9)
    assert stats.jensen_shannon(reference, 3 * reference) == pytest.approx(0.0, abs=1e-7)


def test_normal_quantiles_match_scipy() -> None:
    p = np.r_[1e-12, 1e-9, 1e-6, 1e-4, np.linspace(0.001, 0.999, 997), 1 - 1e-6, 1 - 1e-9]
    np.testing.assert_allclose(stats.normal_quantiles(p), scipy_stats.norm.ppf(p), rtol=2e-9,
                               atol=1e-12)
