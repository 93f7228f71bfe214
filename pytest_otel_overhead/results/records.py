"""The results of one measurement: small immutable records that reports and history read.

Each record writes and reads its document form through ``wire.document``, driven by its fields:
a field's metadata (``form(...)``) says where that form differs, its docstring what it means
(docs/json-schema.md is written from both).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

from pytest_otel_overhead.formatting import finite_or_none
from pytest_otel_overhead.otel.health import PipelineHealth
from pytest_otel_overhead.results.cycle_model import INSTRUCTION_COLUMNS, CacheLevel, CycleModel
from pytest_otel_overhead.results.display import (
    AGAINST_ARMS_MARK,
    HEAP_BYTES_BELOW,
    format_interval,
    format_overhead,
    format_value,
    metric_label,
)
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.process_term import TermSource
from pytest_otel_overhead.stats.verdict import Verdict, combine
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire.checks import (
    Malformed,
    describe,
    read_entries,
    read_field,
    read_list,
    read_number,
    read_object,
    read_rows,
)
from pytest_otel_overhead.wire.document import to_document
from pytest_otel_overhead.wire.fields import Derived
from pytest_otel_overhead.wire.form import form
from pytest_otel_overhead.wire.text import TextEnum

__all__ = [
    "FAILED_EXPORTS",
    "NO_TELEMETRY",
    "OTHER_OUTCOMES",
    "UNITS",
    "CacheLevel",
    "CycleModel",
    "MetricResult",
    "ProcessProbe",
    "Replica",
    "StopReason",
    "TestResult",
]

UNITS = {"heap": "bytes", "instructions": "instructions", "cycles": "cycles"}
NO_TELEMETRY = "NO_TELEMETRY"
"""The outcome of a measurement whose instrumented arm recorded no telemetry: its figures compare
two identical arms, whatever the verdict of its budgets says."""
FAILED_EXPORTS = "FAILED_EXPORTS"
"""The outcome of a measurement in which every export of the diagnostic round failed: the instrumented arm
measured a pipeline whose telemetry reached no backend, whatever the verdict of its budgets says."""
OTHER_OUTCOMES = (NO_TELEMETRY, FAILED_EXPORTS)
"""The outcomes beyond the verdicts, in the order the summaries count them."""


def read_confidence(value: object) -> float:
    confidence = read_number(value)
    if not 0 < confidence < 1:
        raise Malformed(f"{describe(value)} is not a confidence (between 0 and 1)")
    return confidence


@dataclass(frozen=True)
class MetricResult:
    """One metric in both arms, the overhead with its interval and, when budgeted, the verdict.

    ``baseline`` and ``instrumented`` are per call (seconds, or bytes for heap). ``overhead``,
    ``ci_low`` and ``ci_high`` are fractions (0.073 = 7.3%) for a relative budget or with no budget,
    and seconds or bytes per call for an absolute one (``kind``).
    """

    metric: str
    """The metric's name, also its key in the document (``cpu``, ``wall``, ``heap``...)."""
    baseline: float
    """Per call in the baseline arm (median over blocks; the quantile for latencies)."""
    instrumented: float
    """The same in the instrumented arm."""
    overhead: float
    """Estimate: Hodges–Lehmann of the paired statistic (median of pairs for heap), as a fraction or absolute."""
    ci_low: float = field(metadata=form(null=-math.inf))
    """Lower end of its confidence interval; null = unbounded."""
    ci_high: float = field(metadata=form(null=math.inf))
    """Upper end; null = unbounded."""
    kind: str = field(metadata=form(key="overhead_kind"))
    """``"relative"`` or ``"absolute"``, following the metric's budget (relative when unbudgeted)."""
    n: int
    """Number of paired statistics behind the interval: pairs, or past 40 pairs the batches of consecutive pairs
    (latency: groups)."""
    spread: float
    """Pair-to-pair spread (scaled MAD) on the overhead's scale."""
    confidence: float = field(metadata=form(read=read_confidence))
    """Confidence of the interval over all looks, e.g. ``0.95``."""
    budget: Budget | None = None
    """``{"kind", "value"}`` as in ``settings.budgets``; null when the metric has none."""
    verdict: Verdict | None = None
    """``"PASS"``, ``"FAIL"``, ``"INCONCLUSIVE"``; null when the metric has no budget."""
    resolution: float | None = None
    """For an undecided budget, the interval's half-width: the smallest difference from the budget this run could
    resolve."""
    note: str | None = None
    """Why a budget could not be decided, or another caveat; over several processes, how their estimates compare."""
    between_process_spread: float | None = None
    """The between-process standard deviation of the overhead that the interval counts, on the overhead's scale:
    the prior's (built-in or calibrated) in one process, pooled with the processes' own spread over several
    (``n`` then counts processes and ``spread`` is the median of their pair-to-pair spreads); ``None`` where no
    such term applies (instruction counts, heap, a process measuring one share of a measurement)."""
    between_process_source: TermSource | None = None
    """Where that term came from: ``"built-in"``, ``"calibrated"`` or ``"measured"`` (pooled over processes)."""
    process_ci_low: float | None = None
    """In one process, the lower end of the interval of its own pairs, before the between-process term; else
    ``None``."""
    process_ci_high: float | None = None
    """The upper end of that interval."""

    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived(
            "unit",
            "string",
            '`"seconds"`, `"bytes"`, `"instructions"` or `"cycles"` (estimated): unit of `baseline`, `instrumented` '
            "and of absolute overheads",
            lambda metric: UNITS.get(metric.metric, "seconds"),
        ),
    )

    @property
    def label(self) -> str:
        return metric_label(self.metric)

    def format_value(self, value: float) -> str:
        return format_value(self.metric, value)

    def format_overhead(self, value: float) -> str:
        """``+7.3%`` for a relative figure, ``+20.0 µs`` or ``+1.5 KiB`` for an absolute one."""
        return format_overhead(self.metric, self.kind, value)

    def format_estimate(self) -> str:
        """The overhead as tables show it: ``format_overhead``, marked when it goes ``against_arms``."""
        return self.format_overhead(self.overhead) + (AGAINST_ARMS_MARK if self.against_arms else "")

    def format_interval(self) -> str:
        """``[+6.1%, +8.4%]``; ``NO_FIGURE`` when no end is bounded (-100% is no bound on a ratio)."""
        return format_interval(self.kind, self.ci_low, self.ci_high, self.format_overhead)

    @functools.cached_property  # a frozen record's: a table row asks it several times
    def against_arms(self) -> bool:
        """Whether the estimate points the other way from the two arms' figures shown beside it.

        The estimate comes from pairs of blocks (or groups of them); each arm's figure is its own
        median, or its percentile over all calls. When the two disagree in sign the difference is
        within noise, and tables mark the estimate (``AGAINST_ARMS_MARK``) rather than let
        ``+1.2%`` stand unexplained next to a baseline above the instrumented figure.
        """
        if not all(math.isfinite(v) for v in (self.overhead, self.baseline, self.instrumented)):
            return False
        change = self.instrumented - self.baseline
        return (self.overhead > 0 and change < 0) or (self.overhead < 0 and change > 0)

    def for_display(self) -> MetricResult:
        """The metric as tables show it: a peak heap without a budget as the change between the arms' medians.

        Those medians stand in the same row; the paired estimate (median of per-pair ratios over a
        few heap pairs) can differ from them even in sign, and a row reading ``+7.2%`` next to a
        baseline above the instrumented figure reads as wrong. Below ``HEAP_BYTES_BELOW`` the change
        is in bytes. Budgeted metrics keep the estimate their verdict stands on.
        """
        if self.metric != "heap" or self.budget is not None or not (self.baseline > 0 and self.instrumented >= 0):
            return self
        if self.baseline < HEAP_BYTES_BELOW:
            change = self.instrumented - self.baseline
            return replace(self, overhead=change, ci_low=-math.inf, ci_high=math.inf, kind="absolute")
        return replace(self, overhead=self.instrumented / self.baseline - 1)

    def as_dict(self) -> dict[str, object]:
        return to_document(self)


@dataclass(frozen=True)
class ProcessProbe:
    """Process-level readings (psutil) in each arm, taken outside timed blocks."""

    rss_baseline: int = field(metadata=form(key="rss_baseline_bytes"))
    """Resident memory when measuring began."""
    rss_instrumented: int = field(metadata=form(key="rss_instrumented_bytes"))
    """Resident memory after the timed rounds (the instrumented pipeline up)."""
    threads_baseline: int
    """Threads of the process when measuring began."""
    threads_instrumented: int
    """Threads after the timed rounds, the instrumented pipeline up."""
    heap_retained_baseline: float = field(
        default=math.nan, metadata=form(key="heap_retained_per_call_baseline_bytes", required=False)
    )
    """Heap still held after a heap round, per call, baseline."""
    heap_retained_instrumented: float = field(
        default=math.nan, metadata=form(key="heap_retained_per_call_instrumented_bytes", required=False)
    )
    """The same, instrumented."""

    def as_dict(self) -> dict[str, object]:
        return to_document(self)


def _write_overheads(overheads: tuple[tuple[str, float, float, float], ...]) -> dict[str, object]:
    names = ("overhead", "ci_low", "ci_high")
    return {name: dict(zip(names, map(finite_or_none, figures), strict=True)) for name, *figures in overheads}


def _read_overheads(value: object) -> tuple[tuple[str, float, float, float], ...]:
    """Per metric its overhead and interval; ``null`` ends are unbounded, as written."""

    def figures(item: object) -> tuple[float, float, float]:
        data = read_object(item)
        low = read_field(data, "ci_low", lambda v: read_number(v, -math.inf), required=False)
        high = read_field(data, "ci_high", lambda v: read_number(v, math.inf), required=False)
        return (read_field(data, "overhead", read_number, required=False), low, high)

    return tuple((name, *row) for name, row in read_entries(value, figures))


@dataclass(frozen=True)
class Replica:
    """One fresh process of a measurement spread over several (``processes`` > 1): how it was
    started, and what it measured on its own."""

    pid: int
    """The child pytest process's id."""
    hash_seed: int
    """Its ``PYTHONHASHSEED``."""
    env_pad: int = field(metadata=form(key="env_pad_bytes"))
    """Bytes of padding added to its environment, which moves where its stack starts."""
    pairs: int
    """Timed pairs it measured."""
    duration_s: float
    """Wall time of the whole process, start-up and collection included."""
    verdict: Verdict
    """What this process alone would have decided."""
    overheads: tuple[tuple[str, float, float, float], ...] = field(
        default=(),
        metadata=form(
            key="metrics",
            write=_write_overheads,
            read=_read_overheads,
            shape="object",
            doc="per metric name, what this process alone estimated: ``overhead``, ``ci_low``, ``ci_high`` "
            "(as in ``metrics``; null = unbounded)",
        ),
    )
    """Per metric: (name, overhead, ci_low, ci_high), as in its own result."""

    def as_dict(self) -> dict[str, object]:
        return to_document(self)


SAMPLE_COLUMNS = ("cpu_baseline", "cpu_instrumented", "wall_baseline", "wall_instrumented")


def _write_samples(samples: tuple[tuple[float, ...], ...]) -> dict[str, object]:
    return {"columns": list(SAMPLE_COLUMNS), "per_call_seconds": [[finite_or_none(v) for v in s] for s in samples]}


def _read_samples(value: object) -> tuple[tuple[float, ...], ...]:
    """Raw per-pair times. Any finite number or ``null`` is read: comparisons say which they cannot use."""
    data = read_object(value) if value is not None else {}
    if not data:
        return ()
    columns = read_field(data, "columns", read_list)
    if columns != list(SAMPLE_COLUMNS):
        raise Malformed(f"columns are not {', '.join(SAMPLE_COLUMNS)}", ("columns",))
    return tuple(read_field(data, "per_call_seconds", read_rows(4)))


def _write_instruction_samples(samples: tuple[tuple[float, ...], ...]) -> dict[str, object]:
    rows = [[finite_or_none(v) for v in s] for s in samples]
    width = len(samples[0]) if samples else len(INSTRUCTION_COLUMNS)
    return {"columns": list(INSTRUCTION_COLUMNS[:width]), "per_process_per_call": rows}


def _read_instruction_samples(value: object) -> tuple[tuple[float, ...], ...]:
    data = read_object(value) if value is not None else {}
    if not data:
        return ()
    columns = read_field(data, "columns", read_list, required=False) or list(INSTRUCTION_COLUMNS[:2])
    if columns not in (list(INSTRUCTION_COLUMNS[:2]), list(INSTRUCTION_COLUMNS)):
        raise Malformed(f"columns are not {', '.join(INSTRUCTION_COLUMNS)}", ("columns",))
    return tuple(read_field(data, "per_process_per_call", read_rows(len(columns))))


class StopReason(TextEnum):
    """Why a measuring strategy stopped; the values are the text that saved JSON holds."""

    DECIDED = "decided"
    """Every time budget decided at a look."""
    MAX_TIME = "max_time"
    """The cap came first."""
    ALL_PROCESSES = "all processes"
    """A measurement over processes ran every process it planned."""
    COUNTED = "counted"
    """Instructions mode counted every layout."""
    PROCESS_TERM = "process term"
    """More pairs in this process could not decide: the between-process term alone keeps the interval across
    the budget, or the machine is busy and this process's verdict wants confirming, so fresh processes are
    added (``processes`` auto)."""
    NO_TIME_BUDGET = "no time budget"
    """Nothing to decide: measured briefly, for the report."""
    MEASURED_ELSEWHERE = "measured by another process"
    """A process started for one share of a measurement, handed a call it does not measure."""
    COUNTED_IN_CHILD = "counted in child"
    """A process counting under valgrind, handed a call it does not count."""
    COMBINED_OVER_SHARDS = "combined over shards"
    """Measured in several shards of a suite (CI jobs), combined across them by ``merge``."""


@dataclass(frozen=True)
class TestResult:
    """One measured workload: its settings, every metric, pipeline health and how the run went."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    """Pytest node id, as above."""
    settings: MeasureSettings = field(metadata=form(recurs=True))
    """What was measured and how, [below](#testssettings)."""
    metrics: tuple[MetricResult, ...] = field(metadata=form(keyed_by="metric"))
    """One [metric](#testsmetrics) object per metric, keyed by its name."""
    health: PipelineHealth | None = field(metadata=form(key="pipeline", required=False))
    """[pipeline health](#testspipeline) from the diagnostic round."""
    process: ProcessProbe | None = field(metadata=form(required=False))
    """[process readings](#testsprocess)."""
    pairs: int
    """Timed pairs of blocks (in instructions mode: processes per arm)."""
    calls_per_block: int
    """Calls of the workload in each timed block."""
    looks: int
    """Planned looks at the data that were made before stopping."""
    duration_s: float = field(metadata=form(amount=True))
    """Wall time the whole measurement took, seconds."""
    stop_reason: StopReason
    """Why measuring stopped: ``"decided"`` (every time budget decided), ``"max_time"`` (the cap came first), ``"no time
    budget"`` (nothing to decide; measured briefly for the report)…."""
    throughput_baseline: float = field(metadata=form(key="throughput_baseline_per_s", required=False))
    """Calls per second, baseline arm (1 / median wall time per call)."""
    throughput_instrumented: float = field(metadata=form(key="throughput_instrumented_per_s", required=False))
    """The same, instrumented arm."""
    samples: tuple[tuple[float, float, float, float], ...] = field(
        default=(),
        repr=False,
        metadata=form(
            write=_write_samples,
            read=_read_samples,
            shape="object",
            doc="the raw timed pairs, [below](#testssamples)",
        ),
    )
    """Raw per pair: (baseline CPU, instrumented CPU, baseline wall, instrumented wall) per call."""
    mode: str = "time"
    """``time``, or ``instructions`` (counted under valgrind; ``pairs`` then counts processes)."""
    instruction_samples: tuple[tuple[float, ...], ...] = field(
        default=(),
        repr=False,
        metadata=form(
            write=_write_instruction_samples,
            read=_read_instruction_samples,
            written=lambda result: result.mode == "instructions",
            shape="object",
            doc="instructions mode only, [below](#testsinstruction_samples)",
        ),
    )
    """In instructions mode, per process and call: instructions, first- and last-level misses, mispredicted
    branches, each (baseline, instrumented)."""
    cycle_model: CycleModel | None = field(
        default=None, metadata=form(required=False, written=lambda result: result.mode == "instructions")
    )
    """In instructions mode, the simulated caches and miss weights behind the ``cycles`` metric."""
    processes: int = 1
    """Processes whose measurements were combined: 1 unless the ``processes`` setting spread the measurement over
    several, or processes were added where the between-process term kept a budget open or a busy machine a
    verdict unconfirmed; ``pairs`` then counts
    the pairs of all of them."""
    replicas: tuple[Replica, ...] = field(
        default=(), repr=False, metadata=form(doc="those processes, [below](#testsreplicas); empty when one measured")
    )
    """Those processes, in the order they ran; empty when this process measured."""
    no_telemetry: str | None = None
    """Why the instrumented arm recorded no telemetry, naming the likely causes (spans through another
    TracerProvider and where it was created, instrumentors whose targets existed before the arm); ``None`` when
    it did record some (or was not checked). Such a result's outcome is ``NO_TELEMETRY``."""
    failed_exports: str | None = None
    """Why nothing the instrumented arm recorded reached the backend: every export of the diagnostic round failed,
    and how (refused or answered with an error, or no answer in the time left); ``None`` when some export succeeded
    (or was not checked). Such a result's outcome is ``FAILED_EXPORTS``, unless it is ``NO_TELEMETRY``."""
    notes: tuple[str, ...] = ()
    """What in the process's surroundings affected the measurement: tracemalloc paused, a trace or profile
    function (coverage, debuggers, profilers) or a ``sys.monitoring`` tool active."""

    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived(
            "verdict",
            "string",
            '`"PASS"`, `"FAIL"` or `"INCONCLUSIVE"`: FAIL if any budgeted metric failed, else INCONCLUSIVE if any '
            "was undecided, else PASS",
            lambda result: result.verdict.value,
        ),
        Derived(
            "outcome",
            "string",
            'the `verdict`, or `"NO_TELEMETRY"` when the instrumented arm recorded no spans and no metrics: both '
            'arms then ran the same code and the figures compare nothing; or `"FAILED_EXPORTS"` when every export '
            "of the diagnostic round failed: nothing reached the backend",
            lambda result: result.outcome,
        ),
    )

    @classmethod
    def unmeasured(
        cls, nodeid: str, settings: MeasureSettings, stop_reason: StopReason, mode: str = "time"
    ) -> TestResult:
        """A result with no figures, for a process that hands the measuring to another one."""
        return cls(
            nodeid=nodeid,
            settings=settings,
            metrics=(),
            health=None,
            process=None,
            pairs=0,
            calls_per_block=0,
            looks=0,
            duration_s=0.0,
            stop_reason=stop_reason,
            throughput_baseline=math.nan,
            throughput_instrumented=math.nan,
            mode=mode,
        )

    @functools.cached_property  # as ``verdict``
    def outcome(self) -> str:
        """``NO_TELEMETRY`` when the instrumented arm recorded nothing, ``FAILED_EXPORTS`` when none of what it
        recorded reached the backend, else the verdict's value."""
        if self.no_telemetry is not None:
            return NO_TELEMETRY
        return FAILED_EXPORTS if self.failed_exports is not None else self.verdict.value

    @functools.cached_property  # a frozen record's: reports of a merged run ask it of each test a dozen times
    def verdict(self) -> Verdict:
        if self.health is not None and self.health.over_budget:
            return Verdict.FAIL
        return combine(m.verdict for m in self.metrics if m.verdict is not None) or Verdict.PASS

    def metric(self, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.metric == name), None)

    @property
    def budgeted(self) -> tuple[MetricResult, ...]:
        return tuple(m for m in self.metrics if m.verdict is not None)

    def as_dict(self) -> dict[str, object]:
        return to_document(self)
