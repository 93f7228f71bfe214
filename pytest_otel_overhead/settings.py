"""What to measure and how: settings resolved from marker, CLI, ini, environment and defaults.

Precedence is marker > CLI > ini > environment > defaults. Each value is parsed where it is read
and keeps the name of its source, so every error (and the JSON report) can say where a value came from.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .units import (
    Budget,
    SettingsError,
    parse_budget,
    parse_count,
    parse_duration_ms,
    parse_fraction,
    parse_seconds,
)

__all__ = [
    "BUDGET_METRICS",
    "KEYS",
    "Layer",
    "MeasureSettings",
    "PipelineSettings",
    "SettingsError",
    "env_layer",
    "resolve",
]

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
PROCESSORS = ("batch", "simple")
EXPORTERS = ("none", "memory")
GATE_METRICS = ("cpu", "wall")
BUDGET_METRICS = ("cpu", "wall", "latency_p50", "latency_p95", "latency_p99", "heap")
INCONCLUSIVE_POLICIES = ("fail", "warn", "pass")


def _choice(options: Sequence[str]) -> Callable[[object, str], str]:
    def parse(value: object, source: str) -> str:
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text is None or text not in options:
            raise SettingsError(f"{source}: {value!r} is not one of {', '.join(options)}")
        return text

    return parse


def _sampler(value: object, source: str) -> str:
    return _choice(SAMPLERS)(value, source)


def _budget(metric: str) -> Callable[[object, str], Budget]:
    unit = "bytes" if metric == "heap" else "seconds"
    return lambda value, source: parse_budget(value, source, unit=unit)  # type: ignore[arg-type]


def _rate(value: object, source: str) -> float:
    return parse_fraction(value, source, what="a sampling rate")


@dataclass(frozen=True)
class Key:
    """One setting: its parser, help text, and the environment variables that may set it."""

    name: str
    parse: Callable[[object, str], Any]
    help: str
    env: tuple[str, ...] = ()


KEYS: dict[str, Key] = {
    key.name: key
    for key in (
        Key("budget", _budget("cpu"), "budget of the gate metric (cpu unless metric=wall), e.g. 5% (default)"),
        Key("cpu", _budget("cpu"), "CPU-time budget (all threads), e.g. 5% or 50us per call"),
        Key("wall", _budget("wall"), "wall-time budget, e.g. 5% or 50us per call"),
        Key("latency_p50", _budget("latency_p50"), "median latency budget, e.g. 5% or 50ms"),
        Key("latency_p95", _budget("latency_p95"), "95th-percentile latency budget, e.g. 10% or 50ms"),
        Key("latency_p99", _budget("latency_p99"), "99th-percentile latency budget, e.g. 10% or 50ms"),
        Key("heap", _budget("heap"), "peak-heap budget, e.g. 10% or 2MiB"),
        Key("metric", _choice(GATE_METRICS), "metric that 'budget' applies to: cpu (default) or wall"),
        Key(
            "sampler",
            _sampler,
            "sampler: " + ", ".join(SAMPLERS) + " (default parentbased_always_on)",
            env=("OTEL_TRACES_SAMPLER",),
        ),
        Key(
            "sample_rate",
            _rate,
            "sampling ratio 0..1; alone it selects parentbased_traceidratio",
            env=("OTEL_TRACING_SAMPLE_RATE", "OTEL_TRACES_SAMPLER_ARG"),
        ),
        Key("processor", _choice(PROCESSORS), "span processor: batch (default) or simple"),
        Key(
            "batch_size",
            parse_count,
            "max export batch size (default 512)",
            env=("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_TRACING_BATCH_SIZE"),
        ),
        Key(
            "schedule_delay",
            parse_duration_ms,
            "batch schedule delay, e.g. 5s or 500ms; bare numbers are ms (default 5000)",
            env=("OTEL_BSP_SCHEDULE_DELAY", "OTEL_TRACING_BATCH_TIMEOUT"),
        ),
        Key(
            "queue_size",
            parse_count,
            "max span queue size (default 2048)",
            env=("OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_TRACING_QUEUE_SIZE"),
        ),
        Key(
            "export_timeout",
            parse_duration_ms,
            "export timeout; bare numbers are ms (default 30000)",
            env=("OTEL_BSP_EXPORT_TIMEOUT",),
        ),
        Key("exporter", _choice(EXPORTERS), "span exporter: none (default) or memory"),
        Key("max_time", parse_seconds, "cap on measuring time per test, e.g. 30 or 2min (default 30 s)"),
        Key(
            "inconclusive",
            _choice(INCONCLUSIVE_POLICIES),
            "what an undecided budget does to the test: fail, warn (default) or pass",
        ),
    )
}

# A rate from OTEL_TRACES_SAMPLER_ARG only parameterises a ratio sampler, as in the OTel spec;
# every other source of a rate also selects the ratio sampler when none is named.
_SPEC_ONLY_RATE_VARS = ("OTEL_TRACES_SAMPLER_ARG",)


@dataclass(frozen=True)
class PipelineSettings:
    """The OpenTelemetry SDK pipeline of the instrumented arm."""

    sampler: str = "parentbased_always_on"
    sample_rate: float | None = None
    processor: str = "batch"
    batch_size: int = 512
    schedule_delay_ms: float = 5000.0
    queue_size: int = 2048
    export_timeout_ms: float = 30000.0
    exporter: str = "none"

    def describe(self) -> str:
        sampler = self.sampler + (f" {self.sample_rate:g}" if self.sample_rate is not None else "")
        if self.processor == "batch":
            processor = f"batch {self.batch_size}/{self.schedule_delay_ms:g}ms, queue {self.queue_size}"
        else:
            processor = "simple processor"
        return f"sampler {sampler}, {processor}, exporter {self.exporter}"

    def as_dict(self) -> dict[str, object]:
        return {
            "sampler": self.sampler,
            "sample_rate": self.sample_rate,
            "processor": self.processor,
            "batch_size": self.batch_size,
            "schedule_delay_ms": self.schedule_delay_ms,
            "queue_size": self.queue_size,
            "export_timeout_ms": self.export_timeout_ms,
            "exporter": self.exporter,
        }


@dataclass(frozen=True)
class MeasureSettings:
    """Everything one measurement needs: the pipeline, the budgets and the limits."""

    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    budgets: tuple[tuple[str, Budget], ...] = (("cpu", Budget("relative", 0.05)),)
    metric: str = "cpu"
    max_time: float = 30.0
    inconclusive: str = "warn"
    sources: tuple[tuple[str, str], ...] = ()

    def budget(self, metric: str) -> Budget | None:
        return dict(self.budgets).get(metric)

    def source(self, key: str) -> str:
        return dict(self.sources).get(key, "default")

    def as_dict(self) -> dict[str, object]:
        return {
            **self.pipeline.as_dict(),
            "metric": self.metric,
            "max_time_s": self.max_time,
            "inconclusive": self.inconclusive,
            "budgets": {name: {"kind": b.kind, "value": b.value} for name, b in self.budgets},
            "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class Layer:
    """Parsed values from one source level; each value keeps the name of the place it came from."""

    values: Mapping[str, tuple[Any, str]]

    @classmethod
    def parse(cls, raw: Mapping[str, object], source_of: Callable[[str], str]) -> Layer:
        return cls({key: (KEYS[key].parse(value, source_of(key)), source_of(key)) for key, value in raw.items()})


def check_keys(raw: Mapping[str, object], source: str) -> None:
    """Reject unknown setting names, suggesting the closest known one."""
    for key in raw:
        if key not in KEYS:
            close = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(KEYS)}"
            raise SettingsError(f"{source}: unknown argument {key!r}{hint}")


def env_layer(environ: Mapping[str, str] | None = None) -> Layer:
    """Settings from OTel's own and the tuning guide's environment variables.

    Unlike the SDK, which falls back to defaults on a bad value, a bad value here is an error
    naming the variable. Two variables that set one setting differently are an error too.
    """
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        raise SettingsError(
            "$OTEL_SDK_DISABLED=true would make the instrumented arm record nothing; unset it to measure overhead"
        )
    values: dict[str, tuple[Any, str]] = {}
    for key in KEYS.values():
        for var in key.env:
            raw = environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            source = f"${var}"
            parsed = key.parse(raw, source)
            if key.name in values and values[key.name][0] != parsed:
                other = values[key.name][1]
                raise SettingsError(f"{source}={raw} disagrees with {other}; set one of them")
            values.setdefault(key.name, (parsed, source))
    return Layer(values)


def _pick(layers: Iterable[Layer], key: str) -> tuple[Any, str] | None:
    for layer in layers:
        if key in layer.values:
            return layer.values[key]
    return None


def resolve(layers: Sequence[Layer]) -> MeasureSettings:
    """Merge layers (highest precedence first) into settings, checking values that must agree."""
    chosen: dict[str, tuple[Any, str]] = {}
    for key in KEYS:
        picked = _pick(layers, key)
        if picked is not None:
            chosen[key] = picked

    def value(key: str, default: Any) -> Any:
        return chosen[key][0] if key in chosen else default

    def source(key: str) -> str:
        return chosen[key][1] if key in chosen else "default"

    sampler = value("sampler", None)
    rate = value("sample_rate", None)
    rate_source = source("sample_rate")
    if sampler is None:
        selects_ratio = rate is not None and not any(var in rate_source for var in _SPEC_ONLY_RATE_VARS)
        sampler = "parentbased_traceidratio" if selects_ratio else "parentbased_always_on"
    if sampler in RATIO_SAMPLERS:
        rate = 1.0 if rate is None else rate
    elif rate is not None:
        for layer in layers:
            if "sampler" in layer.values and "sample_rate" in layer.values:
                rate_src = layer.values["sample_rate"][1]
                if not any(var in rate_src for var in _SPEC_ONLY_RATE_VARS):
                    raise SettingsError(
                        f"{rate_src}: sample_rate={rate:g} has no effect with sampler {sampler!r}; "
                        f"use sampler='parentbased_traceidratio' or drop sample_rate"
                    )
        rate = None  # a rate does not apply to a non-ratio sampler chosen elsewhere, as in the OTel spec

    pipeline = PipelineSettings(
        sampler=sampler,
        sample_rate=rate,
        processor=value("processor", "batch"),
        batch_size=value("batch_size", 512),
        schedule_delay_ms=value("schedule_delay", 5000.0),
        queue_size=value("queue_size", 2048),
        export_timeout_ms=value("export_timeout", 30000.0),
        exporter=value("exporter", "none"),
    )
    if pipeline.processor == "batch" and pipeline.batch_size > pipeline.queue_size:
        raise SettingsError(
            f"batch_size {pipeline.batch_size} ({source('batch_size')}) exceeds queue_size "
            f"{pipeline.queue_size} ({source('queue_size')}); a batch must fit in the queue"
        )

    metric = value("metric", "cpu")
    budgets: dict[str, Budget] = {}
    sources = {key: src for key, (_, src) in chosen.items()}
    for name in BUDGET_METRICS:
        if name in chosen:
            budgets[name] = chosen[name][0]
    # 'budget' is the gate metric's budget; the more precise of the two wins when they share a layer.
    for layer in layers:
        generic = layer.values.get("budget")
        specific = layer.values.get(metric)
        if generic is None and specific is None:
            continue
        if generic is not None and specific is not None and generic[0] != specific[0]:
            raise SettingsError(f"{generic[1]}: budget and {metric} disagree; give only one of them")
        budgets[metric], sources[metric] = specific or generic  # type: ignore[misc]
        break
    else:
        budgets[metric] = Budget("relative", 0.05)
    ordered = tuple((name, budgets[name]) for name in BUDGET_METRICS if name in budgets)
    return MeasureSettings(
        pipeline=pipeline,
        budgets=ordered,
        metric=metric,
        max_time=value("max_time", 30.0),
        inconclusive=value("inconclusive", "warn"),
        sources=tuple(sorted(sources.items())),
    )


def with_overrides(settings: MeasureSettings, **pipeline: Any) -> MeasureSettings:
    """A copy with some pipeline fields replaced (used by sweeps and tools built on the plugin)."""
    return replace(settings, pipeline=replace(settings.pipeline, **pipeline))
