"""The tuning guide's sampling strategies as OpenTelemetry samplers, usable with any ``TracerProvider``.

- :class:`PerOperationSampler`: a probability per span name (operation), with a default, optionally
  capped at a number of traces per second; rules come from a dict or a strategies file
  (:func:`load_strategies`: JSON, or YAML when PyYAML is installed).
- :class:`RateLimitingSampler`: at most N traces per second (a token bucket, as Jaeger's).
- :class:`LoadAdaptiveSampler`: a probability chosen from the process's CPU and memory use
  (by default > 80% → 5%, > 60% → 10%, else 20%), read at most once per refresh interval, never
  per span.
- :class:`ArmClock`: time that runs only while the plugin's instrumented arm does. The plugin gives
  it to the clock-driven samplers, so they pace themselves and read the load over instrumented time
  only; outside the plugin they run on wall time.

Each decides for the root span of a trace. :func:`per_operation`, :func:`rate_limiting` and
:func:`load_adaptive` wrap them in ``ParentBased``, so spans inside a trace follow their parent's
decision, and take the ``OTEL_TRACES_SAMPLER_ARG`` string, the signature of an
``opentelemetry_traces_sampler`` entry point::

    from opentelemetry.sdk.trace import TracerProvider
    from pytest_otel_overhead.samplers import per_operation

    provider = TracerProvider(sampler=per_operation("sampling.json"))
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

# The settings side of these samplers lives in a module without the SDK, so that settings parse in any
# pytest run; its names stay public here too.
from pytest_otel_overhead.settings.sampling import (
    DEFAULT_LOAD_THRESHOLDS,
    STRATEGY_SAMPLERS,
    LoadThresholds,
    Strategies,
    load_strategies,
    parse_load_thresholds,
    parse_strategies,
    parse_traces_per_second,
)
from pytest_otel_overhead.units import SettingsError, parse_duration_ms

__all__ = [
    "DEFAULT_LOAD_THRESHOLDS",
    "FIRST_READING_MS",
    "STRATEGY_SAMPLERS",
    "ArmClock",
    "LoadAdaptiveSampler",
    "LoadThresholds",
    "PerOperationSampler",
    "RateLimitingSampler",
    "Strategies",
    "TokenBucket",
    "load_adaptive",
    "load_strategies",
    "parse_load_thresholds",
    "parse_strategies",
    "parse_traces_per_second",
    "per_operation",
    "process_load",
    "rate_limiting",
    "strategy_sampler",
]

Clock = Callable[[], float]

FIRST_READING_MS = 10.0
"""Under the plugin, the load-adaptive sampler's first reading comes after this much instrumented
time; the next ones after twice as long each time, up to the refresh interval."""


class ArmClock:
    """Seconds counted only while the instrumented arm runs: wall time and this process's CPU time.

    The plugin alternates uninstrumented and instrumented blocks. A sampler paced by wall time would
    bank the baseline's time (a token bucket refilling while nobody asks it for traces) and read the
    baseline's load; on this clock it sees only the time it is in use, as in a process that is always
    instrumented. The pipeline starts and stops it as the arms switch; it is stopped when built.
    """

    def __init__(self, wall: Clock = time.monotonic, cpu: Clock = time.process_time) -> None:
        self._wall = wall
        self._cpu = cpu
        # (wall counted, CPU counted, wall and CPU at the start, or None while stopped), replaced
        # whole, so a span on another thread reads one consistent state without a lock.
        self._state: tuple[float, float, tuple[float, float] | None] = (0.0, 0.0, None)

    @property
    def running(self) -> bool:
        return self._state[2] is not None

    def __call__(self) -> float:
        # The time before the state: a reading then never exceeds what a stop in between counts.
        now = self._wall()
        counted, _, since = self._state
        return counted if since is None else counted + max(0.0, now - since[0])

    def cpu(self) -> float:
        """CPU seconds of the whole process (all threads) while the clock ran."""
        now = self._cpu()
        _, counted, since = self._state
        return counted if since is None else counted + max(0.0, now - since[1])

    def arm_started(self) -> None:
        wall, cpu, since = self._state
        if since is None:
            self._state = (wall, cpu, (self._wall(), self._cpu()))

    def arm_stopped(self) -> None:
        wall, cpu, since = self._state
        if since is not None:
            now_wall, now_cpu = self._wall(), self._cpu()
            self._state = (wall + max(0.0, now_wall - since[0]), cpu + max(0.0, now_cpu - since[1]), None)


def _parent_trace_state(parent_context: Context | None) -> TraceState | None:
    span_context = get_current_span(parent_context).get_span_context()
    return span_context.trace_state if span_context.is_valid else None


def _ratio(rate: float) -> TraceIdRatioBased:
    return TraceIdRatioBased(rate)


# --- rate limiting ---------------------------------------------------------------------------------


class TokenBucket:
    """``rate`` credits per second, at most ``max(rate, 1)`` banked; one credit per trace let through.

    By default it starts full, as Jaeger's limiter does, so a quiet service samples its first traces
    at once. With ``start_full=False`` it starts with one credit: the state a bucket settles in under
    traffic above its rate (between zero and one credit), so from the first trace on it lets through
    ``rate`` traces per second and no initial burst.
    """

    def __init__(self, rate: float, clock: Clock = time.monotonic, *, start_full: bool = True) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number of traces per second, not {rate!r}")
        self.rate = rate
        self._capacity = max(rate, 1.0)
        self._clock = clock
        self._balance = self._capacity if start_full else 1.0
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._last)
            self._last = now
            self._balance = min(self._capacity, self._balance + elapsed * self.rate)
            if self._balance >= 1.0:
                self._balance -= 1.0
                return True
            return False


class RateLimitingSampler(Sampler):
    """Samples at most ``max_traces_per_second`` root spans per second, whatever the traffic.

    ``start_full`` as for :class:`TokenBucket`.
    """

    def __init__(self, max_traces_per_second: float, *, clock: Clock = time.monotonic, start_full: bool = True) -> None:
        self._bucket = TokenBucket(max_traces_per_second, clock, start_full=start_full)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self._bucket.take() else Decision.DROP
        return SamplingResult(decision, None, _parent_trace_state(parent_context))

    def get_description(self) -> str:
        return f"RateLimitingSampler{{{self._bucket.rate:g}/s}}"


# --- per-operation rules -----------------------------------------------------------------------------


class PerOperationSampler(Sampler):
    """A probability per span name (trace-id based, so consistent across services), with a default.

    With ``max_traces_per_second``, traces the rules would sample are also limited to that rate.
    """

    def __init__(
        self,
        operations: Mapping[str, float] | None = None,
        default: float = 1.0,
        *,
        max_traces_per_second: float | None = None,
        clock: Clock = time.monotonic,
        start_full: bool = True,
    ) -> None:
        # One ratio sampler per distinct probability: the per-span cost is one dict lookup more.
        by_rate: dict[float, TraceIdRatioBased] = {}
        self._default = by_rate.setdefault(default, _ratio(default))
        self._by_name = {name: by_rate.setdefault(p, _ratio(p)) for name, p in (operations or {}).items()}
        self._rules = dict(operations or {})
        self._default_rate = default
        self._bucket = (
            TokenBucket(max_traces_per_second, clock, start_full=start_full)
            if max_traces_per_second is not None
            else None
        )

    @classmethod
    def from_strategies(
        cls, strategies: Strategies, *, clock: Clock = time.monotonic, start_full: bool = True
    ) -> PerOperationSampler:
        return cls(
            dict(strategies.operations),
            strategies.default,
            max_traces_per_second=strategies.max_traces_per_second,
            clock=clock,
            start_full=start_full,
        )

    def probability(self, name: str) -> float:
        return self._rules.get(name, self._default_rate)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self._by_name.get(name, self._default).should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if self._bucket is not None and result.decision is Decision.RECORD_AND_SAMPLE and not self._bucket.take():
            return SamplingResult(Decision.DROP, None, _parent_trace_state(parent_context))
        return result

    def get_description(self) -> str:
        cap = f", ≤{self._bucket.rate:g}/s" if self._bucket is not None else ""
        return f"PerOperationSampler{{default={self._default_rate:g}, {len(self._rules)} rules{cap}}}"


# --- load-adaptive -------------------------------------------------------------------------------------


class _ProcessLoad:
    """See :func:`process_load`."""

    def __init__(self, process: psutil.Process, clock: Clock, cpu: Clock) -> None:
        self._process = process
        self._clock = clock
        self._cpu = cpu
        self._last = (clock(), cpu())
        self._share = 0.0

    def __call__(self) -> float:
        now, used = self._clock(), self._cpu()
        last_time, last_used = self._last
        if now > last_time:  # else no time has passed: the previous share stands
            self._share = max(0.0, used - last_used) / (now - last_time)
        self._last = (now, used)
        memory = self._process.memory_percent() / 100.0
        return min(1.0, max(self._share, memory))


def process_load(
    process: psutil.Process | None = None, *, clock: Clock = time.monotonic, cpu: Clock | None = None
) -> Callable[[], float]:
    """A reader of a process's load, 0..1: the larger of CPU use and memory use.

    CPU use is the process's CPU seconds (all threads) per ``clock`` second since the previous
    reading (the first: since this call), against one core, since a Python thread holding the GIL
    saturates one core; memory use is resident memory over physical memory. ``cpu`` counts the CPU
    seconds: by default ``time.process_time`` for this process, psutil for another. The plugin
    passes an :class:`ArmClock` and its ``cpu``, so CPU use is measured over instrumented time.
    """
    proc = process or psutil.Process()
    if cpu is None:
        if process is None:
            cpu = time.process_time
        else:

            def cpu() -> float:
                times = proc.cpu_times()
                return float(times.user + times.system)

    return _ProcessLoad(proc, clock, cpu)


class LoadAdaptiveSampler(Sampler):
    """Trace-id ratio sampling whose ratio follows the process's load, re-read every ``refresh_ms``.

    The hot path reads a clock and compares it with the next refresh time; the load reader
    (:func:`process_load` on ``clock`` by default) runs on the span that finds the interval passed,
    at most once per interval. Before the first reading the rate below every threshold applies.

    The first reading comes one interval after the sampler is built, or with ``first_reading_ms``
    that long after, each next one after twice the previous wait until the waits reach the interval:
    a sampler that must act on a real reading soon (the plugin's, whose measuring rounds can be
    shorter than an interval) gets one early, and then readings over longer and longer spells.
    """

    def __init__(
        self,
        thresholds: LoadThresholds = DEFAULT_LOAD_THRESHOLDS,
        *,
        refresh_ms: float = 1000.0,
        reader: Callable[[], float] | None = None,
        clock: Clock = time.monotonic,
        first_reading_ms: float | None = None,
    ) -> None:
        for name, value in (("refresh_ms", refresh_ms), ("first_reading_ms", first_reading_ms)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, not {value!r}")
        self.thresholds = thresholds
        self._interval = refresh_ms / 1000.0
        self._reader = reader or process_load(clock=clock)
        self._clock = clock
        self._samplers = {rate: _ratio(rate) for rate in {thresholds.base, *(r for _, r in thresholds.steps)}}
        self.load: float | None = None
        self._current = self._samplers[thresholds.base]
        self._wait = self._interval if first_reading_ms is None else min(self._interval, first_reading_ms / 1000.0)
        self._next = clock() + self._wait
        self.refreshes = 0

    @property
    def rate(self) -> float:
        return self._current.rate

    def refresh(self) -> None:
        """Read the load now and pick the ratio for it."""
        self.load = self._reader()
        self._current = self._samplers[self.thresholds.rate(self.load)]
        self.refreshes += 1

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        now = self._clock()
        if now >= self._next:
            # Set the next time first, so concurrent spans do not all read the load at once.
            self._wait = min(self._interval, 2 * self._wait)
            self._next = now + self._wait
            self.refresh()
        return self._current.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"LoadAdaptiveSampler{{{self.thresholds.describe()}; every {self._interval * 1000:g}ms}}"


# --- factories ------------------------------------------------------------------------------------------


def per_operation(arg: str | Mapping[str, Any] | Strategies) -> Sampler:
    """``ParentBased(PerOperationSampler)`` from a strategies file path, inline JSON or a mapping."""
    strategies = load_strategies(arg, "OTEL_TRACES_SAMPLER_ARG" if isinstance(arg, str) else "strategies")
    return ParentBased(PerOperationSampler.from_strategies(strategies))


def rate_limiting(arg: str | float) -> Sampler:
    """``ParentBased(RateLimitingSampler)``: at most ``arg`` traces per second."""
    return ParentBased(RateLimitingSampler(parse_traces_per_second(arg, "OTEL_TRACES_SAMPLER_ARG")))


def load_adaptive(arg: str = "") -> Sampler:
    """``ParentBased(LoadAdaptiveSampler)``; ``arg`` holds thresholds (``"80%:0.05,60%:0.1,0.2"``),
    optionally followed by ``;refresh=500ms``; empty means the defaults."""
    thresholds_text, _, options = (arg or "").partition(";")
    thresholds = (
        parse_load_thresholds(thresholds_text, "OTEL_TRACES_SAMPLER_ARG")
        if thresholds_text.strip()
        else DEFAULT_LOAD_THRESHOLDS
    )
    refresh_ms = 1000.0
    for option in filter(None, (o.strip() for o in options.split(";"))):
        key, _, raw = option.partition("=")
        if key.strip() != "refresh":
            raise SettingsError(f"OTEL_TRACES_SAMPLER_ARG: unknown option {key.strip()!r}; known: refresh")
        refresh_ms = parse_duration_ms(raw, "OTEL_TRACES_SAMPLER_ARG refresh")
    return ParentBased(LoadAdaptiveSampler(thresholds, refresh_ms=refresh_ms))


def strategy_sampler(
    name: str,
    *,
    strategies: Strategies | None,
    max_traces_per_second: float | None,
    load_thresholds: LoadThresholds | None,
    load_refresh_ms: float,
    arm: ArmClock | None = None,
) -> Sampler:
    """The plugin's ``per_operation`` / ``rate_limiting`` / ``load_adaptive`` samplers, parent-based.

    With ``arm`` (the plugin's measuring pipelines) they count time and load on that clock, rate
    limits start without a burst and the load is first read after ``FIRST_READING_MS``: every
    block of a measurement then samples as the same sampler would long after a process started.
    Without it they are the wall-clock samplers of the ``OTEL_TRACES_SAMPLER`` entry points.
    """
    clock: Clock = time.monotonic if arm is None else arm
    steady = arm is not None
    if name == "per_operation":
        if strategies is None:
            raise SettingsError("sampler 'per_operation' needs strategies (a file path or a mapping)")
        if max_traces_per_second is not None:
            strategies = Strategies(strategies.default, strategies.operations, max_traces_per_second, strategies.source)
        return ParentBased(PerOperationSampler.from_strategies(strategies, clock=clock, start_full=not steady))
    if name == "rate_limiting":
        if max_traces_per_second is None:
            raise SettingsError("sampler 'rate_limiting' needs max_traces_per_second")
        return ParentBased(RateLimitingSampler(max_traces_per_second, clock=clock, start_full=not steady))
    if name == "load_adaptive":
        sampler = LoadAdaptiveSampler(
            load_thresholds or DEFAULT_LOAD_THRESHOLDS,
            refresh_ms=load_refresh_ms,
            reader=None if arm is None else process_load(clock=arm, cpu=arm.cpu),
            clock=clock,
            first_reading_ms=FIRST_READING_MS if steady else None,
        )
        return ParentBased(sampler)
    raise ValueError(f"not a strategy sampler: {name!r}")
