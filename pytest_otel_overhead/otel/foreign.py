"""Spans the arms cannot reach: those started through SDK TracerProviders other than the plugin's.

The plugin's router is the global TracerProvider, and the arms switch what its tracers delegate
to. Code that builds its own ``TracerProvider()`` (SDK micro-benchmarks do), or is handed one
explicitly (``tracer_provider=...``), records spans the same way in both arms, so the instrumented
arm measures no telemetry at all. Two probes find such spans:

* :func:`track_provider_origins` records where each SDK TracerProvider is created (file:line),
  from the moment the plugin installs its router on: one stack walk per provider made;
* :func:`counting_foreign_spans`, in the diagnostic round only (never around a timed block),
  counts the spans started through SDK tracers not made by the arm's provider, per tracer.

An SDK tracer does not hold its provider, but it shares the provider's id generator, which each
provider makes for itself: that is how a tracer is matched with its provider.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from opentelemetry.sdk.trace import Tracer, TracerProvider

__all__ = [
    "ForeignSpans",
    "ForeignTracer",
    "caller_outside_libraries",
    "counting_foreign_spans",
    "provider_origin",
    "stop_tracking_provider_origins",
    "track_provider_origins",
]

# Frames of these packages are never "where": the user's code is the nearest frame outside them.
_LIBRARIES = frozenset({"opentelemetry", "pytest_otel_overhead", "logging", "contextlib", "functools"})

_origins: weakref.WeakKeyDictionary[TracerProvider, str] = weakref.WeakKeyDictionary()
_original_init: Callable[..., None] | None = None


def _where(frame: FrameType) -> str:
    path = frame.f_code.co_filename
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        relative = path
    return f"{path if relative.startswith('..') else relative}:{frame.f_lineno}"


def caller_outside_libraries() -> str | None:
    """``file:line`` of the nearest caller outside OpenTelemetry, this plugin and the standard helpers."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).split(".", 1)[0] not in _LIBRARIES:
            return _where(frame)
        frame = frame.f_back
    return None


def track_provider_origins() -> bool:
    """From now on, remember where each SDK TracerProvider is created; False if that was already so."""
    global _original_init
    if _original_init is not None:
        return False
    original = TracerProvider.__init__

    @functools.wraps(original)
    def __init__(self: TracerProvider, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        where = caller_outside_libraries()
        if where is not None:
            _origins[self] = where

    TracerProvider.__init__ = __init__  # type: ignore[method-assign]
    _original_init = original
    return True


def stop_tracking_provider_origins() -> None:
    """Undo :func:`track_provider_origins`; origins already recorded are kept."""
    global _original_init
    if _original_init is not None:
        TracerProvider.__init__ = _original_init  # type: ignore[method-assign]
        _original_init = None


def provider_origin(tracer: object) -> str | None:
    """Where the provider of an SDK ``tracer`` was created, if it was made while origins were tracked."""
    ids = getattr(tracer, "id_generator", None)
    if ids is None:
        return None
    for provider, where in list(_origins.items()):
        if getattr(provider, "id_generator", None) is ids:
            return where
    return None


@dataclass
class ForeignTracer:
    """One SDK tracer that is not the arm's, and the spans started through it."""

    scope: str
    started_at: str | None
    provider_at: str | None
    spans: int = 0

    def describe(self, calls: int) -> str:
        text = f"{self.spans / max(calls, 1):.3g} spans/call from tracer {self.scope!r}"
        if self.started_at is not None:
            text += f" started at {self.started_at}"
        if self.provider_at is not None:
            return text + f", its TracerProvider created at {self.provider_at}"
        return text + ", its TracerProvider created before the plugin started"


class ForeignSpans:
    """The tracers seen starting spans through another provider, in order of their spans."""

    def __init__(self) -> None:
        self._tracers: dict[tuple[int, str, object], ForeignTracer] = {}
        self._lock = threading.Lock()

    def saw(self, tracer: object) -> None:
        info = getattr(tracer, "instrumentation_info", None)
        scope = str(getattr(info, "name", "") or "?")
        # One entry per provider and scope: older SDKs hand out a new tracer on every get_tracer.
        key = (id(getattr(tracer, "id_generator", tracer)), scope, getattr(info, "version", None))
        with self._lock:
            found = self._tracers.get(key)
            if found is None:
                found = ForeignTracer(scope, caller_outside_libraries(), provider_origin(tracer))
                self._tracers[key] = found
            found.spans += 1

    @property
    def total(self) -> int:
        return sum(t.spans for t in self._tracers.values())

    @property
    def tracers(self) -> list[ForeignTracer]:
        return sorted(self._tracers.values(), key=lambda t: -t.spans)

    def describe(self, calls: int) -> tuple[str, ...]:
        return tuple(t.describe(calls) for t in self.tracers)


@contextmanager
def counting_foreign_spans(ours: TracerProvider) -> Iterator[ForeignSpans]:
    """Count spans started meanwhile through SDK tracers not made by ``ours``; restore the SDK after."""
    found = ForeignSpans()
    ids = ours.id_generator
    original = Tracer.start_span

    @functools.wraps(original)
    def start_span(self: Tracer, *args: Any, **kwargs: Any) -> Any:
        if self.id_generator is not ids:
            found.saw(self)
        return original(self, *args, **kwargs)

    Tracer.start_span = start_span  # type: ignore[method-assign]
    try:
        yield found
    finally:
        Tracer.start_span = original  # type: ignore[method-assign]
