"""What surrounds a measurement and can spoil it, paused where that is safe and named where it is not.

* tracemalloc (``PYTHONTRACEMALLOC=1``, ``-X tracemalloc``) slows every allocation, and more in the
  arm that allocates more: it is stopped while measuring and started again after, with its frame
  limit (the heap rounds start a tracemalloc of their own). Stopping it removes its allocator hooks
  and frees its traces, yet the figures still read higher in a process it traced until then (the
  note says by how much, as measured: ``TRACEMALLOC_SHIFT``);
* a machine that other processes keep busy (:mod:`.machine`) cannot be quietened: the result says so;
* trace and profile functions (coverage, debuggers, profilers: ``sys.settrace``,
  ``sys.setprofile``, their ``threading`` twins) and ``sys.monitoring`` tools cannot be paused
  without breaking what installed them: the result says they were there, since their cost lands in
  both arms and dilutes the ratio;
* ``trace.set_tracer_provider`` or ``metrics.set_meter_provider`` called by the measured code:
  OpenTelemetry ignores each call with a logged warning, thousands of them, and the calls dilute
  the figure. The warnings are held back while measuring and the measurement stops after the block
  in which the first came, with one line naming the call (:class:`MeasurementStopped`). So does a
  global provider replaced behind OpenTelemetry's back.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from opentelemetry import metrics, trace

from pytest_otel_overhead.engine.machine import busy_note, cpu_reading, load_degree, was_busy
from pytest_otel_overhead.otel.foreign import caller_outside_libraries
from pytest_otel_overhead.otel.routing import ArmRouter

__all__ = [
    "TRACEMALLOC_SHIFT",
    "MeasurementStopped",
    "Surroundings",
    "monitoring_notes",
    "surroundings",
    "tracer_notes",
]

TRACEMALLOC_SHIFT = (
    "a process that tracemalloc traced until the measurement still reads higher with it stopped: with "
    "PYTHONTRACEMALLOC=1, +44.7% against +36.5% (medians of 5 interleaved runs each) and +81.6% against +76.4% "
    "(of 7), so overheads may read 5 to 8 points (7 to 22% of the figure) too high (docs/limits.md); run without it"
)
"""How far tracemalloc moved the figure although stopped while measuring: measured, see docs/limits.md."""

# Where OpenTelemetry logs an ignored set_*_provider call, and how the message starts.
OVERRIDE_WARNINGS = {
    "opentelemetry.trace": ("Overriding of current TracerProvider", "trace.set_tracer_provider"),
    "opentelemetry.metrics._internal": ("Overriding of current MeterProvider", "metrics.set_meter_provider"),
}
_KNOWN = (
    ("coverage", "coverage"),
    ("pydevd", "a debugger"),
    ("debugpy", "a debugger"),
    ("pdb", "a debugger"),
    ("bdb", "a debugger"),
    ("cProfile", "a profiler"),
    ("_lsprof", "a profiler"),
    ("profile", "a profiler"),
    ("yappi", "a profiler"),
    ("pyinstrument", "a profiler"),
)


class MeasurementStopped(Exception):
    """The measured code did something that makes its measurement meaningless; the message says what."""


def _who(hook: object) -> str:
    """A guess at what installed a trace or profile hook, from the module that defines it."""
    module = str(getattr(hook, "__module__", None) or type(hook).__module__)
    top = module.split(".", 1)[0]
    for prefix, guess in _KNOWN:
        if top == prefix:
            return guess
    name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
    return f"{module}.{name}"


def tracer_notes() -> list[str]:
    """A note for each trace or profile hook installed now, in this thread or for new threads."""
    notes = []
    for name, hook in (("sys.settrace", sys.gettrace()), ("sys.setprofile", sys.getprofile())):
        if hook is not None:
            notes.append(
                f"{name} is active ({_who(hook)}): timings include its cost in both arms; the ratio is diluted"
            )
    for name, hook in (("threading.settrace", threading.gettrace()), ("threading.setprofile", threading.getprofile())):
        if hook is not None:
            notes.append(
                f"{name} is active ({_who(hook)}): threads started while measuring, such as the batch "
                "processor's worker, pay its cost too"
            )
    monitoring = getattr(sys, "monitoring", None)  # Python 3.12+
    if monitoring is not None:
        notes += monitoring_notes(monitoring.get_tool)
    return notes


def monitoring_notes(get_tool: Callable[[int], str | None]) -> list[str]:
    """A note for each ``sys.monitoring`` tool registered (ids 0 to 5: debugger, coverage, profilers...)."""
    notes = []
    for tool_id in range(6):
        name = get_tool(tool_id)
        if name:
            notes.append(
                f"sys.monitoring tool {name!r} (id {tool_id}) is registered: timings include what it observes "
                "in both arms; the ratio is diluted"
            )
    return notes


class Surroundings:
    """Notes on the surroundings of one measurement, and the check for provider overrides."""

    def __init__(self, router: ArmRouter) -> None:
        self.router = router
        self.notes: list[str] = []
        self.override: tuple[str, str | None] | None = None
        """The first ignored ``set_*_provider`` call seen: the function and where it was called."""
        self.quiet: set[str] = set()
        """Loggers the process had silenced: enabled while measuring, so overrides are seen, their
        other records still dropped."""
        # Only a router that is the global provider can be replaced; a private one (tests) cannot.
        self._tracer_global = trace.get_tracer_provider() is router
        self._meter_global = metrics.get_meter_provider() is router.meters
        self._cpu_start = cpu_reading()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def look(self) -> None:
        """Note the trace and profile hooks installed now."""
        for text in tracer_notes():
            self.note(text)

    def busy(self) -> float:
        """0 on a quiet machine; once other processes have kept it busy since the measurement started, how
        heavily (``machine.load_degree``: 1 for two busy processes on two CPUs)."""
        return load_degree() if was_busy(self._cpu_start, cpu_reading()) else 0.0

    def note_load(self) -> None:
        """Note a machine that other processes kept busy from the start of the measurement until now."""
        text = busy_note(self._cpu_start, cpu_reading())
        if text is not None:
            self.note(text)

    def hold_back(self, record: logging.LogRecord) -> bool:
        """A logging filter: keep OpenTelemetry's override warnings out of the log, remembering the first."""
        expected = OVERRIDE_WARNINGS.get(record.name)
        if expected is None or not str(record.msg).startswith(expected[0]):
            return record.name not in self.quiet
        if self.override is None:
            self.override = (expected[1], caller_outside_libraries())
        return False

    def check(self) -> None:
        """Raise :class:`MeasurementStopped` if the measured code tried to replace a global provider."""
        if self.override is not None:
            function, where = self.override
            raise MeasurementStopped(
                f"the measured code calls {function}(...)"
                + (f" at {where}" if where else "")
                + ": OpenTelemetry ignores it after the first call, with a warning each time, and the calls "
                "dilute the figure; set providers once, outside the measured code (at import or in conftest.py, "
                "only when --otel-overhead is off)"
            )
        for was_global, now, mine, what in (
            (self._tracer_global, trace.get_tracer_provider(), self.router, "TracerProvider"),
            (self._meter_global, metrics.get_meter_provider(), self.router.meters, "MeterProvider"),
        ):
            if was_global and now is not mine:
                raise MeasurementStopped(
                    f"the global {what} was replaced while measuring (now a {type(now).__qualname__}), e.g. "
                    "by resetting OpenTelemetry's globals in the measured code; the arms can no longer be switched"
                )


def _tracemalloc_origin() -> str:
    """What started tracemalloc, as far as the process can tell."""
    variable = os.environ.get("PYTHONTRACEMALLOC", "").strip()
    if variable not in ("", "0"):
        return f"PYTHONTRACEMALLOC={variable}"
    if "tracemalloc" in getattr(sys, "_xoptions", {}):
        return "-X tracemalloc"
    return "started by code in this process"


def _pause_tracemalloc() -> int | None:
    """Stop tracemalloc if it traces; the frame limit to start it with again, or ``None``."""
    if not tracemalloc.is_tracing():
        return None
    limit = tracemalloc.get_traceback_limit()
    tracemalloc.stop()
    return limit


@contextmanager
def _listening(around: Surroundings) -> Iterator[None]:
    """OpenTelemetry's override warnings reach ``around.hold_back``, even from loggers the process silenced."""
    hold_back = around.hold_back
    saved = []
    for name in OVERRIDE_WARNINGS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.disabled))
        if logger.disabled or not logger.isEnabledFor(logging.WARNING):
            around.quiet.add(name)
            logger.disabled = False
            logger.setLevel(logging.WARNING)
        logger.addFilter(hold_back)
    try:
        yield
    finally:
        for logger, level, disabled in saved:
            logger.removeFilter(hold_back)
            if logger.name in around.quiet:
                logger.setLevel(level)
                logger.disabled = disabled


@contextmanager
def surroundings(router: ArmRouter) -> Iterator[Surroundings]:
    """Watch one measurement: tracemalloc paused, hooks noted, provider overrides held back and checked."""
    around = Surroundings(router)
    limit = _pause_tracemalloc()
    try:
        with _listening(around):
            if limit is not None:
                around.note(
                    f"tracemalloc was tracing ({_tracemalloc_origin()}, {limit} frame{'s' if limit != 1 else ''}): "
                    "stopped while measuring and started again after, so the traces it held are gone; "
                    + TRACEMALLOC_SHIFT
                )
            around.look()
            yield around
    finally:
        if limit is not None and not tracemalloc.is_tracing():
            tracemalloc.start(limit)
