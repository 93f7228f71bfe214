"""Hodges–Lehmann, Walsh order statistics and the Wilcoxon / sign intervals against brute force."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.stats import intervals as stats
from pytest_otel_overhead.stats.intervals import (
    hodges_lehmann,
    mad_spread,
    median,
    quantile,
    sign_interval,
    walsh_order_statistic,
    wilcoxon_interval,
)

values = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
# Few distinct values (as with coarse clocks) give ties among the Walsh averages.
tied_values = st.integers(min_value=-5, max_value=5).map(lambda v: v / 4)


def walsh_averages(xs: Sequence[float]) -> list[float]:
    ordered = sorted(xs)
    n = len(ordered)
    return sorted((ordered[i] + ordered[j]) / 2 for i in range(n) for j in range(i, n))


def brute_median(xs: Sequence[float]) -> float:
    ordered = sorted(xs)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def brute_depth(n: int, confidence: float) -> int:
    """Largest k with P(W+ <= k - 1) <= alpha / 2, by enumerating all 2**n sign patterns."""
    counts = [0] * (n * (n + 1) // 2 + 1)
    for signs in itertools.product((0, 1), repeat=n):
        counts[sum(rank for rank, positive in zip(range(1, n + 1), signs, strict=True) if positive)] += 1
    alpha = 1 - confidence
    k, cumulative = 0, 0
    for w, count in enumerate(counts):
        cumulative += count
        if cumulative / 2**n > alpha / 2:
            break
        k = w + 1
    return k


# --- simple statistics -------------------------------------------------------------------------


def test_median_and_quantile() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert quantile([0.0, 10.0], 0.5) == 5.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == pytest.approx(4.8)
    assert quantile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        median([])
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_mad_spread_estimates_the_standard_deviation_of_normal_noise() -> None:
    rng = random.Random(7)
    sample = [rng.gauss(0, 2.0) for _ in range(5000)]
    assert mad_spread(sample) == pytest.approx(2.0, rel=0.05)


@given(st.lists(values, min_size=1, max_size=40))
def test_median_matches_brute_force(xs: list[float]) -> None:
    assert median(xs) == brute_median(xs)


# --- Walsh averages and Hodges–Lehmann ---------------------------------------------------------


@given(st.lists(values, min_size=1, max_size=25), st.data())
def test_walsh_order_statistic_matches_brute_force_in_the_exact_path(xs: list[float], data: st.DataObject) -> None:
    averages = walsh_averages(xs)
    k = data.draw(st.integers(min_value=1, max_value=len(averages)))
    assert walsh_order_statistic(sorted(xs), k) == averages[k - 1]


@given(
    st.one_of(st.lists(values, min_size=61, max_size=130), st.lists(tied_values, min_size=61, max_size=130)),
    st.data(),
)
def test_walsh_order_statistic_matches_brute_force_in_the_bisection_path(xs: list[float], data: st.DataObject) -> None:
    averages = walsh_averages(xs)
    k = data.draw(st.integers(min_value=1, max_value=len(averages)))
    # Exact, not merely close: the result is one of the averages, bit for bit.
    assert walsh_order_statistic(sorted(xs), k) == averages[k - 1]


@pytest.mark.parametrize("n", [61, 100, 257])
def test_bisection_finds_every_tenth_order_statistic_on_heavy_tailed_data(n: int) -> None:
    rng = random.Random(n)
    xs = sorted(rng.gauss(0, 0.05) / max(0.05, abs(rng.gauss(0, 1))) for _ in range(n))
    averages = walsh_averages(xs)
    for k in range(1, len(averages) + 1, max(1, len(averages) // 10)):
        assert walsh_order_statistic(xs, k) == averages[k - 1]
    assert walsh_order_statistic(xs, len(averages)) == averages[-1]


def test_bisection_returns_the_minimum_exactly_for_k_1() -> None:
    xs = [float(i) for i in range(100)]
    assert walsh_order_statistic(xs, 1) == 0.0
    assert walsh_order_statistic(xs, 2) == 0.5
    assert walsh_order_statistic(xs, 100 * 101 // 2) == 99.0


def test_order_statistics_are_exact_across_a_huge_dynamic_range() -> None:
    # A search on midpoints of the value range needs ~2000 halvings to resolve 1e-300 next to
    # 1e300; selection among the sums themselves does not care.
    xs = sorted([10.0**e for e in range(-300, 301, 10)] + [-(10.0**e) for e in range(-300, 301, 25)])
    averages = walsh_averages(xs)
    assert len(xs) > 60
    for k in [1, 2, 3, *range(5, len(averages), 97), len(averages) - 1, len(averages)]:
        assert walsh_order_statistic(xs, k) == averages[k - 1]


def test_walsh_order_statistic_rejects_k_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        walsh_order_statistic([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="outside"):
        walsh_order_statistic([1.0, 2.0], 4)
    with pytest.raises(ValueError, match="outside"):
        walsh_order_statistic([1.0] * 70, 70 * 71 // 2 + 1)


@given(st.lists(values, min_size=1, max_size=130))
def test_hodges_lehmann_is_the_median_of_walsh_averages(xs: list[float]) -> None:
    assert hodges_lehmann(xs) == brute_median(walsh_averages(xs))


@given(st.lists(values, min_size=1, max_size=40), values)
def test_hodges_lehmann_is_shift_equivariant(xs: list[float], shift: float) -> None:
    shifted = hodges_lehmann([x + shift for x in xs])
    assert math.isclose(shifted, hodges_lehmann(xs) + shift, rel_tol=1e-9, abs_tol=1e-9)


def test_hodges_lehmann_resists_outliers() -> None:
    assert hodges_lehmann([0.01] * 20 + [50.0, 80.0]) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        hodges_lehmann([])


# --- Wilcoxon depth ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 15))
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 1 - 0.05 / 6])
def test_exact_wilcoxon_depth_matches_enumeration(n: int, confidence: float) -> None:
    assert stats._wilcoxon_depth(n, confidence) == brute_depth(n, confidence)


def test_signed_rank_distribution_is_a_distribution() -> None:
    for n in (1, 5, 20, 60):
        cdf = stats._signed_rank_cdf(n)
        assert len(cdf) == n * (n + 1) // 2 + 1
        assert cdf[-1] == pytest.approx(1.0)
        assert all(a <= b for a, b in itertools.pairwise(cdf))
        # Symmetric around n(n+1)/4: P(W <= w) = P(W >= N - w).
        total = n * (n + 1) // 2
        for w in range(total):
            assert cdf[w] == pytest.approx(1 - cdf[total - w - 1])


@pytest.mark.parametrize("n", [61, 70, 90, 150])
@pytest.mark.parametrize("confidence", [0.95, 1 - 0.05 / 6])
def test_normal_approximation_depth_achieves_the_confidence_asked(n: int, confidence: float) -> None:
    cdf = stats._signed_rank_cdf(n)  # exact, for comparison, beyond where the engine uses it
    depth = stats._wilcoxon_depth(n, confidence)
    achieved = 1 - 2 * cdf[depth - 1]
    assert confidence - 1e-3 <= achieved <= confidence + 2e-3
    exact = 0
    while cdf[exact] <= (1 - confidence) / 2:
        exact += 1
    assert exact - 6 <= depth <= exact + 1


def test_depth_is_zero_when_too_few_values_for_the_confidence() -> None:
    # With n values the smallest two-sided p-value is 2 / 2**n.
    assert stats._wilcoxon_depth(5, 0.95) == 0
    assert stats._wilcoxon_depth(6, 0.95) == 1
    assert stats._wilcoxon_depth(7, 1 - 0.05 / 6) == 0
    assert stats._wilcoxon_depth(8, 1 - 0.05 / 6) == 1


# --- intervals ---------------------------------------------------------------------------------


def test_wilcoxon_interval_is_unbounded_without_enough_values() -> None:
    low, estimate, high = wilcoxon_interval([0.1, 0.2, 0.3], 0.95)
    assert (low, high) == (-math.inf, math.inf)
    assert estimate == pytest.approx(0.2)


@pytest.mark.parametrize("n", [6, 12, 30, 60, 61, 150])
def test_wilcoxon_interval_ends_are_walsh_order_statistics_at_the_exact_depth(n: int) -> None:
    rng = random.Random(n)
    xs = [rng.gauss(0.03, 0.05) for _ in range(n)]
    low, estimate, high = wilcoxon_interval(xs, 0.95)
    k = stats._wilcoxon_depth(n, 0.95)
    averages = walsh_averages(xs)
    assert low == averages[k - 1]
    assert high == averages[len(averages) - k]
    assert estimate == brute_median(averages)


@given(st.lists(values, min_size=1, max_size=100), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_every_interval_contains_its_estimate(xs: list[float], confidence: float) -> None:
    for interval in (wilcoxon_interval, sign_interval):
        low, estimate, high = interval(xs, confidence)
        assert low <= estimate <= high


@given(st.lists(values, min_size=8, max_size=60))
def test_a_higher_confidence_never_gives_a_narrower_interval(xs: list[float]) -> None:
    narrow = wilcoxon_interval(xs, 0.9)
    wide = wilcoxon_interval(xs, 0.99)
    assert wide[0] <= narrow[0] and narrow[2] <= wide[2]


@pytest.mark.parametrize(
    ("n", "sampler"),
    [
        (12, lambda rng: rng.gauss(0, 1)),
        (40, lambda rng: rng.gauss(0, 1)),
        (40, lambda rng: rng.gauss(0, 1) / max(0.05, abs(rng.gauss(0, 1)))),  # heavy tails
        (80, lambda rng: rng.gauss(0, 1)),  # normal approximation
        (100, lambda rng: rng.expovariate(1) - rng.expovariate(1)),  # Laplace
    ],
    ids=["n12", "n40", "n40-heavy-tailed", "n80-normal-approx", "n100-laplace"],
)
def test_wilcoxon_interval_covers_the_true_centre_about_as_often_as_claimed(
    n: int, sampler: Callable[[random.Random], float]
) -> None:
    rng = random.Random(1000 + n)
    trials = 300 if n < 60 else 200
    covered = 0
    for _ in range(trials):
        low, _, high = wilcoxon_interval([sampler(rng) for _ in range(n)], 0.9)
        covered += low <= 0.0 <= high
    # Seeded trials: a coverage of 0.9 lands within about three standard errors (±0.06).
    assert 0.83 <= covered / trials <= 0.97


@pytest.mark.parametrize("n", [10, 25, 101])
def test_sign_interval_covers_the_true_median_about_as_often_as_claimed(n: int) -> None:
    rng = random.Random(n)
    trials = 300
    covered = sum(
        low <= 0.0 <= high
        for low, _, high in (
            sign_interval([rng.expovariate(1) - math.log(2) for _ in range(n)], 0.9) for _ in range(trials)
        )
    )
    assert 0.85 <= covered / trials <= 0.995


@pytest.mark.parametrize("n", range(1, 30))
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_sign_interval_uses_the_binomial_order_statistics(n: int, confidence: float) -> None:
    xs = [float(i) for i in range(n)]
    low, centre, high = sign_interval(xs, confidence)
    assert centre == brute_median(xs)
    alpha = 1 - confidence
    k = 0
    while k < n and sum(math.comb(n, j) for j in range(k + 1)) / 2**n <= alpha / 2:
        k += 1
    if k == 0:
        assert (low, high) == (-math.inf, math.inf)
    else:
        assert (low, high) == (xs[k - 1], xs[n - k])
        achieved = 1 - 2 * sum(math.comb(n, j) for j in range(k)) / 2**n
        assert achieved >= confidence - 1e-12


@given(st.integers(0, 5000), st.integers(1, 50), st.integers(1, 80))
def test_batch_slices_cover_the_pairs_in_order_in_near_equal_batches(n: int, min_size: int, batches: int) -> None:
    slices = stats.batch_slices(n, min_size=min_size, batches=batches)
    assert len(slices) <= batches
    if n < min_size:
        assert slices == []
        return
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in itertools.pairwise(slices))
    sizes = [s.stop - s.start for s in slices]
    assert min(sizes) >= min_size
    assert max(sizes) - min(sizes) <= 1
    # Below the cap every item (or group of min_size items) is a batch of its own.
    if n // min_size <= batches:
        assert len(slices) == n // min_size


def test_batch_slices_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="min_size >= 1"):
        stats.batch_slices(10, min_size=0)
