"""The results of one measurement: small immutable records that reports and history read."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    finite_or_none,
    format_bytes,
    format_count,
    format_seconds,
    interval,
    signed,
    signed_percent,
    unbounded,
)
from pytest_otel_overhead.settings.layers import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict, combine
from pytest_otel_overhead.units import Budget

__all__ = [
    "AGAINST_ARMS_MARK",
    "AGAINST_ARMS_NOTE",
    "HEAP_BYTES_BELOW",
    "NO_TELEMETRY",
    "MetricResult",
    "PipelineHealth",
    "ProcessProbe",
    "Replica",
    "StopReason",
    "TestResult",
]

METRIC_LABELS = {
    "cpu": "CPU",
    "wall": "wall time",
    "latency_p50": "latency p50",
    "latency_p95": "latency p95",
    "latency_p99": "latency p99",
    "heap": "peak heap",
    "instructions": "instructions",
}
UNITS = {"heap": "bytes", "instructions": "instructions"}
NO_TELEMETRY = "NO_TELEMETRY"
"""The outcome of a measurement whose instrumented arm recorded no telemetry: its figures compare
two identical arms, whatever the verdict of its budgets says."""
AGAINST_ARMS_MARK = "*"
AGAINST_ARMS_NOTE = (
    "* the estimate, from paired blocks, points the other way from the two arms' own figures: "
    "the difference is within noise"
)
HEAP_BYTES_BELOW = 64 * 1024
"""Below this peak-heap baseline, a heap row without a budget shows its change in bytes: on a few KiB,
the pipeline's own buffers read as ``+40000%``, a figure that says nothing about the application."""


@dataclass(frozen=True)
class MetricResult:
    """One metric in both arms, the overhead with its interval and, when budgeted, the verdict.

    ``baseline`` and ``instrumented`` are per call (seconds, or bytes for heap). ``overhead``,
    ``ci_low`` and ``ci_high`` are fractions (0.073 = 7.3%) for a relative budget or with no budget,
    and seconds or bytes per call for an absolute one (``kind``).
    """

    metric: str
    baseline: float
    instrumented: float
    overhead: float
    ci_low: float
    ci_high: float
    kind: str
    n: int
    spread: float
    confidence: float
    budget: Budget | None = None
    verdict: Verdict | None = None
    resolution: float | None = None
    note: str | None = None
    between_process_spread: float | None = None
    """Measured over several processes: the between-process standard deviation τ of the overhead,
    on its scale (``n`` then counts processes); ``None`` when one process measured."""

    @property
    def label(self) -> str:
        return METRIC_LABELS.get(self.metric, self.metric)

    def format_value(self, value: float) -> str:
        if self.metric == "instructions":
            return format_count(value)
        return format_bytes(value) if self.metric == "heap" else format_seconds(value)

    def format_overhead(self, value: float) -> str:
        """``+7.3%`` for a relative figure, ``+20.0 µs`` or ``+1.5 KiB`` for an absolute one."""
        if math.isnan(value):
            return NO_FIGURE
        if not math.isfinite(value):
            return unbounded(value)
        if self.kind == "relative":
            return signed_percent(value)
        return signed(value, self.format_value)

    def format_estimate(self) -> str:
        """The overhead as tables show it: ``format_overhead``, marked when it goes ``against_arms``."""
        return self.format_overhead(self.overhead) + (AGAINST_ARMS_MARK if self.against_arms else "")

    def format_interval(self) -> str:
        """``[+6.1%, +8.4%]``; ``NO_FIGURE`` when no end is bounded (-100% is no bound on a ratio)."""
        floor = -1.0 if self.kind == "relative" else -math.inf
        if self.ci_low <= floor and self.ci_high == math.inf:
            return NO_FIGURE
        return interval(self.ci_low, self.ci_high, self.format_overhead)

    @property
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
        return {
            "metric": self.metric,
            "unit": UNITS.get(self.metric, "seconds"),
            "baseline": finite_or_none(self.baseline),
            "instrumented": finite_or_none(self.instrumented),
            "overhead": finite_or_none(self.overhead),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "overhead_kind": self.kind,
            "confidence": self.confidence,
            "budget": None if self.budget is None else {"kind": self.budget.kind, "value": self.budget.value},
            "verdict": None if self.verdict is None else self.verdict.value,
            "n": self.n,
            "spread": finite_or_none(self.spread),
            "resolution": finite_or_none(self.resolution),
            "note": self.note,
            "between_process_spread": finite_or_none(self.between_process_spread),
        }


def _exports(count: int) -> str:
    return f"{count} export" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class PipelineHealth:
    """From the diagnostic round, outside the timed rounds: what the pipeline did per call.

    Counts cover the whole round. ``ended`` counts sampled spans that ended (``None`` in results
    made before it was counted); a span is dropped when it was sampled and ended but never
    exported: pushed out of a full queue (the SDK does that silently) or lost in a failed export.
    Figures that depend on the exporter or the processor are ``None`` where they do not apply:
    bytes come from the embedded receiver, the queue exists only with the batch processor.

    Exports that ``max_time`` ended early or refused (the backend did not answer in the time left)
    are counted apart: ``exports_timed_out`` and ``spans_timed_out`` for the diagnostic round (part
    of ``export_failures`` and ``spans_failed``); whether a patient exporter would have delivered
    their spans is unknown, so they do not count against ``max_dropped``. The ``rounds_`` pair counts
    the same in the timed and heap rounds and the pipeline's shutdown, which count nothing else.
    """

    calls: int
    started: int
    sampled: int
    exported: int
    export_calls: int
    by_name: tuple[tuple[str, int], ...] = ()
    ended: int | None = None
    export_failures: int = 0
    spans_failed: int = 0
    export_latency_p50: float | None = None
    export_latency_p95: float | None = None
    export_cpu_s: float | None = None
    """CPU time of the threads that ran the exports, inside the exporter: encoding, compression, HTTP."""
    queue_peak: int | None = None
    queue_capacity: int | None = None
    bytes_sent: int | None = None
    bytes_uncompressed: int | None = None
    backend_requests: int | None = None
    backend_rejected: int | None = None
    metric_points: int | None = None
    extra_threads: int | None = None
    max_dropped: int | None = None
    exports_timed_out: int = 0
    spans_timed_out: int = 0
    rounds_exports_timed_out: int = 0
    rounds_spans_timed_out: int = 0
    export_left_running: bool = False
    """An export was still running when the measurement's pipeline shut down, and was not waited for."""
    metric_measurements: int | None = None
    """Measurements (add, record, set) on the plugin's synchronous instruments; ``None`` if not counted."""
    foreign_spans: int | None = None
    """Spans started through SDK TracerProviders other than the arm's, which the arms cannot switch."""
    foreign_origins: tuple[str, ...] = ()
    """Where those spans came from: tracer, where it started spans, where its provider was made."""

    @property
    def recorded_nothing(self) -> bool:
        """No span started and no metric recorded through the plugin's providers in the round.

        False when metric measurements were not counted (results of older versions): unknown is not nothing.
        """
        if self.calls == 0 or self.started or self.metric_points or self.metric_measurements is None:
            return False
        return self.metric_measurements == 0

    @property
    def dropped(self) -> int:
        handled = self.sampled if self.ended is None else self.ended
        return max(0, handled - self.exported)

    @property
    def dropped_by_queue(self) -> int:
        """Sampled spans that never reached the exporter: evicted from a full queue."""
        return max(0, self.dropped - self.spans_failed)

    @property
    def over_budget(self) -> bool:
        return self.max_dropped is not None and self.dropped - self.spans_timed_out > self.max_dropped

    @property
    def cut_short(self) -> bool:
        return bool(self.exports_timed_out or self.rounds_exports_timed_out or self.export_left_running)

    def time_cap_note(self) -> str | None:
        """``max_time ended 2 exports of the diagnostic round early (1024 spans, …)``, or ``None`` if it cut nothing."""
        if not self.cut_short:
            return None
        parts = []
        if self.exports_timed_out:
            parts.append(
                f"{_exports(self.exports_timed_out)} of the diagnostic round early "
                f"({self.spans_timed_out} spans, not counted as dropped)"
            )
        if self.rounds_exports_timed_out:
            parts.append(
                f"{_exports(self.rounds_exports_timed_out)} of the timed and heap rounds early "
                f"({self.rounds_spans_timed_out} spans)"
            )
        note = "max_time ended " + " and ".join(parts) if parts else "max_time was reached"
        if self.export_left_running:
            note += "; an export was still running at shutdown and was left to end by itself"
        return (
            note + ": the backend did not answer within the time left (a longer max_time gives it more; "
            "an export_timeout well below max_time tells a down backend from a slow one)"
        )

    @property
    def compression_ratio(self) -> float | None:
        if not self.bytes_sent or self.bytes_uncompressed is None:
            return None
        return self.bytes_uncompressed / self.bytes_sent

    def per_call(self, count: float) -> float:
        return count / self.calls if self.calls else math.nan

    def dropped_sentence(self) -> str:
        """``lost 312 spans in 1000 calls (queue full: 312, failed exports: 0)``, and spans the cap cut."""
        timed_out = f", {self.spans_timed_out} more cut by max_time" if self.spans_timed_out else ""
        return (
            f"lost {self.dropped - self.spans_timed_out} spans in {self.calls} calls (queue full: "
            f"{self.dropped_by_queue}, failed exports: {self.spans_failed - self.spans_timed_out}){timed_out}"
        )

    def budget_sentence(self) -> str:
        """``lost 312 spans in 1000 calls (queue full: 312, failed exports: 0), budget max_dropped=0``."""
        return f"{self.dropped_sentence()}, budget max_dropped={self.max_dropped}"

    def as_dict(self) -> dict[str, object]:
        def per_call(count: int | None) -> float | None:
            return None if count is None else finite_or_none(self.per_call(count))

        return {
            "calls": self.calls,
            "spans_started_per_call": self.per_call(self.started),
            "spans_sampled_per_call": self.per_call(self.sampled),
            "spans_ended_per_call": per_call(self.ended),
            "spans_exported_per_call": self.per_call(self.exported),
            "spans_dropped_per_call": self.per_call(self.dropped),
            "spans_dropped": self.dropped,
            "spans_dropped_queue_full": self.dropped_by_queue,
            "spans_dropped_failed_export": self.spans_failed,
            "max_dropped": self.max_dropped,
            "dropped_verdict": None if self.max_dropped is None else ("FAIL" if self.over_budget else "PASS"),
            "export_calls": self.export_calls,
            "export_failures": self.export_failures,
            "export_latency_p50_s": self.export_latency_p50,
            "export_latency_p95_s": self.export_latency_p95,
            "export_cpu_per_call_s": None
            if self.export_cpu_s is None
            else finite_or_none(self.per_call(self.export_cpu_s)),
            "queue_peak": self.queue_peak,
            "queue_capacity": self.queue_capacity,
            "bytes_sent_per_call": per_call(self.bytes_sent),
            "bytes_uncompressed_per_call": per_call(self.bytes_uncompressed),
            "compression_ratio": self.compression_ratio,
            "backend_requests": self.backend_requests,
            "backend_rejected": self.backend_rejected,
            "metric_points": self.metric_points,
            "metric_measurements": self.metric_measurements,
            "foreign_spans": self.foreign_spans,
            "foreign_spans_per_call": None if self.foreign_spans is None else self.per_call(self.foreign_spans),
            "foreign_origins": list(self.foreign_origins),
            "extra_threads": self.extra_threads,
            "exports_timed_out": self.exports_timed_out,
            "spans_timed_out": self.spans_timed_out,
            "rounds_exports_timed_out": self.rounds_exports_timed_out,
            "rounds_spans_timed_out": self.rounds_spans_timed_out,
            "export_left_running": self.export_left_running,
            "time_cap_note": self.time_cap_note(),
            "spans_per_call_by_name": {name: self.per_call(count) for name, count in self.by_name},
        }


@dataclass(frozen=True)
class ProcessProbe:
    """Process-level readings (psutil) in each arm, taken outside timed blocks."""

    rss_baseline: int
    rss_instrumented: int
    threads_baseline: int
    threads_instrumented: int
    heap_retained_baseline: float = math.nan
    heap_retained_instrumented: float = math.nan

    def as_dict(self) -> dict[str, object]:
        return {
            "rss_baseline_bytes": self.rss_baseline,
            "rss_instrumented_bytes": self.rss_instrumented,
            "threads_baseline": self.threads_baseline,
            "threads_instrumented": self.threads_instrumented,
            "heap_retained_per_call_baseline_bytes": finite_or_none(self.heap_retained_baseline),
            "heap_retained_per_call_instrumented_bytes": finite_or_none(self.heap_retained_instrumented),
        }


@dataclass(frozen=True)
class Replica:
    """One fresh process of a measurement spread over several (``processes`` > 1): how it was
    started, and what it measured on its own."""

    pid: int
    hash_seed: int
    """Its ``PYTHONHASHSEED``."""
    env_pad: int
    """Bytes of padding added to its environment, which moves where its stack starts."""
    pairs: int
    duration_s: float
    """Wall time of the whole process, start-up and collection included."""
    verdict: Verdict
    """What this process alone would have decided."""
    overheads: tuple[tuple[str, float, float, float], ...] = ()
    """Per metric: (name, overhead, ci_low, ci_high), as in its own result."""

    def as_dict(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "hash_seed": self.hash_seed,
            "env_pad_bytes": self.env_pad,
            "pairs": self.pairs,
            "duration_s": self.duration_s,
            "verdict": self.verdict.value,
            "metrics": {
                name: {
                    "overhead": finite_or_none(overhead),
                    "ci_low": finite_or_none(low),
                    "ci_high": finite_or_none(high),
                }
                for name, overhead, low, high in self.overheads
            },
        }


class StopReason(str, enum.Enum):
    """Why a measuring strategy stopped; the values are the text that saved JSON holds."""

    DECIDED = "decided"
    """Every time budget decided at a look."""
    MAX_TIME = "max_time"
    """The cap came first."""
    ALL_PROCESSES = "all processes"
    """A measurement over processes ran every process it planned."""
    COUNTED = "counted"
    """Instructions mode counted every layout."""
    NO_TIME_BUDGET = "no time budget"
    """Nothing to decide: measured briefly, for the report."""
    MEASURED_ELSEWHERE = "measured by another process"
    """A process started for one share of a measurement, handed a call it does not measure."""
    COUNTED_IN_CHILD = "counted in child"
    """A process counting under valgrind, handed a call it does not count."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TestResult:
    """One measured workload: its settings, every metric, pipeline health and how the run went."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    settings: MeasureSettings
    metrics: tuple[MetricResult, ...]
    health: PipelineHealth | None
    process: ProcessProbe | None
    pairs: int
    calls_per_block: int
    looks: int
    duration_s: float
    stop_reason: StopReason
    throughput_baseline: float
    throughput_instrumented: float
    samples: tuple[tuple[float, float, float, float], ...] = field(default=(), repr=False)
    """Raw per pair: (baseline CPU, instrumented CPU, baseline wall, instrumented wall) per call."""
    mode: str = "time"
    """``time``, or ``instructions`` (counted under valgrind; ``pairs`` then counts processes)."""
    instruction_samples: tuple[tuple[float, float], ...] = field(default=(), repr=False)
    """In instructions mode, per process: (baseline, instrumented) instructions per call."""
    processes: int = 1
    """Fresh processes whose measurements were combined (time mode with ``processes`` > 1)."""
    replicas: tuple[Replica, ...] = field(default=(), repr=False)
    """Those processes, in the order they ran; empty when this process measured."""
    no_telemetry: str | None = None
    """Why the instrumented arm recorded no telemetry, with its likely causes; ``None`` when it did
    record some (or was not checked). Such a result's outcome is ``NO_TELEMETRY``."""
    notes: tuple[str, ...] = ()
    """What in the process's surroundings affected the measurement (tracers, profilers, tracemalloc)."""

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

    @property
    def outcome(self) -> str:
        """``NO_TELEMETRY`` when the instrumented arm recorded nothing, else the verdict's value."""
        return NO_TELEMETRY if self.no_telemetry is not None else self.verdict.value

    @property
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
        return {
            "nodeid": self.nodeid,
            "mode": self.mode,
            "verdict": self.verdict.value,
            "outcome": self.outcome,
            "no_telemetry": self.no_telemetry,
            "notes": list(self.notes),
            "settings": self.settings.as_dict(),
            "metrics": {m.metric: m.as_dict() for m in self.metrics},
            "pipeline": None if self.health is None else self.health.as_dict(),
            "process": None if self.process is None else self.process.as_dict(),
            "throughput_baseline_per_s": finite_or_none(self.throughput_baseline),
            "throughput_instrumented_per_s": finite_or_none(self.throughput_instrumented),
            "pairs": self.pairs,
            "calls_per_block": self.calls_per_block,
            "looks": self.looks,
            "duration_s": self.duration_s,
            "stop_reason": self.stop_reason,
            "processes": self.processes,
            "replicas": [replica.as_dict() for replica in self.replicas],
            "samples": {
                "columns": ["cpu_baseline", "cpu_instrumented", "wall_baseline", "wall_instrumented"],
                "per_call_seconds": [list(s) for s in self.samples],
            },
            **(
                {
                    "instruction_samples": {
                        "columns": ["instructions_baseline", "instructions_instrumented"],
                        "per_process_per_call": [list(s) for s in self.instruction_samples],
                    }
                }
                if self.mode == "instructions"
                else {}
            ),
        }
