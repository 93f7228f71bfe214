"""Did a change make telemetry more expensive? Two runs compared test by test, decided with intervals.

Method. Each run keeps, per test, the raw times of every pair of blocks; the statistic is ``d =
ln(instrumented / baseline)`` of CPU (or wall) time per call, taken per batch of consecutive pairs
once there are more than ``stats.MAX_BATCHES`` pairs, exactly as budgets are decided (neighbouring
pairs on a shared machine are not independent). Within a run the pairs share the machine's speed
at that moment, so ``d`` cancels the drift between runs that makes raw timings of two runs
incomparable. Between runs:

* ``a`` is the earlier run's location of ``d`` (Hodges–Lehmann), with its Wilcoxon signed-rank
  interval; the overhead then was ``exp(a) - 1``;
* ``δ`` is the shift of ``d`` from the earlier run to the later one: the two-sample
  Hodges–Lehmann estimate (median of all differences ``d_later[j] - d_earlier[i]``) with the
  interval from inverting the Wilcoxon–Mann–Whitney rank-sum test;
* each run was measured in its own process(es), and a process shifts ``d`` by an offset of its
  own (layout, allocator, what ran before; ``docs/method.md``, *Per-process offsets*) that no
  pair shows. So ``δ``'s interval is widened, on each side in quadrature, by ``z × τ ×
  √(1/k_earlier + 1/k_later)``: ``k`` is how many processes measured each run (``processes``),
  ``τ`` the between-process standard deviation of ``d``, the larger of what the runs measured
  over their processes and ``PROCESS_SPREAD_FLOOR``;
* both intervals are taken at ``1 - (1 - confidence) / 2`` (Bonferroni), so the box
  ``a × δ`` holds the true pair with at least ``confidence``;
* the change in percentage points is ``exp(a) * (exp(δ) - 1)``, the relative change of the
  overhead is ``(exp(a + δ) - 1) / (exp(a) - 1) - 1``; both are monotone in each of ``a`` and
  ``δ``, so their intervals are their extremes over the box's corners;
* a criterion (``cpu:+1pp``, ``cpu:+20%``) says REGRESSED (``Verdict.FAIL``) when the whole
  interval lies above the allowed growth, PASS when it lies below, INCONCLUSIVE otherwise, as
  budgets are decided within a run.

A metric whose samples cannot be used (none kept by one run, NaN or negative values) is reported
with the reason, and every criterion on it is undecided: a gate is never passed by skipping.

Without that term, two runs of unchanged code said REGRESSED under ``cpu:+1pp`` in 5 of 95
comparisons on real workloads (docs/accuracy.md): one process read ``manual`` at +5.9%, the next
at +8.1%, each with an interval of about ±1 point.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal

from pytest_otel_overhead.formatting import (
    format_bytes,
    interval,
    percentage_points,
    signed_percent_or_dash,
    signed_whole_percent,
)
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.results import METRIC_LABELS, TestResult
from pytest_otel_overhead.stats.intervals import Interval, batch_slices, hodges_lehmann, wilcoxon_interval
from pytest_otel_overhead.stats.verdict import Verdict, combine, decide, statistic_of
from pytest_otel_overhead.units import SettingsError

__all__ = [
    "COMPARED_METRICS",
    "PROCESS_SPREAD_FLOOR",
    "Comparison",
    "Criterion",
    "MetricChange",
    "TestChange",
    "compare_results",
    "compare_runs",
    "comparison_lines",
    "environment_differences",
    "log_ratios",
    "parse_criteria",
    "process_spread",
    "regression_message",
    "sample_problem",
    "shift_interval",
]

COMPARED_METRICS = ("cpu", "wall", "instructions")
"""The metrics whose raw per-pair samples are kept, and so the ones two runs can be compared on."""
_COLUMNS = {"cpu": (0, 1), "wall": (2, 3)}
_EXACT_LIMIT = 2500
_CRITERION = re.compile(r"^\s*([a-z_0-9]+)\s*:\s*\+?\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(pp|%)\s*$")


# ---------------------------------------------------------------------------------------------
# Criteria


@dataclass(frozen=True)
class Criterion:
    """How much a metric's overhead may grow: ``amount`` percentage points (``pp``) or relatively (``%``)."""

    metric: str
    amount: float
    unit: Literal["pp", "%"]

    def describe(self) -> str:
        return f"{self.metric}:+{self.amount * 100:g}{self.unit}"

    def allowed(self) -> str:
        if self.unit == "pp":
            return f"more than {self.amount * 100:g} percentage points"
        return f"more than {self.amount * 100:g}% of its earlier value"


def parse_criteria(values: str | Iterable[str], source: str) -> tuple[Criterion, ...]:
    """``"cpu:+1pp"``, ``"cpu:+1pp,wall:+20%"``, or several such strings; errors name ``source``."""
    texts = [values] if isinstance(values, str) else list(values)
    criteria: list[Criterion] = []
    for text in texts:
        for part in text.split(","):
            if not part.strip():
                continue
            match = _CRITERION.match(part.strip().lower())
            if not match:
                raise SettingsError(
                    f"{source}: {part.strip()!r} is not a regression criterion; write METRIC:+Npp (grew by more than "
                    "N percentage points) or METRIC:+N% (grew by more than N% of itself), e.g. cpu:+1pp"
                )
            metric, number, unit = match.group(1), float(match.group(2)), match.group(3)
            if metric not in COMPARED_METRICS:
                raise SettingsError(
                    f"{source}: {part.strip()!r}: runs keep per-pair samples of {', '.join(COMPARED_METRICS)} "
                    f"only, so only those can be compared"
                )
            if not math.isfinite(number) or number <= 0:
                raise SettingsError(f"{source}: {part.strip()!r}: the allowed growth must be above 0")
            criteria.append(Criterion(metric, number / 100, unit))  # type: ignore[arg-type]
    if not criteria:
        raise SettingsError(f"{source}: no criterion given; e.g. cpu:+1pp")
    return tuple(criteria)


# ---------------------------------------------------------------------------------------------
# Two-sample statistics


def _pairs(result: TestResult, metric: str) -> list[tuple[float, float]]:
    """(baseline, instrumented) of ``metric`` per pair: of blocks for times, of processes for instructions."""
    if metric == "instructions":
        return [(row[0], row[1]) for row in getattr(result, "instruction_samples", ())]
    b_col, i_col = _COLUMNS[metric]
    return [(row[b_col], row[i_col]) for row in result.samples]


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
    takes hundreds of them as independent comes out too narrow. Instruction counts come one pair
    per process, each its own statistic, as the instruction budget takes them. Pairs holding a
    value that is not a time or count are left out (:func:`sample_problem` names them); a batch
    without a positive value in both arms gives no statistic.
    """
    pairs = [(b, i) for b, i in _pairs(result, metric) if _readable(b) and _readable(i)]
    if metric == "instructions":
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
    pairs = _pairs(result, metric)
    if not pairs:
        return f"{run} kept no per-pair {label} samples"
    unreadable = sum(1 for b, i in pairs if not (_readable(b) and _readable(i)))
    if unreadable:
        return f"{unreadable} of {len(pairs)} pairs in {run} hold a {label} value that is NaN, negative or infinite"
    if not log_ratios(result, metric):
        return f"no pair in {run} has a {label} value above zero in both arms"
    return None


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


# ---------------------------------------------------------------------------------------------
# Comparing


@dataclass(frozen=True)
class MetricChange:
    """One metric of one test in two runs: how its overhead changed, with intervals and verdicts.

    Overheads and changes are fractions (0.031 = 3.1%, or 3.1 percentage points for ``points``).
    """

    metric: str
    before: float
    after: float
    points: Interval
    relative: Interval | None
    shift: Interval
    n_before: int
    n_after: int
    confidence: float
    outcomes: tuple[tuple[Criterion, Verdict], ...] = ()
    problem: str | None = None
    """Why the samples could not be compared (NaN or negative values, none kept); the figures are then
    NaN and unbounded, and every criterion on the metric is undecided."""

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    @property
    def verdict(self) -> Verdict | None:
        return combine(v for _, v in self.outcomes)

    @property
    def failed(self) -> tuple[Criterion, ...]:
        return tuple(c for c, v in self.outcomes if v is Verdict.FAIL)

    def describe(self) -> str:
        """``CPU +3.1% → +9.8%: +6.7pp (95% CI [+6.0pp, +7.4pp])``, or why it could not be compared."""
        if self.problem is not None:
            return f"{self.label} not compared: {self.problem}"
        low, estimate, high = self.points
        bounds = interval(low, high, percentage_points)
        change = f"{percentage_points(estimate)} ({self.confidence * 100:g}% CI {bounds})"
        if self.relative is not None and math.isfinite(self.relative[1]):
            change += f", {signed_whole_percent(self.relative[1])} relative"
        return f"{self.label} {signed_percent_or_dash(self.before)} → {signed_percent_or_dash(self.after)}: {change}"


@dataclass(frozen=True)
class TestChange:
    """One test in both runs; ``note`` says why nothing was compared (a new test, no samples)."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    metrics: tuple[MetricChange, ...] = ()
    note: str | None = None
    settings_differences: tuple[str, ...] = ()

    @property
    def verdict(self) -> Verdict | None:
        return combine(m.verdict for m in self.metrics if m.verdict is not None)


@dataclass(frozen=True)
class Comparison:
    """A later run against an earlier one, test by test, with what differs between where they ran."""

    before: RunRecord
    after: RunRecord
    tests: tuple[TestChange, ...]
    criteria: tuple[Criterion, ...] = ()
    differences: tuple[str, ...] = ()
    confidence: float = 0.95
    missing: tuple[str, ...] = field(default=())

    @property
    def regressed(self) -> tuple[TestChange, ...]:
        return tuple(t for t in self.tests if t.verdict is Verdict.FAIL)

    def counts(self) -> dict[Verdict, int]:
        return {v: sum(1 for t in self.tests if t.verdict is v) for v in Verdict}

    @property
    def idle_criteria(self) -> tuple[Criterion, ...]:
        """Criteria no test was compared on: their metric was kept by no test in both runs, or every test is new."""
        applied = {c for test in self.tests for metric in test.metrics for c, _ in metric.outcomes}
        return tuple(c for c in self.criteria if c not in applied)

    @property
    def problems(self) -> tuple[str, ...]:
        """Warnings: each metric that could not be compared (the test, the metric, why), and each
        criterion that decided nothing, so that a gate never passes without a word."""
        unusable = tuple(
            f"{test.nodeid}: {metric.describe()}"
            + (f"; {', '.join(c.describe() for c, _ in metric.outcomes)} undecided" if metric.outcomes else "")
            for test in self.tests
            for metric in test.metrics
            if metric.problem is not None
        )
        return unusable + tuple(_idle(c) for c in self.idle_criteria)


def _idle(criterion: Criterion) -> str:
    label = METRIC_LABELS.get(criterion.metric, criterion.metric)
    return f"{criterion.describe()} decided nothing: no test was compared on {label}"


def _corners(a_low: float, a_high: float, delta: float, fn: Callable[[float, float], float]) -> list[float]:
    return [fn(a, delta) for a in (a_low, a_high)]


def _points(a: float, delta: float) -> float:
    return math.exp(a) * math.expm1(delta)


def _relative(a: float, delta: float) -> float:
    return math.expm1(a + delta) / math.expm1(a) - 1


def _criterion_margin(criterion: Criterion, a: float, delta: float) -> float:
    """Positive when the change at (a, δ) is more than the criterion allows."""
    if criterion.unit == "pp":
        return _points(a, delta) - criterion.amount
    return math.expm1(a + delta) - (1 + criterion.amount) * math.expm1(a)


PROCESS_SPREAD_FLOOR = 0.02
"""The between-process standard deviation of ``ln(instrumented / baseline)`` assumed when the runs
show none larger: the largest measured on the real workloads (0.017, sqlite3 with 21 spans a
call; 0.005–0.007 for the others; docs/accuracy.md), rounded up."""


def process_spread(result: TestResult, metric: str) -> float:
    """The between-process standard deviation of the log ratio ``result`` measured for ``metric``, or 0."""
    measured = result.metric(metric)
    if measured is None or measured.between_process_spread is None:
        return 0.0
    spread = measured.between_process_spread
    if not math.isfinite(spread):
        return 0.0
    if measured.kind == "relative":  # the combination reported it as expm1(τ) of the log ratio
        return statistic_of(spread, "relative")
    # An absolute spread (seconds per call) on the log ratio's scale, to first order.
    return spread / measured.instrumented if measured.instrumented > 0 else 0.0


def _with_process_offsets(shift: Interval, before: TestResult, after: TestResult, metric: str, each: float) -> Interval:
    """``shift`` widened on each side by the processes' offsets (see the module's docstring)."""
    low, estimate, high = shift
    # Instructions mode counts over layouts of its own and repeats within 0.05%: no floor there.
    floor = PROCESS_SPREAD_FLOOR if metric in _COLUMNS else 0.0
    tau = max(floor, process_spread(before, metric), process_spread(after, metric))
    if tau == 0:
        return shift
    z = NormalDist().inv_cdf(1 - (1 - each) / 2)
    extra = z * tau * math.sqrt(1 / max(before.processes, 1) + 1 / max(after.processes, 1))
    return (
        estimate - math.hypot(estimate - low, extra),
        estimate,
        estimate + math.hypot(high - estimate, extra),
    )


def _metric_change(
    before: TestResult, after: TestResult, metric: str, criteria: Sequence[Criterion], confidence: float
) -> MetricChange | None:
    """The change of one metric; ``None`` when neither run measured it (instructions in time mode)."""
    wanted = tuple(c for c in criteria if c.metric == metric)
    pairs = len(_pairs(before, metric)), len(_pairs(after, metric))
    if not any(pairs):
        return None
    problem = sample_problem(before, metric, "the earlier run") or sample_problem(after, metric, "the later run")
    if problem is None:
        try:
            return _measured_change(before, after, metric, wanted, confidence)
        except ArithmeticError:  # ratios so extreme that exp() overflows: no figure can stand for them
            problem = "its overheads are too large to compute with"
    return MetricChange(
        metric=metric,
        before=math.nan,
        after=math.nan,
        points=(-math.inf, math.nan, math.inf),
        relative=None,
        shift=(-math.inf, math.nan, math.inf),
        n_before=pairs[0],
        n_after=pairs[1],
        confidence=confidence,
        outcomes=tuple((c, Verdict.INCONCLUSIVE) for c in wanted),
        problem=problem,
    )


def _measured_change(
    before: TestResult, after: TestResult, metric: str, criteria: Sequence[Criterion], confidence: float
) -> MetricChange:
    d_before, d_after = log_ratios(before, metric), log_ratios(after, metric)
    each = 1 - (1 - confidence) / 2  # Bonferroni: two intervals, one joint statement
    a_low, a_est, a_high = wilcoxon_interval(d_before, each)
    shift = _with_process_offsets(shift_interval(d_before, d_after, each), before, after, metric, each)
    s_low, s_est, s_high = shift
    bounded = all(math.isfinite(v) for v in (a_low, a_high, s_low, s_high))
    estimate = _points(a_est, s_est)
    if bounded:
        points: Interval = (
            min(_corners(a_low, a_high, s_low, _points)),
            estimate,
            max(_corners(a_low, a_high, s_high, _points)),
        )
    else:
        points = (-math.inf, estimate, math.inf)
    relative: Interval | None = None
    if a_low > 0 and bounded:
        relative = (
            min(_corners(a_low, a_high, s_low, _relative)),
            _relative(a_est, s_est),
            max(_corners(a_low, a_high, s_high, _relative)),
        )
    outcomes = []
    for criterion in criteria:
        if not bounded:
            outcomes.append((criterion, Verdict.INCONCLUSIVE))
            continue
        lowest = min(_criterion_margin(criterion, a, s_low) for a in (a_low, a_high))
        highest = max(_criterion_margin(criterion, a, s_high) for a in (a_low, a_high))
        outcomes.append((criterion, decide(lowest, highest, 0.0)))
    return MetricChange(
        metric=metric,
        before=math.expm1(a_est),
        after=math.expm1(hodges_lehmann(d_after)),
        points=points,
        relative=relative,
        shift=shift,
        n_before=len(_pairs(before, metric)),
        n_after=len(_pairs(after, metric)),
        confidence=confidence,
        outcomes=tuple(outcomes),
    )


_PIPELINE_KEYS = (
    "sampler",
    "sample_rate",
    "processor",
    "batch_size",
    "schedule_delay_ms",
    "queue_size",
    "export_timeout_ms",
    "exporter",
)


def _settings_differences(before: TestResult, after: TestResult) -> tuple[str, ...]:
    b, a = before.settings.pipeline.as_dict(), after.settings.pipeline.as_dict()
    return tuple(f"{key} {b.get(key)} → {a.get(key)}" for key in _PIPELINE_KEYS if b.get(key) != a.get(key))


def compare_results(
    before: TestResult | None, after: TestResult, criteria: Sequence[Criterion] = (), confidence: float = 0.95
) -> TestChange:
    """Compare one test's results; ``before`` is ``None`` for a test the earlier run did not measure."""
    if before is None:
        return TestChange(after.nodeid, note="new: not measured in the compared run")
    changes = []
    for metric in COMPARED_METRICS:
        change = _metric_change(before, after, metric, criteria, confidence)
        if change is not None:
            changes.append(change)
    note = None if changes else "no per-pair samples to compare"
    return TestChange(after.nodeid, tuple(changes), note, _settings_differences(before, after))


def compare_runs(
    before: RunRecord, after: RunRecord, criteria: Sequence[Criterion] = (), confidence: float = 0.95
) -> Comparison:
    """Every test of ``after`` against the same test (by node id) in ``before``."""
    tests = tuple(compare_results(before.result(r.nodeid), r, criteria, confidence) for r in after.results)
    measured = {r.nodeid for r in after.results}
    return Comparison(
        before=before,
        after=after,
        tests=tests,
        criteria=tuple(criteria),
        differences=tuple(environment_differences(before, after)),
        confidence=confidence,
        missing=tuple(r.nodeid for r in before.results if r.nodeid not in measured),
    )


_ENVIRONMENT_FIELDS = (
    ("implementation", "Python implementation"),
    ("python", "Python"),
    ("machine", "architecture"),
    ("platform", "platform"),
    ("cpu_count", "CPU count"),
    ("memory_bytes", "memory"),
)
_PACKAGES = ("opentelemetry-api", "opentelemetry-sdk", "pytest-otel-overhead")


def _show(key: str, value: object) -> str:
    if key == "memory_bytes" and isinstance(value, (int, float)):
        return format_bytes(value)
    return str(value)


def environment_differences(before: RunRecord, after: RunRecord) -> list[str]:
    """What differs between where two runs were measured: machine, Python, OpenTelemetry and plugin versions."""
    out = []
    for key, label in _ENVIRONMENT_FIELDS:
        b, a = before.environment.get(key), after.environment.get(key)
        if b is not None and a is not None and b != a:
            out.append(f"{label} {_show(key, b)} → {_show(key, a)}")
    b_cpu, a_cpu = before.machine.get("cpu_model"), after.machine.get("cpu_model")
    if b_cpu and a_cpu and b_cpu != a_cpu:
        out.append(f"CPU {b_cpu} → {a_cpu}")
    b_packages = before.environment.get("packages") or {}
    a_packages = after.environment.get("packages") or {}
    if isinstance(b_packages, dict) and isinstance(a_packages, dict):
        for name in _PACKAGES:
            b, a = b_packages.get(name), a_packages.get(name)
            if b is not None and a is not None and b != a:
                out.append(f"{name} {b} → {a}")
    return out


# ---------------------------------------------------------------------------------------------
# Words


def describe_run(run: RunRecord) -> str:
    """``run 'main' (saved 2025-01-01T12:00:00+00:00, commit 1a2b3c4d5e)``."""
    parts = [f"saved {run.created}" if run.created else None, f"commit {run.commit}" if run.commit else None]
    details = ", ".join(p for p in parts if p)
    return f"run {run.label!r}" + (f" ({details})" if details else "")


def regression_message(change: TestChange, comparison: Comparison) -> str:
    """Why a test fails its regression criteria, in one paragraph."""
    sentences = []
    for metric in change.metrics:
        for criterion in metric.failed:
            sentences.append(f"{metric.describe()}; grew by {criterion.allowed()} ({criterion.describe()})")
    text = "; ".join(sentences) + f" — compared with {describe_run(comparison.before)}"
    if comparison.differences:
        text += "; the runs differ: " + ", ".join(comparison.differences)
    return text


def comparison_lines(comparison: Comparison) -> list[str]:
    """The comparison as terminal lines: per test and metric the change with its interval and verdict."""
    criteria = ", ".join(c.describe() for c in comparison.criteria)
    lines = [
        f"compared with {describe_run(comparison.before)}" + (f"; fail on growth beyond {criteria}" if criteria else "")
    ]
    if comparison.differences:
        lines.append("  WARNING the runs differ: " + "; ".join(comparison.differences))
    for test in comparison.tests:
        if test.note:
            lines.append(f"  {test.nodeid}  {test.note}")
            continue
        lines.append(f"  {test.nodeid}" + (f"  {_outcome(test.verdict)}" if test.verdict else ""))
        if test.settings_differences:
            lines.append("      WARNING settings differ: " + "; ".join(test.settings_differences))
        for metric in test.metrics:
            verdicts = ", ".join(f"{_outcome(v)} {c.describe()}" for c, v in metric.outcomes)
            lines.append(
                ("      WARNING " if metric.problem is not None else "      ")
                + f"{metric.describe()}  [{metric.n_before} vs {metric.n_after} pairs]"
                + (f"  {verdicts}" if verdicts else "")
            )
    if comparison.missing:
        lines.append(f"  not measured in this run: {', '.join(comparison.missing)}")
    lines += [f"  WARNING {_idle(criterion)}" for criterion in comparison.idle_criteria]
    if comparison.criteria:
        counts = comparison.counts()
        lines.append(
            f"{sum(counts.values())} compared: {counts[Verdict.FAIL]} regressed, {counts[Verdict.PASS]} within "
            f"{criteria}, {counts[Verdict.INCONCLUSIVE]} undecided"
        )
    return lines


def _outcome(verdict: Verdict | None) -> str:
    return {Verdict.FAIL: "REGRESSED", Verdict.PASS: "OK", Verdict.INCONCLUSIVE: "UNDECIDED", None: ""}[verdict]
