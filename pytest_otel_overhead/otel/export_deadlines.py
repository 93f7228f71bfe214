"""Export deadlines: every export within its flush's ``export_timeout`` and within the pipeline's time cap.

A backend that is down, silent, refusing or slow cannot hold a flush, a shutdown or the whole
measurement past its time: :class:`ExportDeadlines` wraps a network exporter and shortens or
refuses each export to what is left, and :class:`CappedExports` counts what the cap cut short.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from pytest_otel_overhead.otel.exporters import set_export_timeout

__all__ = ["CUT_TOLERANCE_S", "PROBE_TIMEOUT_S", "CappedExports", "ExportDeadlines", "endpoint_refuses"]

CUT_TOLERANCE_S = 0.05
"""An export that failed this close to the cap (or later) ran out of time: the cap cut it. One that failed
earlier was refused or answered with an error, whatever time it had left."""


PROBE_TIMEOUT_S = 0.5
"""How long :func:`endpoint_refuses` waits for a connection."""


def endpoint_refuses(endpoint: str | None) -> bool | None:
    """Whether the endpoint's host refuses a TCP connection now: ``True``, ``False`` if it accepts, ``None`` if unknown.

    Asked only after measuring, when every export failed: an exporter retrying a refused connection
    can use up the time left as a backend that never answers does, and only the port tells them apart.
    """
    if not endpoint:
        return None
    parsed = urllib.parse.urlsplit(endpoint if "//" in endpoint else "//" + endpoint)
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        return None
    if parsed.hostname is None:
        return None
    try:
        with socket.create_connection((parsed.hostname, port), timeout=PROBE_TIMEOUT_S):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return None


@dataclass
class CappedExports:
    """Exports the pipeline's time cap ended early or refused, their spans, the exports in progress, and every
    failed export with the time it took (the engine tells a backend that held the timed pairs from noise)."""

    exports: int = 0
    spans: int = 0
    running: int = 0
    failed: int = 0
    """Exports that failed for any reason, those the cap cut included."""
    failed_s: float = 0.0
    """Seconds those failed exports took: what a backend that never answers costs the flushes that wait."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, spans: int) -> None:
        with self.lock:
            self.exports += 1
            self.spans += spans

    def add_failure(self, seconds: float) -> None:
        with self.lock:
            self.failed += 1
            self.failed_s += seconds

    @contextlib.contextmanager
    def in_progress(self) -> Iterator[None]:
        with self.lock:
            self.running += 1
        try:
            yield
        finally:
            with self.lock:
                self.running -= 1


class ExportDeadlines(SpanExporter):
    """Keeps every export within its flush's ``export_timeout`` and within the pipeline's time cap.

    The Python SDK's batch processor ignores the flush timeout, and a flush exports batch after
    batch, each allowed the exporter's whole deadline: with a backend down, a flush of n batches
    would wait n times that. So an export in a flush gets only what is left of that flush
    (``export_timeout`` from its start, as the spec asks of ForceFlush), and every export, on any
    thread, only what is left of the cap (:meth:`Pipeline.cap`): an OTLP exporter's own deadline
    is shortened to that, and once nothing is left the export fails at once. Exports the cap ended
    or refused are counted in ``capped``: whether a more patient exporter would have delivered
    them is unknown, so they are not simply failures. An export that failed well before the cap
    (a port that refuses the connection fails in milliseconds) is a failure, not a cut.
    """

    def __init__(self, inner: SpanExporter, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self._settable = set_export_timeout(inner, timeout_s)
        self.cap_at: float | None = None
        """``time.monotonic()`` past which no export may run."""
        self.capped = CappedExports()
        self._flush_deadline: float | None = None
        self._flusher: threading.Thread | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        now = time.monotonic()
        end = now + self._timeout_s
        if self._flush_deadline is not None and threading.current_thread() is self._flusher:
            end = min(end, self._flush_deadline)
        by_cap = False
        cap = self.cap_at
        if cap is not None and cap < end:
            end, by_cap = cap, True
        if end <= now:
            if by_cap:
                self.capped.add(len(spans))
            self.capped.add_failure(0.0)
            return SpanExportResult.FAILURE
        if self._settable:
            # Read at the start of each export; two exports at once (simple processor, threads) may
            # swap values a moment apart, which changes nothing that matters.
            set_export_timeout(self._inner, end - now)
        with self.capped.in_progress():
            result = self._inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            ended = time.monotonic()
            self.capped.add_failure(ended - now)
            if by_cap and ended >= end - CUT_TOLERANCE_S:
                self.capped.add(len(spans))
        return result

    @contextlib.contextmanager
    def flushing(self, timeout_s: float) -> Iterator[None]:
        self._flusher = threading.current_thread()
        self._flush_deadline = time.monotonic() + timeout_s
        try:
            yield
        finally:
            self._flush_deadline = None

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
