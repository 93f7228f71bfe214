"""The diagnostic round's counters: spans started, sampled, ended and exported (so dropped), export latency, queue peak.

:func:`~.pipeline.build_pipeline` with ``observe=True`` puts them around the sampler and the
exporter and behind the span processors; they never run inside a timed round.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

__all__ = ["CountingExporter", "CountingSampler", "PipelineCounts", "QueueProbe"]


@dataclass
class PipelineCounts:
    """What the diagnostic round saw; thread-safe because export may run on the worker thread."""

    started: int = 0
    sampled: int = 0
    ended: int = 0
    exported: int = 0
    export_calls: int = 0
    export_failures: int = 0
    spans_failed: int = 0
    export_seconds: list[float] = field(default_factory=list)
    export_cpu_seconds: float = 0.0
    queue_peak: int | None = None
    by_name: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class CountingSampler(Sampler):
    """Counts the spans started and sampled, by name, and passes every decision on."""

    def __init__(self, inner: Sampler, counts: PipelineCounts) -> None:
        self._inner = inner
        self._counts = counts

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        result = self._inner.should_sample(parent_context, trace_id, name, *args, **kwargs)
        with self._counts.lock:
            self._counts.started += 1
            self._counts.by_name[name] += 1
            if result.decision is Decision.RECORD_AND_SAMPLE:
                self._counts.sampled += 1
        return result

    def get_description(self) -> str:
        return self._inner.get_description()


class CountingExporter(SpanExporter):
    """Counts exports, their spans, failures, wall and CPU time, and passes every export on."""

    def __init__(self, inner: SpanExporter, counts: PipelineCounts) -> None:
        self._inner = inner
        self._counts = counts

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
            raise
        finally:
            elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
            with self._counts.lock:
                self._counts.export_calls += 1
                self._counts.export_seconds.append(elapsed)
                self._counts.export_cpu_seconds += cpu
                if result is SpanExportResult.SUCCESS:
                    self._counts.exported += len(spans)
                else:
                    self._counts.export_failures += 1
                    self._counts.spans_failed += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class QueueProbe(SpanProcessor):
    """Added after the batch processor: counts sampled spans ended and the queue length just after each."""

    def __init__(self, counts: PipelineCounts, queue: Any) -> None:
        self._counts = counts
        self._queue = queue

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        length = len(self._queue) if self._queue is not None else None
        with self._counts.lock:
            self._counts.ended += 1
            if length is not None:
                self._counts.queue_peak = max(self._counts.queue_peak or 0, length)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
