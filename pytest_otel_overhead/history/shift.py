"""Two-sample statistics of a comparison: a run's per-pair log ratios, and the shift between two runs' ratios.

``pairs_of`` reads a result's raw samples of a metric (times per block, counts and estimated cycles per
process), ``log_ratios`` turns them into the statistic budgets are decided on;
``shift_interval`` is the two-sample Hodges–Lehmann estimate of how far that statistic moved from
one run to the next, with the distribution-free interval of the Wilcoxon–Mann–Whitney test;
``layout_shift`` the paired one, layout by layout, for counts taken in the same memory layouts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from pytest_otel_overhead.results import METRIC_LABELS, TestResult
from pytest_otel_overhead.results.cycle_model import INSTRUCTION_COLUMNS
from pytest_otel_overhead.stats.intervals import Interval, batch_slices, wilcoxon_interval

__all__ = [
    "COUNTED_METRICS",
    "TIME_COLUMNS",
    "kept",
    "layout_shift",
    "log_ratios",
    "model_problem",
    "pairs_of",
    "sample_problem",
    "shift_interval",
]

TIME_COLUMNS = {"cpu": (0, 1), "wall": (2, 3)}
"""Per time metric, the (baseline, instrumented) columns of a result's raw samples."""
COUNTED_METRICS = ("cycles", "instructions")
"""Metrics counted under valgrind (instructions mode): one pair per process, over layouts of the run's own, and
the same on any machine, loaded or not, so compared without a per-process or machine term."""
_EXACT_LIMIT = 2500


def _instruction_rows(result: TestResult) -> tuple[tuple[float, ...], ...]:
    return getattr(result, "instruction_samples", ())


def pairs_of(result: TestResult, metric: str) -> list[tuple[float, float]]:
    """(baseline, instrumented) of ``metric`` per pair: of blocks for times, of processes for counts.

    Estimated cycles are the run's own: its rows' instructions and misses under the ``cycle_model`` it
    counted with. Rows without cache counts (runs saved before them) give none (:func:`sample_problem`)."""
    if metric == "instructions":
        return [(row[0], row[1]) for row in _instruction_rows(result)]
    if metric == "cycles":
        model = getattr(result, "cycle_model", None)
        rows = _instruction_rows(result)
        if model is None or any(len(row) != len(INSTRUCTION_COLUMNS) for row in rows):
            return []
        return [model.arms(row) for row in rows]
    b_col, i_col = TIME_COLUMNS[metric]
    return [(row[b_col], row[i_col]) for row in result.samples]


def kept(result: TestResult, metric: str) -> int:
    """How many rows of raw samples ``result`` kept for ``metric``, usable or not: 0 when it did not measure it."""
    return len(_instruction_rows(result)) if metric in COUNTED_METRICS else len(result.samples)


def _readable(value: float) -> bool:
    """A time per call or a count: what the engine records is never NaN, infinite or negative."""
    return math.isfinite(value) and value >= 0


def _mean(values: Sequence[float]) -> float:
    return math.fsum(v / len(values) for v in values)  # divided first: a sum of huge values must not overflow


def log_ratios(result: TestResult, metric: str) -> list[float]:
    """The statistic budgets are decided on, from the raw samples: ``ln(instrumented / baseline)``.

    Times go in batches of consecutive pairs, the arms' mean per batch (``stats.batch_slices``: at
    most ``MAX_BATCHES`` batches, one pair each up to that many pairs), as the engine batches them
    for budgets: neighbouring pairs on a shared machine are not independent, and an interval that
    takes hundreds of them as independent comes out too narrow. Counts (``COUNTED_METRICS``) come one
    pair per process, each its own statistic, as the instruction budget takes them. Pairs holding a
    value that is not a time or count are left out (:func:`sample_problem` names them); a batch
    without a positive value in both arms gives no statistic.
    """
    pairs = [(b, i) for b, i in pairs_of(result, metric) if _readable(b) and _readable(i)]
    if metric in COUNTED_METRICS:
        groups = [[pair] for pair in pairs]
    else:
        groups = [pairs[batch] for batch in batch_slices(len(pairs))]
    values = []
    for group in groups:
        b, i = _mean([p[0] for p in group]), _mean([p[1] for p in group])
        if b > 0 and i > 0:
            values.append(math.log(i) - math.log(b))  # not log(i / b): that ratio may overflow
    return values


def sample_problem(result: TestResult, metric: str, run: str) -> str | None:
    """Why ``result``'s samples of ``metric`` cannot be compared (``run`` names the run), or ``None``."""
    label = METRIC_LABELS.get(metric, metric)
    pairs = pairs_of(result, metric)
    if not pairs and metric == "cycles" and _instruction_rows(result):
        if any(len(row) != len(INSTRUCTION_COLUMNS) for row in _instruction_rows(result)):
            return (
                f"{run} counted instructions only (saved before the cache simulation), so estimated cycles "
                "cannot be compared; instructions are"
            )
        return f"{run} records no cycle model, so its counts cannot be weighed into estimated cycles"
    if not pairs:
        return f"{run} kept no per-pair {label} samples"
    unreadable = sum(1 for b, i in pairs if not (_readable(b) and _readable(i)))
    if unreadable:
        return f"{unreadable} of {len(pairs)} pairs in {run} hold a {label} value that is NaN, negative or infinite"
    if not log_ratios(result, metric):
        return f"no pair in {run} has a {label} value above zero in both arms"
    return None


def model_problem(before: TestResult, after: TestResult, metric: str) -> str | None:
    """Why two runs' estimated cycles are not comparable as equals (their cycle models differ), or ``None``."""
    earlier, later = getattr(before, "cycle_model", None), getattr(after, "cycle_model", None)
    if metric != "cycles" or earlier is None or later is None or earlier == later:
        return None
    differences = "; ".join(earlier.differences(later))
    return f"the runs estimate cycles with different models ({differences}); instructions are compared"


def _count_at_most(x: Sequence[float], y: Sequence[float], t: float) -> int:
    """How many differences ``y[j] - x[i]`` are <= t; both sorted; O(m + n) with two pointers."""
    m = len(x)
    count = 0
    i = 0  # first index with x[i] >= y[j] - t; moves right as j grows
    for value in y:
        bound = value - t
        while i < m and x[i] < bound:
            i += 1
        count += m - i
    return count


def _difference_order_statistic(x: Sequence[float], y: Sequence[float], k: int, *, exact: bool | None = None) -> float:
    """The k-th smallest (1-based) of the m·n differences ``y[j] - x[i]`` of sorted samples."""
    m, n = len(x), len(y)
    if not 1 <= k <= m * n:
        raise ValueError(f"k={k} outside 1..{m * n}")
    if exact is None:
        exact = m * n <= _EXACT_LIMIT
    if exact:
        return sorted(b - a for a in x for b in y)[k - 1]
    low, high = y[0] - x[-1], y[-1] - x[0]
    if _count_at_most(x, y, low) >= k:
        return low
    for _ in range(200):
        mid = (low + high) / 2
        if mid in (low, high):
            break
        if _count_at_most(x, y, mid) >= k:
            high = mid
        else:
            low = mid
    return high


def _rank_sum_cdf(m: int, n: int) -> list[float]:
    """P(U <= u) for u = 0..m·n, U the Mann–Whitney statistic under the null, exact.

    The counts are the coefficients of the Gaussian binomial [m+n choose m](q), built as the
    product of (1 - q^(n+i)) / (1 - q^i) for i = 1..m.
    """
    size = m * n
    counts = [0] * (size + 1)
    counts[0] = 1
    for i in range(1, m + 1):
        step = n + i
        for u in range(size, step - 1, -1):
            counts[u] -= counts[u - step]
        for u in range(i, size + 1):
            counts[u] += counts[u - i]
    total = math.comb(m + n, m)
    cdf = []
    running = 0
    for c in counts:
        running += c
        cdf.append(running / total)
    return cdf


def _rank_sum_depth(m: int, n: int, confidence: float) -> int:
    """Largest k with P(U <= k - 1) <= alpha / 2; 0 when no interval of this confidence exists."""
    alpha = 1.0 - confidence
    if m * n <= _EXACT_LIMIT:
        cdf = _rank_sum_cdf(m, n)
        k = 0
        while k < len(cdf) and cdf[k] <= alpha / 2:
            k += 1
        return k
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return max(0, math.floor(m * n / 2 - z * sd + 0.5))


def shift_interval(before: Sequence[float], after: Sequence[float], confidence: float) -> Interval:
    """(low, estimate, high) of the shift in location from ``before`` to ``after``.

    Two-sample Hodges–Lehmann estimate with the distribution-free interval from the
    Wilcoxon–Mann–Whitney test (exact for m·n <= 2500, normal approximation above). Without
    enough values for the requested confidence the interval is unbounded.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} outside (0, 1)")
    x, y = sorted(before), sorted(after)
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        return (-math.inf, math.nan, math.inf)
    total = m * n
    if total % 2:
        estimate = _difference_order_statistic(x, y, (total + 1) // 2)
    else:
        estimate = (
            _difference_order_statistic(x, y, total // 2) + _difference_order_statistic(x, y, total // 2 + 1)
        ) / 2
    k = _rank_sum_depth(m, n, confidence)
    if k < 1:
        return (-math.inf, estimate, math.inf)
    low = _difference_order_statistic(x, y, k)
    high = _difference_order_statistic(x, y, total + 1 - k)
    return (min(low, estimate), estimate, max(high, estimate))


def layout_shift(before: TestResult, after: TestResult, metric: str, confidence: float) -> Interval | None:
    """(low, estimate, high) of the shift of a count from ``before`` to ``after``, layout by layout; ``None``
    unless both runs counted it in the same layouts.

    Layout ``k`` is the same heap padding, stack depth and seeds in every run (instructions mode seeds
    it with ``k``), and layouts differ from each other by far more than a run repeats one: paired, the
    differences leave that spread out. The runs hold the same layouts when they kept as many rows, in
    layout order, and every row gave a ratio; otherwise :func:`shift_interval` compares them as samples.
    """
    if metric not in COUNTED_METRICS:
        return None
    earlier, later = log_ratios(before, metric), log_ratios(after, metric)
    if not earlier or not len(earlier) == len(later) == kept(before, metric) == kept(after, metric):
        return None
    return wilcoxon_interval([y - x for x, y in zip(earlier, later, strict=True)], confidence)
