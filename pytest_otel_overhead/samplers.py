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

import importlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult, TraceIdRatioBased
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from pytest_otel_overhead.units import SettingsError, parse_duration_ms, parse_fraction

__all__ = [
    "DEFAULT_LOAD_THRESHOLDS",
    "FIRST_READING_MS",
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

STRATEGY_SAMPLERS = ("per_operation", "rate_limiting", "load_adaptive")

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


def parse_traces_per_second(value: object, source: str) -> float:
    """A positive number of traces per second: ``100``, ``"2.5"``."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removesuffix("/s"))
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise SettingsError(f"{source}: {value!r} is not a number of traces per second; use e.g. 100 or 2.5")
    return number


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


@dataclass(frozen=True)
class Strategies:
    """Per-operation sampling rules: a probability per span name, a default, an optional rate cap."""

    default: float = 1.0
    operations: tuple[tuple[str, float], ...] = ()
    max_traces_per_second: float | None = None
    source: str = ""

    def describe(self) -> str:
        cap = f", ≤{self.max_traces_per_second:g} traces/s" if self.max_traces_per_second is not None else ""
        return f"default {self.default:g}, {len(self.operations)} operation rule(s){cap}"

    def as_dict(self) -> dict[str, object]:
        return {
            "default": self.default,
            "operations": dict(self.operations),
            "max_traces_per_second": self.max_traces_per_second,
            "source": self.source,
        }


_STRATEGY_KEYS = {"default_strategy", "per_operation_strategies", "max_traces_per_second", "service_strategies"}
_RULE_KEYS = {"operation", "type", "param", "probability", "max_traces_per_second"}


def _probability(entry: object, where: str) -> float:
    """A bare probability, or ``{"type": "probabilistic", "param": p}`` (``probability`` also taken)."""
    if isinstance(entry, Mapping):
        kind = str(entry.get("type", "probabilistic")).strip().lower()
        if kind != "probabilistic":
            raise SettingsError(
                f"{where}: type {kind!r} is not supported here; use 'probabilistic' with 'param', "
                "and max_traces_per_second for a rate cap"
            )
        if "param" in entry:
            entry = entry["param"]
        elif "probability" in entry:
            entry = entry["probability"]
        else:
            raise SettingsError(f"{where}: needs 'param' (a probability from 0 to 1)")
    return parse_fraction(entry, where, what="a sampling probability")


def _operations(value: object, where: str) -> list[tuple[str, float]]:
    """``[{"operation": name, "type": "probabilistic", "param": p}, …]`` or ``{name: p, …}``."""
    if isinstance(value, Mapping):
        return [(str(name), _probability(p, f"{where}[{name!r}]")) for name, p in value.items()]
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{where}: expected a list of {{operation, type, param}} entries or a mapping")
    rules = []
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or "operation" not in entry:
            raise SettingsError(f"{here}: expected {{'operation': NAME, 'type': 'probabilistic', 'param': P}}")
        unknown = set(entry) - _RULE_KEYS
        if unknown:
            raise SettingsError(f"{here}: unknown field(s) {', '.join(sorted(unknown))}")
        rules.append((str(entry["operation"]), _probability(entry, f"{here} ({entry['operation']})")))
    return rules


def parse_strategies(data: object, source: str, *, service: str | None = None) -> Strategies:
    """Rules in the shape of the tuning guide's ``per_operation_strategies`` (see docs/tuning.md).

    ``{"default_strategy": {"type": "probabilistic", "param": 0.1}, "max_traces_per_second": 100,
    "per_operation_strategies": [{"operation": "GET /health", "type": "probabilistic", "param": 0.01}]}``;
    a bare number for the default and a ``{name: probability}`` mapping for the operations are taken
    too, as are Jaeger's ``operation_strategies`` inside ``default_strategy``, a top-level ``sampling``
    wrapper, and ``service_strategies`` entries (the one whose ``service`` matches ``service``, or
    ``$OTEL_SERVICE_NAME``, overrides the top level).
    """
    if isinstance(data, Mapping) and set(data) == {"sampling"}:
        data = data["sampling"]
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source}: sampling strategies must be a mapping with per_operation_strategies")
    unknown = set(data) - _STRATEGY_KEYS
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise SettingsError(f"{source}: unknown field(s) {names}; known: {', '.join(sorted(_STRATEGY_KEYS))}")
    default = 1.0
    operations: dict[str, float] = {}
    cap: float | None = None

    def apply(section: Mapping[str, Any], where: str) -> None:
        nonlocal default, cap
        strategy = section.get("default_strategy")
        if strategy is not None:
            default = _probability(strategy, f"{where} default_strategy")
            if isinstance(strategy, Mapping) and "operation_strategies" in strategy:
                operations.update(_operations(strategy["operation_strategies"], f"{where} operation_strategies"))
        if "per_operation_strategies" in section:
            operations.update(_operations(section["per_operation_strategies"], f"{where} per_operation_strategies"))
        if section.get("max_traces_per_second") is not None:
            cap = parse_traces_per_second(section["max_traces_per_second"], f"{where} max_traces_per_second")

    apply(data, source)
    service = service if service is not None else os.environ.get("OTEL_SERVICE_NAME")
    services = data.get("service_strategies") or []
    if not isinstance(services, (list, tuple)):
        raise SettingsError(f"{source} service_strategies: expected a list of {{service, …}} entries")
    for index, entry in enumerate(services):
        if not isinstance(entry, Mapping) or "service" not in entry:
            raise SettingsError(f"{source} service_strategies[{index}]: needs a 'service' name")
        if service is not None and str(entry["service"]) == service:
            rest = {k: v for k, v in entry.items() if k != "service"}
            unknown = set(rest) - (_STRATEGY_KEYS - {"service_strategies"}) - {"type", "param"}
            if unknown:
                raise SettingsError(f"{source} service {service!r}: unknown field(s) {', '.join(sorted(unknown))}")
            if "param" in rest:  # Jaeger's flat form: the service's own probabilistic default
                rest["default_strategy"] = {"type": rest.pop("type", "probabilistic"), "param": rest.pop("param")}
            apply(rest, f"{source} service {service!r}")
    return Strategies(default=default, operations=tuple(operations.items()), max_traces_per_second=cap, source=source)


def load_strategies(value: object, source: str) -> Strategies:
    """Strategies from a mapping (a marker kwarg), inline JSON text, or a JSON / YAML file path.

    Relative paths are taken from the current directory.
    """
    if isinstance(value, Strategies):
        return value
    if isinstance(value, Mapping):
        return parse_strategies(value, source)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{source}: {value!r} is not sampling strategies; give a JSON or YAML file path")
    text = value.strip()
    if text.startswith("{"):
        try:
            return parse_strategies(json.loads(text), source)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{source}: inline strategies are not valid JSON: {error}") from None
    path = Path(text).expanduser()
    where = f"{source}: {path}"
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as error:  # ValueError: a NUL in the path
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise SettingsError(f"{source}: cannot read the strategies file {path}: {reason}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            yaml = importlib.import_module("yaml")
        except ImportError:
            raise SettingsError(
                f"{where}: reading YAML needs PyYAML; pip install 'pytest-otel-overhead[yaml]' or use JSON"
            ) from None
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise SettingsError(f"{where}: not valid YAML: {str(error).splitlines()[0]}") from None
    else:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{where}: not valid JSON: {error}") from None
    return parse_strategies(data, where)


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


@dataclass(frozen=True)
class LoadThresholds:
    """Probability by load: the first threshold the load exceeds picks its rate; below all, ``base``."""

    steps: tuple[tuple[float, float], ...] = ((0.8, 0.05), (0.6, 0.10))
    base: float = 0.20

    def rate(self, load: float) -> float:
        for threshold, rate in self.steps:
            if load > threshold:
                return rate
        return self.base

    def describe(self) -> str:
        return ", ".join(f">{t * 100:g}%: {r:g}" for t, r in self.steps) + f", else {self.base:g}"

    def as_text(self) -> str:
        return ",".join(f"{t * 100:g}%:{r:g}" for t, r in self.steps) + f",{self.base:g}"


DEFAULT_LOAD_THRESHOLDS = LoadThresholds()


def parse_load_thresholds(value: object, source: str) -> LoadThresholds:
    """``"80%:0.05, 60%:0.1, 0.2"``: LOAD:RATE pairs, then the rate below every threshold (default 0.2).

    A mapping ``{"80%": 0.05, "60%": 0.1, "else": 0.2}`` is taken too (from a marker).
    """
    if isinstance(value, LoadThresholds):
        return value
    items: list[tuple[str, object]] = []
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str) and value.strip():
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            threshold, sep, rate_text = part.partition(":")
            items.append((threshold.strip(), rate_text.strip()) if sep else ("else", threshold.strip()))
    else:
        raise SettingsError(f"{source}: {value!r} is not load thresholds; use e.g. '80%:0.05,60%:0.1,0.2'")
    steps: list[tuple[float, float]] = []
    base = DEFAULT_LOAD_THRESHOLDS.base
    for threshold, rate in items:
        parsed_rate = parse_fraction(rate, source, what="a sampling rate")
        if threshold.lower() in ("else", "base", "default", "*"):
            base = parsed_rate
        else:
            steps.append((parse_fraction(threshold, source, what="a load threshold"), parsed_rate))
    if not steps:
        raise SettingsError(f"{source}: {value!r} has no LOAD:RATE threshold; use e.g. '80%:0.05,60%:0.1,0.2'")
    if len({t for t, _ in steps}) != len(steps):
        raise SettingsError(f"{source}: {value!r} names a load threshold twice")
    return LoadThresholds(tuple(sorted(steps, reverse=True)), base)


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
