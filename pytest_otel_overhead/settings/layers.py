"""What to measure and how: settings resolved from marker, CLI, ini, environment and defaults.

Precedence is marker > CLI > ini > environment > defaults. Each value is parsed where it is read
and keeps the name of its source, so every error (and the JSON report) can say where a value came from.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_otel_overhead.settings.pipeline import (
    check_exporter,
    check_instrumentors,
    export_fields,
    parse_backend_error_rate,
    parse_backend_latency,
    parse_compression,
    parse_endpoint,
    parse_exporter,
    parse_instrumentors,
    parse_max_dropped,
    parse_metric_interval,
)
from pytest_otel_overhead.settings.profiles import PROFILES, canonical_profile
from pytest_otel_overhead.settings.sampling import (
    STRATEGY_SAMPLERS,
    LoadThresholds,
    Strategies,
    load_strategies,
    parse_load_thresholds,
    parse_traces_per_second,
)
from pytest_otel_overhead.units import (
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
    *STRATEGY_SAMPLERS,
)
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
# The ratio sampler a rate turns a non-ratio one into: root-only samplers stay root-only.
_RATIO_FORM = {"always_on": "traceidratio", "always_off": "traceidratio"}
PROCESSORS = ("batch", "simple")
EXPORTERS = ("none", "memory", "otlp")  # or a module:factory
GATE_METRICS = ("cpu", "wall")
BUDGET_METRICS = ("cpu", "wall", "latency_p50", "latency_p95", "latency_p99", "heap")
INCONCLUSIVE_POLICIES = ("fail", "warn", "pass")
NO_TELEMETRY_POLICIES = ("warn", "fail", "ignore")
MODES = ("time", "instructions")


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


def _profile(value: object, source: str) -> str:
    name = canonical_profile(value) if isinstance(value, str) else None
    if name is None:
        raise SettingsError(f"{source}: {value!r} is not a profile; use one of {', '.join(PROFILES)}")
    return name


# OTEL_TRACES_SAMPLER_ARG parameterises the sampler OTEL_TRACES_SAMPLER names: for the plugin's own
# samplers it sets that sampler's setting instead of a rate.
SAMPLER_ARG_KEYS = {
    "per_operation": "strategies",
    "rate_limiting": "max_traces_per_second",
    "load_adaptive": "load_thresholds",
}


@dataclass(frozen=True)
class Key:
    """One setting: its parser, help text, and the environment variables that may set it.

    ``check`` is the parser without imports, for settings whose parser imports what they name
    (exporter factories, instrumentors): a session that does not measure checks with it.
    """

    name: str
    parse: Callable[[object, str], Any]
    help: str
    env: tuple[str, ...] = ()
    check: Callable[[object, str], Any] | None = None


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
        Key(
            "strategies",
            load_strategies,
            "per-operation sampling rules: a JSON (or YAML) file, inline JSON, or a mapping in a marker; "
            "alone it selects sampler per_operation",
        ),
        Key(
            "max_traces_per_second",
            parse_traces_per_second,
            "at most this many traces per second; alone it selects sampler rate_limiting, "
            "with per_operation it caps the rules",
        ),
        Key(
            "load_thresholds",
            parse_load_thresholds,
            "load_adaptive rates by process load, LOAD:RATE pairs then the rate below them "
            "(default 80%:0.05,60%:0.1,0.2); alone it selects sampler load_adaptive",
        ),
        Key(
            "load_refresh",
            parse_duration_ms,
            "how often load_adaptive re-reads the process load; bare numbers are ms (default 1000)",
        ),
        Key(
            "profile",
            _profile,
            "named pipeline settings: high, medium, low (the tuning guide's), development, staging, "
            "production, high-traffic; settings given alongside win",
            env=("OTEL_PERFORMANCE_PROFILE",),
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
        Key(
            "exporter",
            parse_exporter,
            "span exporter: none (default), memory, otlp (alias otlp-http; needs the [otlp] extra) "
            "or module:factory returning a SpanExporter",
            check=check_exporter,
        ),
        Key(
            "endpoint",
            parse_endpoint,
            "OTLP/HTTP endpoint of your own collector, e.g. http://localhost:4318; alone it selects "
            "exporter otlp (default: a receiver on 127.0.0.1 that the plugin starts)",
        ),
        Key(
            "compression",
            parse_compression,
            "OTLP compression: none (default), gzip or deflate",
            env=("OTEL_EXPORTER_OTLP_COMPRESSION",),
        ),
        Key(
            "backend_latency",
            parse_backend_latency,
            "delay of the embedded OTLP receiver before each answer, e.g. 50ms (default 0)",
        ),
        Key(
            "backend_error_rate",
            parse_backend_error_rate,
            "share of requests the embedded OTLP receiver answers 503, e.g. 0.1 (default 0)",
        ),
        Key(
            "metric_interval",
            parse_metric_interval,
            "metric export interval, counted in instrumented time; bare numbers are ms (default 60000)",
            env=("OTEL_METRIC_EXPORT_INTERVAL",),
        ),
        Key(
            "instrument",
            parse_instrumentors,
            "instrumentors applied in the instrumented arm only, module:Class, comma-separated "
            "(e.g. opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor)",
            check=check_instrumentors,
        ),
        Key(
            "max_dropped",
            parse_max_dropped,
            "fail the test when the diagnostic round loses more spans than this (default: report only)",
        ),
        Key(
            "mode",
            _choice(MODES),
            "what to measure: time (CPU and wall time, default) or instructions (counted under valgrind)",
        ),
        Key("max_time", parse_seconds, "cap on measuring time per test, e.g. 30 or 2min (default 30 s)"),
        Key(
            "processes",
            parse_count,
            "fresh processes that time mode spreads each measurement over, one after another, so that the "
            "interval includes how much processes differ; use 3 or more (default 1: this process only)",
            env=("PYTEST_OTEL_OVERHEAD_PROCESSES",),
        ),
        Key(
            "inconclusive",
            _choice(INCONCLUSIVE_POLICIES),
            "what an undecided budget does to the test: fail, warn (default) or pass",
        ),
        Key(
            "no_telemetry",
            _choice(NO_TELEMETRY_POLICIES),
            "what a measurement whose instrumented arm recorded no spans and no metrics does to the test: "
            "warn (default), fail or ignore",
            env=("OTEL_OVERHEAD_NO_TELEMETRY",),
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
    strategies: Strategies | None = None
    max_traces_per_second: float | None = None
    load_thresholds: LoadThresholds | None = None
    load_refresh_ms: float = 1000.0
    endpoint: str | None = None
    compression: str = "none"
    backend_latency_ms: float = 0.0
    backend_error_rate: float = 0.0
    metric_interval_ms: float = 60000.0
    instrument: tuple[str, ...] = ()
    max_dropped: int | None = None

    def _describe_exporter(self) -> str:
        text = f"exporter {self.exporter}"
        if self.exporter == "otlp":
            text += "" if self.compression == "none" else f" {self.compression}"
            if self.endpoint is not None:
                text += f" to {self.endpoint}"
            else:
                backend = [f"{self.backend_latency_ms:g}ms"] if self.backend_latency_ms else []
                backend += [f"{self.backend_error_rate:.0%} 503"] if self.backend_error_rate else []
                text += " to the embedded receiver" + (f" ({', '.join(backend)})" if backend else "")
        if self.instrument:
            text += ", instrumenting " + ", ".join(item.rsplit(":", 1)[-1] for item in self.instrument)
        return text

    def _describe_sampler(self) -> str:
        if self.sampler == "per_operation" and self.strategies is not None:
            cap = self.max_traces_per_second or self.strategies.max_traces_per_second
            rules = Strategies(self.strategies.default, self.strategies.operations, cap)
            return f"per_operation ({rules.describe()})"
        if self.sampler == "rate_limiting":
            return f"rate_limiting {self.max_traces_per_second or 0:g}/s"
        if self.sampler == "load_adaptive":
            thresholds = self.load_thresholds or LoadThresholds()
            return f"load_adaptive ({thresholds.describe()}; every {self.load_refresh_ms:g}ms)"
        return self.sampler + (f" {self.sample_rate:g}" if self.sample_rate is not None else "")

    def describe(self) -> str:
        sampler = self._describe_sampler()
        if self.processor == "batch":
            processor = f"batch {self.batch_size}/{self.schedule_delay_ms:g}ms, queue {self.queue_size}"
        elif self.processor == "none":  # an attribution layer: spans recorded, never processed
            processor = "no processor"
        else:
            processor = "simple processor"
        return f"sampler {sampler}, {processor}, {self._describe_exporter()}"

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
            "strategies": None if self.strategies is None else self.strategies.as_dict(),
            "max_traces_per_second": self.max_traces_per_second,
            "load_thresholds": None if self.load_thresholds is None else self.load_thresholds.as_text(),
            "load_refresh_ms": self.load_refresh_ms,
            "endpoint": self.endpoint,
            "compression": self.compression,
            "backend_latency_ms": self.backend_latency_ms,
            "backend_error_rate": self.backend_error_rate,
            "metric_interval_ms": self.metric_interval_ms,
            "instrument": list(self.instrument),
            "max_dropped": self.max_dropped,
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
    profile: str | None = None
    mode: str = "time"
    processes: int = 1
    """Fresh processes a time-mode measurement is spread over (``engine.replicas``); 1 measures here."""
    no_telemetry: str = "warn"
    """What a measurement that saw no telemetry in its instrumented arm does: warn, fail or ignore."""

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
            "profile": self.profile,
            "mode": self.mode,
            "processes": self.processes,
            "no_telemetry": self.no_telemetry,
            "budgets": {name: {"kind": b.kind, "value": b.value} for name, b in self.budgets},
            "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class Layer:
    """Parsed values from one source level; each value keeps the name of the place it came from."""

    values: Mapping[str, tuple[Any, str]]

    @classmethod
    def parse(
        cls,
        raw: Mapping[str, object],
        source_of: Callable[[str], str],
        *,
        name_keys: bool = False,
        imports: bool = True,
    ) -> Layer:
        """Parse every value; ``name_keys`` for a source shared by all keys (a marker's names the
        test), whose errors must then say which argument, batch_size or queue_size, is bad.
        Without ``imports``, what a value names is checked as written, not imported (see :class:`Key`)."""
        values = {}
        for key, value in raw.items():
            source = source_of(key)
            values[key] = (_parse_value(key, value, source, name_key=name_keys, imports=imports), source)
        return cls(values)


def _parse_value(key: str, value: object, source: str, *, name_key: bool, imports: bool) -> Any:
    setting = KEYS[key]
    parse = setting.parse if imports or setting.check is None else setting.check
    try:
        return parse(value, source)
    except SettingsError as error:
        message = str(error)
        said = message[len(source) :] if message.startswith(source) else message
        if not name_key or re.search(rf"\b{key}\b", said):  # "'five' is not a budget" names budget already
            raise
        raise SettingsError(f"{message} (argument {key})") from None


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
    arg_key = SAMPLER_ARG_KEYS.get(environ.get("OTEL_TRACES_SAMPLER", "").strip().lower())
    for key in KEYS.values():
        for var in key.env:
            raw = environ.get(var)
            if raw is None or raw.strip() == "" or (arg_key is not None and var == "OTEL_TRACES_SAMPLER_ARG"):
                continue
            source = f"${var}"
            parsed = key.parse(raw, source)
            if key.name in values and values[key.name][0] != parsed:
                other = values[key.name][1]
                raise SettingsError(f"{source}={raw} disagrees with {other}; set one of them")
            values.setdefault(key.name, (parsed, source))
    raw_arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    if arg_key is not None and raw_arg.strip():
        values[arg_key] = (KEYS[arg_key].parse(raw_arg, "$OTEL_TRACES_SAMPLER_ARG"), "$OTEL_TRACES_SAMPLER_ARG")
    return Layer(values)


def _pick(layers: Iterable[Layer], key: str) -> tuple[Any, str] | None:
    for layer in layers:
        if key in layer.values:
            return layer.values[key]
    return None


def _rank(layers: Sequence[Layer], key: str) -> int:
    """Index of the highest layer that sets ``key`` (lower is higher precedence); past the end if none."""
    return next((index for index, layer in enumerate(layers) if key in layer.values), len(layers))


def profile_layer(name: str, named_by: str) -> Layer:
    """The values of profile ``name`` as a layer, each naming the profile and where it was chosen."""
    return Layer.parse(PROFILES[name].values, lambda key: f"profile {name} ({named_by})")


def _with_profile(layers: Sequence[Layer]) -> list[Layer]:
    """Insert the highest-precedence profile's values just below the layer that names it."""
    for index, layer in enumerate(layers):
        if "profile" in layer.values:
            name, named_by = layer.values["profile"]
            return [*layers[: index + 1], profile_layer(name, named_by), *layers[index + 1 :]]
    return list(layers)


def _strategy_fields(
    sampler: str, chosen_value: Callable[[str, Any], Any], source: Callable[[str], str]
) -> dict[str, Any]:
    """Pipeline fields of the plugin's own samplers; each one's required setting must be there."""

    def value(key: str, default: Any) -> Any:
        # $OTEL_TRACES_SAMPLER_ARG parameterises only the sampler $OTEL_TRACES_SAMPLER names, as for rates.
        if source(key) == "$OTEL_TRACES_SAMPLER_ARG" and SAMPLER_ARG_KEYS.get(sampler) != key:
            return default
        return chosen_value(key, default)

    fields: dict[str, Any] = {"load_refresh_ms": value("load_refresh", 1000.0)}
    if sampler == "per_operation":
        if value("strategies", None) is None:
            raise SettingsError(
                f"{source('sampler')}: sampler 'per_operation' needs strategies, e.g. strategies='sampling.json'"
            )
        fields["strategies"] = value("strategies", None)
    if sampler in ("per_operation", "rate_limiting"):
        fields["max_traces_per_second"] = value("max_traces_per_second", None)
        if sampler == "rate_limiting" and fields["max_traces_per_second"] is None:
            raise SettingsError(f"{source('sampler')}: sampler 'rate_limiting' needs max_traces_per_second, e.g. 100")
    if sampler == "load_adaptive":
        fields["load_thresholds"] = value("load_thresholds", LoadThresholds())
    return fields


class _Chosen:
    """The value of each key from the highest layer that sets it, with the name of its source."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.values: dict[str, tuple[Any, str]] = {}
        for key in KEYS:
            picked = _pick(layers, key)
            if picked is not None:
                self.values[key] = picked

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def value(self, key: str, default: Any) -> Any:
        return self.values[key][0] if key in self.values else default

    def source(self, key: str) -> str:
        return self.values[key][1] if key in self.values else "default"


def resolve(layers: Sequence[Layer]) -> MeasureSettings:
    """Merge layers (highest precedence first) into settings, checking values that must agree.

    A profile named in a layer expands into a layer of its own just below that one.
    """
    layers = _with_profile(layers)
    chosen = _Chosen(layers)
    sampler, rate = _sampler_and_rate(layers, chosen)
    pipeline = _pipeline(sampler, rate, chosen)
    metric = chosen.value("metric", "cpu")
    budgets, sources = _budgets(layers, chosen, metric)
    return MeasureSettings(
        pipeline=pipeline,
        budgets=budgets,
        metric=metric,
        max_time=chosen.value("max_time", 30.0),
        inconclusive=chosen.value("inconclusive", "warn"),
        sources=tuple(sorted(sources.items())),
        profile=chosen.value("profile", None),
        mode=chosen.value("mode", "time"),
        processes=chosen.value("processes", 1),
        no_telemetry=chosen.value("no_telemetry", "warn"),
    )


def _sampler_and_rate(layers: Sequence[Layer], chosen: _Chosen) -> tuple[str, float | None]:
    """The sampler, named or implied by the settings given, and the rate if it is a ratio sampler.

    A rate that overrides a named sampler is recorded in ``chosen`` as the sampler's source.
    """
    sampler = chosen.value("sampler", None)
    rate = chosen.value("sample_rate", None)
    rate_source = chosen.source("sample_rate")
    selects_ratio = rate is not None and not any(var in rate_source for var in _SPEC_ONLY_RATE_VARS)
    if sampler is None:
        # A setting that only one of the plugin's samplers uses selects that sampler.
        implied = next((name for name, key in SAMPLER_ARG_KEYS.items() if key in chosen), None)
        sampler = implied or ("parentbased_traceidratio" if selects_ratio else "parentbased_always_on")
    elif sampler not in RATIO_SAMPLERS and selects_ratio and _rank(layers, "sample_rate") < _rank(layers, "sampler"):
        # A rate set above the sampler's layer wins, as precedence says (a marker's rate over
        # $OTEL_TRACES_SAMPLER): it selects a ratio sampler, as a rate alone does.
        sampler = _RATIO_FORM.get(sampler, "parentbased_traceidratio")
        chosen.values["sampler"] = (sampler, rate_source)
    if sampler in RATIO_SAMPLERS:
        return sampler, 1.0 if rate is None else rate
    if rate is not None:
        _check_rate_unused(layers, sampler, rate)
    # A rate does not apply to a non-ratio sampler chosen elsewhere, as in the OTel spec.
    return sampler, None


def _check_rate_unused(layers: Sequence[Layer], sampler: str, rate: float) -> None:
    """Reject a rate given alongside the non-ratio sampler it would be lost on."""
    for layer in layers:
        # Only a layer whose own sampler was chosen asked for a rate that now has no effect.
        if "sampler" in layer.values and "sample_rate" in layer.values and layer.values["sampler"][0] == sampler:
            rate_src = layer.values["sample_rate"][1]
            if not any(var in rate_src for var in _SPEC_ONLY_RATE_VARS):
                raise SettingsError(
                    f"{rate_src}: sample_rate={rate:g} has no effect with sampler {sampler!r}; "
                    f"use sampler='parentbased_traceidratio' or drop sample_rate"
                )


def _pipeline(sampler: str, rate: float | None, chosen: _Chosen) -> PipelineSettings:
    """The pipeline settings, checking that a batch fits in the queue."""
    pipeline = PipelineSettings(
        sampler=sampler,
        sample_rate=rate,
        processor=chosen.value("processor", "batch"),
        batch_size=chosen.value("batch_size", 512),
        schedule_delay_ms=chosen.value("schedule_delay", 5000.0),
        queue_size=chosen.value("queue_size", 2048),
        export_timeout_ms=chosen.value("export_timeout", 30000.0),
        **_strategy_fields(sampler, chosen.value, chosen.source),
        **export_fields(chosen.value, chosen.source),
    )
    if pipeline.processor == "batch" and pipeline.batch_size > pipeline.queue_size:
        raise SettingsError(
            f"batch_size {pipeline.batch_size} ({chosen.source('batch_size')}) exceeds queue_size "
            f"{pipeline.queue_size} ({chosen.source('queue_size')}); a batch must fit in the queue"
        )
    return pipeline


def _budgets(
    layers: Sequence[Layer], chosen: _Chosen, metric: str
) -> tuple[tuple[tuple[str, Budget], ...], dict[str, str]]:
    """The budgets in ``BUDGET_METRICS`` order, and the source of every chosen value and budget."""
    budgets: dict[str, Budget] = {}
    sources = {key: src for key, (_, src) in chosen.values.items()}
    for name in BUDGET_METRICS:
        if name in chosen:
            budgets[name] = chosen.values[name][0]
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
    return tuple((name, budgets[name]) for name in BUDGET_METRICS if name in budgets), sources


def with_overrides(settings: MeasureSettings, **pipeline: Any) -> MeasureSettings:
    """A copy with some pipeline fields replaced (used by sweeps and tools built on the plugin)."""
    return replace(settings, pipeline=replace(settings.pipeline, **pipeline))
