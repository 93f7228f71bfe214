"""What the OpenTelemetry pipeline did in a measurement's diagnostic round: the ``PipelineHealth`` record."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from pytest_otel_overhead.formatting import finite_or_none
from pytest_otel_overhead.wire.document import to_document
from pytest_otel_overhead.wire.fields import Derived
from pytest_otel_overhead.wire.form import form

__all__ = ["PipelineHealth"]


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
    """Workload calls in the diagnostic round."""
    started: int = field(metadata=form(key="spans_started_per_call", per="calls"))
    """Spans started."""
    sampled: int = field(metadata=form(key="spans_sampled_per_call", per="calls"))
    """Spans the sampler recorded."""
    exported: int = field(metadata=form(key="spans_exported_per_call", per="calls"))
    """Spans that reached the exporter."""
    export_calls: int
    """Calls of the exporter's ``export``."""
    by_name: tuple[tuple[str, int], ...] = field(default=(), metadata=form(key="spans_per_call_by_name", per="calls"))
    """Spans started per call, keyed by span name."""
    ended: int | None = field(default=None, metadata=form(key="spans_ended_per_call", per="calls"))
    """Sampled spans that ended."""
    export_failures: int = 0
    """Exports that failed."""
    spans_failed: int = field(default=0, metadata=form(key="spans_dropped_failed_export"))
    """Sampled spans lost in failed exports (the dropped spans that a full queue did not push out)."""
    export_latency_p50: float | None = field(default=None, metadata=form(key="export_latency_p50_s", amount=True))
    """Median export call duration."""
    export_latency_p95: float | None = field(default=None, metadata=form(key="export_latency_p95_s", amount=True))
    """95th percentile export call duration."""
    export_cpu_s: float | None = field(default=None, metadata=form(key="export_cpu_per_call_s", per="calls"))
    """CPU time of the threads that ran the exports, inside the exporter: encoding, compression, HTTP."""
    queue_peak: int | None = None
    """Most spans waiting in the batch queue (batch processor only)."""
    queue_capacity: int | None = None
    """The queue's size."""
    bytes_sent: int | None = field(default=None, metadata=form(key="bytes_sent_per_call", per="calls"))
    """Bytes on the wire (embedded OTLP receiver only)."""
    bytes_uncompressed: int | None = field(default=None, metadata=form(key="bytes_uncompressed_per_call", per="calls"))
    """The same before compression."""
    backend_requests: int | None = None
    """Export requests the embedded receiver saw."""
    backend_rejected: int | None = None
    """Of these, rejected."""
    metric_points: int | None = None
    """Metric data points exported."""
    extra_threads: int | None = None
    """Threads the pipeline started."""
    max_dropped: int | None = None
    """Dropped spans allowed (the ``max_dropped`` setting)."""
    exports_timed_out: int = 0
    """Of ``export_failures``, exports that ``max_time`` ended early or refused (the backend did not answer in the time
    left)."""
    spans_timed_out: int = 0
    """Their spans, of ``spans_dropped_failed_export``; not counted against ``max_dropped``, since a more patient
    exporter might have delivered them."""
    rounds_exports_timed_out: int = 0
    """Exports ``max_time`` ended early or refused in the timed and heap rounds and the pipeline's shutdown."""
    rounds_spans_timed_out: int = 0
    """Their spans."""
    calls_s: float | None = field(default=None, metadata=form(key="calls_wall_s", amount=True))
    """Wall time the round's calls took, seconds (``None`` in results made before it was kept): what a rate limit
    per second of wall time is counted against."""
    export_left_running: bool = False
    """An export was still running when the measurement's pipeline shut down, and was not waited for."""
    metric_measurements: int | None = None
    """Measurements (add, record, set) made on synchronous metric instruments through the plugin's MeterProvider;
    ``None`` if not counted (documents of older versions)."""
    foreign_spans: int | None = None
    """Spans started through SDK TracerProviders other than the arm's (a provider of the code's own, or one
    passed explicitly), which the arms cannot switch."""
    foreign_origins: tuple[str, ...] = ()
    """Per such tracer: spans per call, its name, where it started spans and where its provider was created."""

    DERIVED: ClassVar[tuple[Derived, ...]] = (
        Derived(
            "spans_dropped_per_call",
            "number or null",
            "sampled and ended but never exported, per call",
            lambda health: health.per_call_or_none(health.dropped),
        ),
        Derived("spans_dropped", "integer", "the same, in total", lambda health: health.dropped),
        Derived(
            "spans_dropped_queue_full",
            "integer",
            "of these, pushed out of a full BatchSpanProcessor queue",
            lambda health: health.dropped_by_queue,
        ),
        Derived(
            "dropped_verdict",
            "string or null",
            '`"PASS"` or `"FAIL"` against `max_dropped` (spans in `spans_timed_out` left out); null without one',
            lambda health: None if health.max_dropped is None else ("FAIL" if health.over_budget else "PASS"),
        ),
        Derived("compression_ratio", "number or null", "uncompressed / sent", lambda health: health.compression_ratio),
        Derived(
            "foreign_spans_per_call",
            "number or null",
            "`foreign_spans` per call",
            lambda health: (
                None if health.foreign_spans is None else finite_or_none(health.per_call(health.foreign_spans))
            ),
        ),
        Derived(
            "time_cap_note",
            "string or null",
            "what `max_time` cut short, in a sentence; null when it cut nothing",
            lambda health: health.time_cap_note(),
        ),
    )

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
        return self.max_dropped is not None and self.lost > self.max_dropped

    @property
    def lost(self) -> int:
        """Dropped spans that count against ``max_dropped``: all but those the cap cut."""
        return self.dropped - self.spans_timed_out

    @property
    def spans_failed_outright(self) -> int:
        """Spans in exports that failed before the cap: refused, answered with an error, or timed out by
        ``export_timeout``."""
        return self.spans_failed - self.spans_timed_out

    @property
    def every_export_failed(self) -> bool:
        """The round exported and not one export succeeded: nothing reached the backend."""
        return self.export_calls > 0 and self.export_failures >= self.export_calls and self.exported == 0

    def loss_breakdown(self) -> str:
        """``queue full 312, failed exports 0``, and ``, cut by max_time 12`` if the cap cut some: the split of the
        dropped spans that the summary shows, counted as :meth:`dropped_sentence` counts them."""
        text = f"queue full {self.dropped_by_queue}, failed exports {self.spans_failed_outright}"
        return text + (f", cut by max_time {self.spans_timed_out}" if self.spans_timed_out else "")

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
                f"({self.spans_timed_out} spans, dropped but not counted against max_dropped)"
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
            note + ": the time left ran out first (a backend that does not answer holds an export until then, and "
            "so do an exporter's retries after failed exports; a longer max_time gives them more; an export_timeout "
            "well below max_time tells a down backend from a slow one)"
        )

    @property
    def compression_ratio(self) -> float | None:
        if not self.bytes_sent or self.bytes_uncompressed is None:
            return None
        return self.bytes_uncompressed / self.bytes_sent

    def per_call(self, count: float) -> float:
        return count / self.calls if self.calls else math.nan

    def per_call_or_none(self, count: float | None) -> float | None:
        """``per_call`` as documents hold it: ``null`` with nothing counted or no calls to divide by."""
        return None if count is None else finite_or_none(self.per_call(count))

    def dropped_sentence(self) -> str:
        """``lost 312 spans in 1000 calls (queue full: 312, failed exports: 0)``, and spans the cap cut."""
        timed_out = f", {self.spans_timed_out} more cut by max_time" if self.spans_timed_out else ""
        split = f"queue full: {self.dropped_by_queue}, failed exports: {self.spans_failed_outright}"
        return f"lost {self.lost} spans in {self.calls} calls ({split}){timed_out}"

    def budget_sentence(self) -> str:
        """``lost 312 spans in 1000 calls (queue full: 312, failed exports: 0), budget max_dropped=0``."""
        return f"{self.dropped_sentence()}, budget max_dropped={self.max_dropped}"

    def as_dict(self) -> dict[str, object]:
        return to_document(self)
