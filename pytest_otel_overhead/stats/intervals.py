"""Robust location estimates and distribution-free confidence intervals: pure functions on floats.

The engine's statistic is one number per pair of blocks (``ln(instrumented / baseline)`` or
``instrumented - baseline``). Noise on shared machines is heavy-tailed, so the estimate is the
Hodges–Lehmann estimator (median of Walsh averages) with the Wilcoxon signed-rank interval,
and the sign-test interval for the median where only a few pairs exist.

Consecutive pairs are not independent on a shared machine (load comes and goes over seconds), and
an interval that treats hundreds of them as independent comes out too narrow. Long runs are
therefore summarized in at most ``MAX_BATCHES`` contiguous batches first (the batch-means method of
simulation output analysis): each batch is one longer pair, and the interval is built from those.

A measurement spread over several processes combines one estimate per process: process state
(memory layout, allocator, what ran before) shifts each process's estimate by an offset that no
single process can see, so the combination is a random-effects one (``random_effects``), with
Student's t quantiles (``t_quantile``) for the few processes there are.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

__all__ = [
    "MAX_BATCHES",
    "Interval",
    "Pooled",
    "batch_slices",
    "dersimonian_laird",
    "hodges_lehmann",
    "mad_spread",
    "median",
    "quantile",
    "random_effects",
    "sign_interval",
    "standard_error",
    "t_cdf",
    "t_quantile",
    "walsh_order_statistic",
    "wilcoxon_interval",
]

Interval = tuple[float, float, float]
"""(low, estimate, high)."""

_EXACT_LIMIT = 60

MAX_BATCHES = 40
"""At most this many batches of consecutive pairs feed an interval; fewer pairs stay one per batch."""


def batch_slices(n: int, min_size: int = 1, batches: int = MAX_BATCHES) -> list[slice]:
    """Contiguous slices over ``range(n)``: at most ``batches`` of them, each of at least ``min_size``
    items, sizes differing by at most one; none when ``n < min_size``.

    >>> [(s.start, s.stop) for s in batch_slices(5, batches=2)]
    [(0, 2), (2, 5)]
    """
    if min_size < 1 or batches < 1:
        raise ValueError(f"batch_slices needs min_size >= 1 and batches >= 1, got {min_size} and {batches}")
    count = min(batches, max(0, n) // min_size)
    if count == 0:
        return []
    bounds = [round(k * n / count) for k in range(count + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(count) if bounds[k + 1] > bounds[k]]


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def quantile(ordered: Sequence[float], q: float) -> float:
    """Quantile ``q`` of already sorted values, by linear interpolation (NumPy's default)."""
    if not ordered:
        raise ValueError("quantile of no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mad_spread(values: Sequence[float]) -> float:
    """Median absolute deviation scaled to estimate a standard deviation under normal noise."""
    centre = median(values)
    return 1.4826 * median([abs(v - centre) for v in values])


def _row_ends(ordered: Sequence[float], pivot: float, *, strict: bool) -> tuple[list[int], int]:
    """Per row i, the last j >= i with x_i + x_j <= pivot (< pivot if ``strict``), i - 1 if none;
    and how many sums that makes.

    Sums grow along each row and down each column, so one pointer sweeping down serves all rows: O(n).
    """
    n = len(ordered)
    ends: list[int] = []
    count = 0
    j = n - 1
    for i in range(n):
        x = ordered[i]
        while j >= i and (x + ordered[j] >= pivot if strict else x + ordered[j] > pivot):
            j -= 1
        if j < i:  # this row and all below it have no sum on this side of the pivot
            ends.extend(range(i - 1, n - 1))
            break
        ends.append(j)
        count += j - i + 1
    return ends, count


def walsh_order_statistic(ordered: Sequence[float], k: int) -> float:
    """The k-th smallest (1-based) of the n(n+1)/2 Walsh averages of sorted values.

    Exact: the result is one of the averages ``(x_i + x_j) / 2``, bit for bit. Large inputs use
    selection over the pair sums with O(n) counts per round, so memory stays O(n) for thousands
    of pairs.
    """
    n = len(ordered)
    total = n * (n + 1) // 2
    if not 1 <= k <= total:
        raise ValueError(f"k={k} outside 1..{total}")
    if n <= _EXACT_LIMIT:
        averages = sorted((ordered[i] + ordered[j]) / 2 for i in range(n) for j in range(i, n))
        return averages[k - 1]
    # Sums x_i + x_j still in play are, per row i, those with j in first[i]..last[i], all within
    # [low, high]; ``below`` and ``above`` count the sums ruled out on either side. Selecting among
    # the sums, not settling on a midpoint, returns one of the averages bit for bit.
    first = list(range(n))
    last = [n - 1] * n
    below = above = 0
    low, high = ordered[0] + ordered[0], ordered[-1] + ordered[-1]
    rng = random.Random(n * 1_000_003 + k)  # seeded: the same data always takes the same path
    bisect = True
    while True:
        remaining = total - below - above
        if remaining <= n:
            sums = sorted(ordered[i] + ordered[j] for i in range(n) for j in range(first[i], last[i] + 1))
            return sums[k - below - 1] / 2
        # Halving the value range is quickest on ordinary data; where it stalls (values spanning
        # many magnitudes) a random sum still in play as pivot discards a fair share on average.
        pivot = low / 2 + high / 2
        if not bisect or not low <= pivot <= high:
            sizes = [last[i] - first[i] + 1 for i in range(n)]
            pick = rng.randrange(remaining)
            row = 0
            while pick >= max(0, sizes[row]):
                pick -= max(0, sizes[row])
                row += 1
            pivot = ordered[row] + ordered[first[row] + pick]
        at_most, count_at_most = _row_ends(ordered, pivot, strict=False)
        if count_at_most < k:
            discarded = count_at_most - below
            below, low = count_at_most, pivot
            first = [max(f, end + 1) for f, end in zip(first, at_most, strict=True)]
        else:
            under, count_under = _row_ends(ordered, pivot, strict=True)
            if count_under < k:
                return pivot / 2
            discarded = total - count_under - above
            above, high = total - count_under, pivot
            last = [min(stop, end) for stop, end in zip(last, under, strict=True)]
        bisect = 2 * discarded >= remaining


def hodges_lehmann(values: Sequence[float]) -> float:
    """Median of the Walsh averages: robust, and 95% as efficient as the mean under normal noise."""
    ordered = sorted(values)
    total = len(ordered) * (len(ordered) + 1) // 2
    if total == 0:
        raise ValueError("estimate of no values")
    if total % 2:
        return walsh_order_statistic(ordered, (total + 1) // 2)
    return (walsh_order_statistic(ordered, total // 2) + walsh_order_statistic(ordered, total // 2 + 1)) / 2


@lru_cache(maxsize=128)
def _signed_rank_cdf(n: int) -> tuple[float, ...]:
    """P(W+ <= w) for w = 0..n(n+1)/2 under the null, exact, by counting subsets of ranks."""
    total = n * (n + 1) // 2
    counts = [0] * (total + 1)
    counts[0] = 1
    for rank in range(1, n + 1):
        for w in range(total, rank - 1, -1):
            counts[w] += counts[w - rank]
    scale = 2.0**n
    cdf = []
    running = 0
    for c in counts:
        running += c
        cdf.append(running / scale)
    return tuple(cdf)


def _wilcoxon_depth(n: int, confidence: float) -> int:
    """Largest k with P(W+ <= k - 1) <= alpha / 2; 0 when no interval of this confidence exists."""
    alpha = 1.0 - confidence
    if n <= _EXACT_LIMIT:
        cdf = _signed_rank_cdf(n)
        k = 0
        while k < len(cdf) and cdf[k] <= alpha / 2:
            k += 1
        return k
    total = n * (n + 1) / 2
    sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return max(0, math.floor(total / 2 - z * sd + 0.5))


def wilcoxon_interval(values: Sequence[float], confidence: float) -> Interval:
    """Hodges–Lehmann estimate with its Wilcoxon signed-rank confidence interval.

    Exact below 60 values, normal approximation above. Without enough values for the requested
    confidence the interval is unbounded, so no verdict can be drawn from it.
    """
    ordered = sorted(values)
    n = len(ordered)
    estimate = hodges_lehmann(ordered)
    k = _wilcoxon_depth(n, confidence)
    if k < 1:
        return (-math.inf, estimate, math.inf)
    total = n * (n + 1) // 2
    low = walsh_order_statistic(ordered, k)
    high = walsh_order_statistic(ordered, total + 1 - k)
    return (min(low, estimate), estimate, max(high, estimate))


def sign_interval(values: Sequence[float], confidence: float) -> Interval:
    """Median with the distribution-free order-statistic (sign test) interval."""
    ordered = sorted(values)
    n = len(ordered)
    centre = median(ordered)
    alpha = 1.0 - confidence
    k = 0
    cumulative = 0.0
    for j in range(n + 1):
        cumulative += math.comb(n, j) / 2.0**n
        if cumulative > alpha / 2:
            break
        k = j + 1
    if k < 1:
        return (-math.inf, centre, math.inf)
    return (ordered[k - 1], centre, ordered[n - k])


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` (whole) degrees of freedom, in closed form.

    Abramowitz & Stegun 26.7.3 and 26.7.4: with θ = atan(t / √df), a finite series in cos θ.
    """
    if df < 1:
        raise ValueError(f"t distribution needs df >= 1, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:
        term = total = math.cos(theta) if df > 1 else 0.0
        for k in range(3, df - 1, 2):
            term *= (k - 1) / k * cos2
            total += term
        inside = 2 / math.pi * (theta + sin * total)
    else:
        term = total = 1.0
        for k in range(2, df - 1, 2):
            term *= (k - 1) / k * cos2
            total += term
        inside = sin * total
    inside = min(1.0, inside)  # P(|T| <= |t|); the series can round a hair past 1 far out in the tail
    return 0.5 + inside / 2 if t >= 0 else 0.5 - inside / 2


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on ``t_cdf``)."""
    if not 0 < p < 1:
        raise ValueError(f"quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return high


def standard_error(low: float, high: float, confidence: float) -> float:
    """The standard error that a normal-theory interval ``[low, high]`` at ``confidence`` implies.

    Infinite for an unbounded interval: such an estimate carries no weight of its own."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return math.inf
    return (high - low) / (2 * NormalDist().inv_cdf(1 - (1 - confidence) / 2))


def dersimonian_laird(estimates: Sequence[float], variances: Sequence[float]) -> float:
    """Between-process variance τ² by the DerSimonian–Laird moment estimate (0 when the estimates
    spread no more than their own variances explain); every variance must be positive and finite."""
    weights = [1 / v for v in variances]
    total = math.fsum(weights)
    mean = math.fsum(w * y for w, y in zip(weights, estimates, strict=True)) / total
    q = math.fsum(w * (y - mean) ** 2 for w, y in zip(weights, estimates, strict=True))
    scale = total - math.fsum(w * w for w in weights) / total
    return max(0.0, (q - (len(estimates) - 1)) / scale) if scale > 0 else 0.0


@dataclass(frozen=True)
class Pooled:
    """Per-process estimates combined: the mean over processes with its interval, and τ."""

    low: float
    estimate: float
    high: float
    tau: float
    """Between-process standard deviation: DerSimonian–Laird, or the estimates' own standard
    deviation where some process gave no standard error."""
    k: int


def random_effects(estimates: Sequence[float], standard_errors: Sequence[float], confidence: float) -> Pooled:
    """Random-effects combination of one estimate per process, each with its within-process standard error.

    Weights are ``1 / (se² + τ²)`` with τ² by DerSimonian–Laird; the interval is Hartung–Knapp's, a
    t interval with k − 1 degrees of freedom whose variance is scaled by the weighted spread of the
    estimates, never below the one the standard errors alone give (Röver et al., 2015). Processes
    that disagree therefore widen the interval, however precise each one is on its own. Where a
    standard error is unusable (unbounded, or zero), the processes weigh alike and this is the
    t interval of their mean. One estimate gives an unbounded interval.
    """
    k = len(estimates)
    if k != len(standard_errors) or k == 0:
        raise ValueError(f"random_effects needs as many standard errors as estimates, at least one; got {k}")
    if k == 1:
        return Pooled(-math.inf, estimates[0], math.inf, math.nan, 1)
    variances = [se * se for se in standard_errors]
    weighted = all(math.isfinite(v) and v > 0 for v in variances)
    tau2 = dersimonian_laird(estimates, variances) if weighted else math.nan
    weights = [1 / (v + tau2) for v in variances] if weighted else [1.0] * k
    total = math.fsum(weights)
    mean = math.fsum(w * y for w, y in zip(weights, estimates, strict=True)) / total
    spread = math.fsum(w * (y - mean) ** 2 for w, y in zip(weights, estimates, strict=True)) / (k - 1)
    if not weighted:
        tau2 = spread  # equal weights of 1: the estimates' sample variance
    variance = (max(1.0, spread) if weighted else spread) / total
    half = t_quantile(1 - (1 - confidence) / 2, k - 1) * math.sqrt(variance)
    return Pooled(mean - half, mean, mean + half, math.sqrt(tau2), k)
