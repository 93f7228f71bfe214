"""The results of one measurement: small immutable records that reports and history read."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pytest_otel_overhead.formatting import (
    finite_or_none,
    format_bytes,
    format_count,
    format_seconds,
    signed,
    signed_percent,
    unbounded,
)
from pytest_otel_overhead.settings.layers import MeasureSettings
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.verdict import Verdict, combine

__all__ = ["MetricResult", "PipelineHealth", "ProcessProbe", "Replica", "TestResult"]

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
        if not math.isfinite(value):
            return unbounded(value)
        if self.kind == "relative":
            return signed_percent(value)
        return signed(value, self.format_value)

    def format_interval(self) -> str:
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return "n/a"
        return f"{self.format_overhead(self.ci_low)}…{self.format_overhead(self.ci_high)}"

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


@dataclass(frozen=True)
class PipelineHealth:
    """From the diagnostic round, outside the timed rounds: what the pipeline did per call.

    Counts cover the whole round. ``ended`` counts sampled spans that ended (``None`` in results
    made before it was counted); a span is dropped when it was sampled and ended but never
    exported: pushed out of a full queue (the SDK does that silently) or lost in a failed export.
    Figures that depend on the exporter or the processor are ``None`` where they do not apply:
    bytes come from the embedded receiver, the queue exists only with the batch processor.
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
        return self.max_dropped is not None and self.dropped > self.max_dropped

    @property
    def compression_ratio(self) -> float | None:
        if not self.bytes_sent or self.bytes_uncompressed is None:
            return None
        return self.bytes_uncompressed / self.bytes_sent

    def per_call(self, count: float) -> float:
        return count / self.calls if self.calls else math.nan

    def budget_sentence(self) -> str:
        """``lost 312 spans in 1000 calls (queue full: 312), budget max_dropped=0``."""
        return (
            f"lost {self.dropped} spans in {self.calls} calls (queue full: {self.dropped_by_queue}, "
            f"failed exports: {self.spans_failed}), budget max_dropped={self.max_dropped}"
        )

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
            "extra_threads": self.extra_threads,
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
    stop_reason: str
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
