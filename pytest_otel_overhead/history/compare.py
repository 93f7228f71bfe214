"""Did a change make telemetry more expensive? Two runs compared test by test, decided with intervals.

This module holds the comparison itself; ``criteria`` parses what may grow, ``shift`` holds the
two-sample statistics, ``machines`` the machine term and ``compare_lines`` the words. Their public
names are importable from here too.

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
  pair shows. So ``δ``'s interval is widened, on each side in quadrature, by ``z ×
  √(τ_earlier²/k_earlier + τ_later²/k_later)``: ``k`` is how many processes measured each run
  (``processes``), ``τ`` the between-process standard deviation of ``d`` that the run's own interval
  counted: measured over its processes, or the prior it used (``stats.process_term``: built-in, or
  calibrated on the runner), so the comparison widens by what applies to that test, not by a worst case;
  ``z`` is the t quantile of the fewer degrees of freedom behind the two spreads (the prior's, plus one
  per process beyond the first);
* a run measured over several processes on a busy machine counted the load once, beside its
  processes' spread (``stats.process_term.pool``): each such run adds that load term
  (``machines.busy_load``, ``MetricChange.load_term``) in quadrature, by ``z`` normal; one process's τ
  already holds it;
* when the runs were measured on machines that differ (CPU model, Python build, load:
  ``history.machines``), a time metric's ``δ`` is widened the same way by ``z × MACHINE_SPREAD`` (``z`` normal here)
  (in quadrature with the processes' term); so it is, test by test, when the test's baseline arm ran at
  another speed per call in the two runs (``machines.speed_spread``: one runner at two speeds); counts
  (``shift.COUNTED_METRICS``: estimated cycles, instructions) compare as equals, and estimated cycles
  only between runs that weighed them with the same cycle model;
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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from pytest_otel_overhead.formatting import (
    format_bytes,
    interval,
    interval_heading,
    percentage_points,
    signed_percent,
    signed_percent_or_dash,
    signed_whole_percent,
)
from pytest_otel_overhead.history.compare_lines import comparison_lines, describe_run, regression_message
from pytest_otel_overhead.history.criteria import (
    COMPARED_METRICS,
    Criterion,
    HeldOpen,
    corners,
    decide_criterion,
    held_open,
    idle_message,
    parse_criteria,
    points,
    relative,
)
from pytest_otel_overhead.history.machines import (
    busy_load,
    machine_differences,
    machine_term,
    speed_ratio,
    speed_spread,
)
from pytest_otel_overhead.history.shift import (
    COUNTED_METRICS,
    kept,
    layout_shift,
    log_ratios,
    model_problem,
    pairs_of,
    sample_problem,
    shift_interval,
)
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.results import METRIC_LABELS, TestResult
from pytest_otel_overhead.stats.intervals import Interval, hodges_lehmann, t_quantile, wilcoxon_interval
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM
from pytest_otel_overhead.stats.verdict import Verdict, combine, statistic_of

__all__ = [
    "COMPARED_METRICS",
    "Comparison",
    "Criterion",
    "MetricChange",
    "TestChange",
    "compare_results",
    "compare_runs",
    "comparison_lines",
    "describe_run",
    "environment_differences",
    "log_ratios",
    "parse_criteria",
    "process_spread",
    "regression_message",
    "sample_problem",
    "shift_interval",
]


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
    machine_term: float = 0.0
    """The half-width the machines' difference added to ``shift`` (log ratio, at its confidence); 0 when none."""
    load_term: float = 0.0
    """The half-width the runs' own load added to ``shift`` (busy runs pooled over processes); 0 when none."""
    speed: float | None = None
    """How many times as long per call the later run's baseline arm took, when that counted in ``machine_term``."""
    held_open: tuple[tuple[Criterion, HeldOpen], ...] = ()
    """The undecided criteria that one term alone left open (``criteria.held_open``), and which term."""

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
        change = f"{percentage_points(estimate)} ({interval_heading([self.confidence])} {bounds})"
        if self.relative is not None and math.isfinite(self.relative[1]):
            change += f", {signed_whole_percent(self.relative[1])} relative"
        if self.machine_term:
            change += f", machine term ±{signed_percent(math.expm1(self.machine_term)).lstrip('+')} included"
            if self.speed is not None:
                change += f" (baseline {self.speed:.2f}× as long per call)"
        if self.load_term:
            change += f", load term ±{signed_percent(math.expm1(self.load_term)).lstrip('+')} included"
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
    machine: tuple[str, ...] = ()
    """What sets the runs' machines apart for time figures (``machines.machine_differences``)."""

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
        return unusable + tuple(idle_message(c) for c in self.idle_criteria)


def process_spread(result: TestResult, metric: str, statistic: float) -> float:
    """The between-process standard deviation of the log ratio that ``result``'s interval of ``metric`` counted:
    measured over its processes, or the prior it used (built-in or calibrated); for a run saved before results
    recorded it, the built-in prior at ``statistic``, the run's log ratio as its pairs give it."""
    measured = result.metric(metric)
    if measured is None:
        return 0.0
    spread = measured.between_process_spread
    if spread is None or not math.isfinite(spread):
        return BUILT_IN_TERM.spread(statistic)
    if measured.kind == "relative":  # reported as expm1(τ) of the log ratio
        return statistic_of(spread, "relative")
    # An absolute spread (seconds per call) on the log ratio's scale, to first order.
    return spread / measured.instrumented if measured.instrumented > 0 else 0.0


def offsets_half_width(
    before: TestResult,
    after: TestResult,
    metric: str,
    each: float,
    machine: float,
    at: tuple[float, float],
    *,
    loads: bool = True,
) -> float:
    """How much the processes' offsets, the machines' difference and (with ``loads``) the runs' own load widen
    ``δ`` on each side, at ``each``; ``at`` holds the two runs' log ratios."""
    if metric in COUNTED_METRICS:
        # Instructions mode counts over layouts of its own and repeats on any machine: no term there.
        return 0.0
    # One test on one runner: a spread either run measured across its processes is as likely in the
    # other's, so the larger of the two counts for both (a run of one process cannot see its own offset).
    tau = max(process_spread(before, metric, at[0]), process_spread(after, metric, at[1]))
    level = 1 - (1 - each) / 2
    processes = (
        t_quantile(level, min(_term_df(before), _term_df(after)))
        * tau
        * math.sqrt(1 / max(before.processes, 1) + 1 / max(after.processes, 1))
    )
    load = math.hypot(busy_load(before, at[0]), busy_load(after, at[1])) if loads else 0.0
    return math.hypot(processes, _machine_half_width(each, math.hypot(machine, load)))


def _machine_half_width(each: float, machine: float) -> float:
    """How far the machines' term (standard deviation ``machine``, log ratio) moves each end of ``δ`` at ``each``."""
    return NormalDist().inv_cdf(1 - (1 - each) / 2) * machine


def _term_df(result: TestResult) -> int:
    """Degrees of freedom behind the spread a run counted: its prior's, and one per process beyond the first."""
    prior = result.settings.process_term.df
    return max(1, round(prior if math.isfinite(prior) else 1e6) + max(result.processes, 1) - 1)


def _with_process_offsets(shift: Interval, extra: float) -> Interval:
    """``shift`` widened on each side, in quadrature, by ``extra`` (see the module's docstring)."""
    low, estimate, high = shift
    if extra == 0:
        return shift
    return (
        estimate - math.hypot(estimate - low, extra),
        estimate,
        estimate + math.hypot(high - estimate, extra),
    )


def _metric_change(
    before: TestResult, after: TestResult, metric: str, criteria: Sequence[Criterion], confidence: float, machine: float
) -> MetricChange | None:
    """The change of one metric; ``None`` when neither run measured it (instructions in time mode)."""
    wanted = tuple(c for c in criteria if c.metric == metric)
    if not (kept(before, metric) or kept(after, metric)):
        return None
    pairs = len(pairs_of(before, metric)), len(pairs_of(after, metric))
    problem = (
        sample_problem(before, metric, "the earlier run")
        or sample_problem(after, metric, "the later run")
        or model_problem(before, after, metric)
    )
    if problem is None:
        try:
            return _measured_change(before, after, metric, wanted, confidence, machine)
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
    before: TestResult, after: TestResult, metric: str, criteria: Sequence[Criterion], confidence: float, machine: float
) -> MetricChange:
    d_before, d_after = log_ratios(before, metric), log_ratios(after, metric)
    each = 1 - (1 - confidence) / 2  # Bonferroni: two intervals, one joint statement
    a_low, a_est, a_high = wilcoxon_interval(d_before, each)
    paired = layout_shift(before, after, metric, each)
    raw_shift = paired if paired is not None else shift_interval(d_before, d_after, each)
    at = (a_est, a_est + raw_shift[1])
    speed = speed_ratio(before, after, metric)
    by_speed = 0.0 if metric in COUNTED_METRICS else speed_spread(speed, max(abs(at[0]), abs(at[1])))
    machines = math.hypot(machine, by_speed)
    extra = offsets_half_width(before, after, metric, each, machines, at)
    shift = _with_process_offsets(raw_shift, extra)
    without_machine = offsets_half_width(before, after, metric, each, 0.0, at)
    without_load = offsets_half_width(before, after, metric, each, machines, at, loads=False)
    with_machine = extra - without_machine
    with_load = without_machine - offsets_half_width(before, after, metric, each, 0.0, at, loads=False)
    change, relative_change = _change_intervals((a_low, a_est, a_high), shift)
    outcomes = tuple((criterion, decide_criterion(criterion, a_low, a_high, shift)) for criterion in criteria)
    narrower = (_with_process_offsets(raw_shift, without_machine), _with_process_offsets(raw_shift, without_load))
    open_by = tuple(
        (criterion, why)
        for criterion, verdict in outcomes
        if verdict is Verdict.INCONCLUSIVE and (why := held_open(criterion, (a_low, a_high), *narrower)) is not None
    )
    return MetricChange(
        metric=metric,
        before=math.expm1(a_est),
        after=math.expm1(hodges_lehmann(d_after)),
        points=change,
        relative=relative_change,
        shift=shift,
        n_before=len(pairs_of(before, metric)),
        n_after=len(pairs_of(after, metric)),
        confidence=confidence,
        outcomes=outcomes,
        machine_term=with_machine,
        speed=speed if by_speed > 0 else None,
        load_term=with_load,
        held_open=open_by,
    )


def _change_intervals(a: Interval, shift: Interval) -> tuple[Interval, Interval | None]:
    """The change in points and relative to the earlier overhead, over the box of ``a`` and ``shift``; the relative
    one only where the earlier overhead was above 0."""
    (a_low, a_est, a_high), (s_low, s_est, s_high) = a, shift
    estimate = points(a_est, s_est)
    if not all(math.isfinite(v) for v in (a_low, a_high, s_low, s_high)):
        return (-math.inf, estimate, math.inf), None
    change = (min(corners(a_low, a_high, s_low, points)), estimate, max(corners(a_low, a_high, s_high, points)))
    if a_low <= 0:
        return change, None
    low, high = min(corners(a_low, a_high, s_low, relative)), max(corners(a_low, a_high, s_high, relative))
    return change, (low, relative(a_est, s_est), high)


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
    before: TestResult | None,
    after: TestResult,
    criteria: Sequence[Criterion] = (),
    confidence: float = 0.95,
    *,
    machine: float = 0.0,
) -> TestChange:
    """Compare one test's results; ``before`` is ``None`` for a test the earlier run did not measure.

    ``machine`` is the machine term (``machines.machine_term``) when the runs' machines differ."""
    if before is None:
        return TestChange(after.nodeid, note="new: not measured in the compared run")
    changes = []
    for metric in COMPARED_METRICS:
        change = _metric_change(before, after, metric, criteria, confidence, machine)
        if change is not None:
            changes.append(change)
    note = None if changes else "no per-pair samples to compare"
    return TestChange(after.nodeid, tuple(changes), note, _settings_differences(before, after))


def compare_runs(
    before: RunRecord,
    after: RunRecord,
    criteria: Sequence[Criterion] = (),
    confidence: float = 0.95,
    *,
    machine: tuple[float, tuple[str, ...]] | None = None,
) -> Comparison:
    """Every test of ``after`` against the same test (by node id) in ``before``, with the machine term if due.

    ``machine`` is the term and what sets the machines apart when they were judged earlier (a session's
    gate judges them as it starts, and its end must say what the gate decided); otherwise from the records.
    """
    term, differences = machine if machine is not None else (machine_term(before, after), None)
    tests = tuple(
        compare_results(before.result(r.nodeid), r, criteria, confidence, machine=term) for r in after.results
    )
    measured = {r.nodeid for r in after.results}
    return Comparison(
        before=before,
        after=after,
        tests=tests,
        criteria=tuple(criteria),
        differences=tuple(environment_differences(before, after)),
        confidence=confidence,
        missing=tuple(r.nodeid for r in before.results if r.nodeid not in measured),
        machine=differences if differences is not None else machine_differences(before, after),
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
