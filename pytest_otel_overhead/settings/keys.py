"""The key registry: every setting's name, parser, help text and environment variables.

The registry is built on first use (:func:`key_table`), not on import, and building it loads
neither the records nor the parsers of the sampling and pipeline settings: pytest declares the
options in every run. Help text states each default from :mod:`~pytest_otel_overhead.settings.defaults`,
which the records' fields point at; a parser that lives elsewhere is imported when a value is
first given to it (:func:`_lazy`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

from pytest_otel_overhead.settings import defaults
from pytest_otel_overhead.settings.defaults import (
    STRATEGY_SAMPLERS,
    FailedExportsPolicy,
    InconclusivePolicy,
    Mode,
    NoTelemetryPolicy,
)
from pytest_otel_overhead.settings.flags import SAVED_PROCESSES
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
    "GATE_METRICS",
    "KEYS",
    "OTEL_SAMPLERS",
    "PROCESSORS",
    "RATIO_SAMPLERS",
    "SAMPLER_ARG_KEYS",
    "Key",
    "check_keys",
    "declared_source",
    "key_table",
]

OTEL_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
"""The SDK's own samplers; the plugin's follow them (``settings.sampling.STRATEGY_SAMPLERS``)."""
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")
PROCESSORS = ("batch", "simple")
GATE_METRICS = ("cpu", "wall")

# OTEL_TRACES_SAMPLER_ARG parameterises the sampler OTEL_TRACES_SAMPLER names: for the plugin's own
# samplers it sets that sampler's setting instead of a rate.
SAMPLER_ARG_KEYS = {
    "per_operation": "strategies",
    "rate_limiting": "max_traces_per_second",
    "load_adaptive": "load_thresholds",
}

C = TypeVar("C", bound=str)


class Key(NamedTuple):
    """One setting: its parser, help text, and the environment variables that may set it.

    ``check`` is the parser without imports, for settings whose parser imports what they name
    (exporter factories, instrumentors): a session that does not measure checks with it.
    """

    name: str
    parse: Callable[[object, str], Any]
    help: str
    env: tuple[str, ...] = ()
    check: Callable[[object, str], Any] | None = None


def _choice(options: Sequence[C]) -> Callable[[object, str], C]:
    def parse(value: object, source: str) -> C:
        text = str(value).strip().lower() if isinstance(value, str) else None
        chosen = next((option for option in options if option == text), None)
        if chosen is None:
            raise SettingsError(f"{source}: {value!r} is not one of {', '.join(options)}")
        return chosen

    return parse


def _budget(metric: str) -> Callable[[object, str], Budget]:
    unit = "bytes" if metric == "heap" else "seconds"
    return lambda value, source: parse_budget(value, source, unit=unit)  # type: ignore[arg-type]


def _rate(value: object, source: str) -> float:
    return parse_fraction(value, source, what="a sampling rate")


def _lazy(module: str, name: str) -> Callable[[object, str], Any]:
    """The parser ``module.name``, imported when it first parses a value rather than when the registry is built."""

    def parse(value: object, source: str) -> Any:
        return getattr(importlib.import_module(module), name)(value, source)

    return parse


def _sampling(name: str) -> Callable[[object, str], Any]:
    return _lazy("pytest_otel_overhead.settings.sampling", name)


def _pipeline(name: str) -> Callable[[object, str], Any]:
    return _lazy("pytest_otel_overhead.settings.pipeline", name)


def _profile(value: object, source: str) -> str:
    from pytest_otel_overhead.settings.profiles import PROFILES, canonical_profile

    name = canonical_profile(value) if isinstance(value, str) else None
    if name is None:
        raise SettingsError(f"{source}: {value!r} is not a profile; use one of {', '.join(PROFILES)}")
    return name


def _processes(value: object, source: str) -> int | None:
    """``auto`` (None: as many as change the answer) or a fixed number of processes."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        return parse_count(value, source)
    except SettingsError:
        raise SettingsError(f"{source}: {value!r} is not 'auto' or a whole number of at least 1") from None


def _confidence(value: object, source: str) -> float:
    """A confidence level within ``defaults.CONFIDENCE_RANGE``: ``0.99`` or ``"99%"``."""
    low, high = defaults.CONFIDENCE_RANGE
    try:
        level = parse_fraction(value, source, what="a confidence")
    except SettingsError:
        level = None
    if level is None or not low <= round(level, 9) <= high:  # 99.9% reads 0.9990000000000001
        raise SettingsError(
            f"{source}: {value!r} is not a confidence from {low:.0%} to {high:.1%}, such as 99% or 0.99"
        )
    return level


def _path_text(value: object, source: str) -> str:
    """A file's path as given, checked without reading the file (a session that does not measure)."""
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{source}: {value!r} is not a path to a calibration file")
    return value


def _options_text(options: Sequence[str], default: str) -> str:
    """``fail, warn (default) or pass``."""
    named = [f"{option} (default)" if option == default else option for option in options]
    return ", ".join(named[:-1]) + " or " + named[-1]


def _budget_keys() -> list[Key]:
    default = defaults.BUDGET.describe(defaults.METRIC).replace(".0%", "%")
    return [
        Key("budget", _budget("cpu"), f"budget of the gate metric (cpu unless metric=wall), e.g. {default} (default)"),
        Key("cpu", _budget("cpu"), "CPU-time budget (all threads), e.g. 5% or 50us per call"),
        Key("wall", _budget("wall"), "wall-time budget, e.g. 5% or 50us per call"),
        Key("latency_p50", _budget("latency_p50"), "median latency budget, e.g. 5% or 50ms"),
        Key("latency_p95", _budget("latency_p95"), "95th-percentile latency budget, e.g. 10% or 50ms"),
        Key("latency_p99", _budget("latency_p99"), "99th-percentile latency budget, e.g. 10% or 50ms"),
        Key("heap", _budget("heap"), "peak-heap budget, e.g. 10% or 2MiB"),
        Key(
            "metric",
            _choice(GATE_METRICS),
            "metric that 'budget' applies to: " + _options_text(GATE_METRICS, defaults.METRIC),
        ),
    ]


def _sampling_keys() -> list[Key]:
    samplers = (*OTEL_SAMPLERS, *STRATEGY_SAMPLERS)
    thresholds = defaults.load_thresholds_text(defaults.LOAD_STEPS, defaults.LOAD_BASE)
    return [
        Key(
            "sampler",
            _choice(samplers),
            "sampler: " + ", ".join(samplers) + f" (default {defaults.SAMPLER})",
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
            _sampling("load_strategies"),
            "per-operation sampling rules: a JSON (or YAML) file, inline JSON, or a mapping in a marker; "
            "alone it selects sampler per_operation",
        ),
        Key(
            "max_traces_per_second",
            _sampling("parse_traces_per_second"),
            "at most this many traces per second; alone it selects sampler rate_limiting, "
            "with per_operation it caps the rules",
        ),
        Key(
            "load_thresholds",
            _sampling("parse_load_thresholds"),
            "load_adaptive rates by process load, LOAD:RATE pairs then the rate below them "
            f"(default {thresholds}); alone it selects sampler load_adaptive",
        ),
    ]


def _batch_keys() -> list[Key]:
    return [
        Key(
            "load_refresh",
            parse_duration_ms,
            "how often load_adaptive re-reads the process load; bare numbers are ms "
            f"(default {defaults.LOAD_REFRESH_MS:g})",
        ),
        Key(
            "profile",
            _profile,
            "named pipeline settings: high, medium, low (the tuning guide's), development, staging, "
            "production, high-traffic; settings given alongside win",
            env=("OTEL_PERFORMANCE_PROFILE",),
        ),
        Key("processor", _choice(PROCESSORS), "span processor: " + _options_text(PROCESSORS, defaults.PROCESSOR)),
        Key(
            "batch_size",
            parse_count,
            f"max export batch size (default {defaults.BATCH_SIZE})",
            env=("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_TRACING_BATCH_SIZE"),
        ),
        Key(
            "schedule_delay",
            parse_duration_ms,
            f"batch schedule delay, e.g. 5s or 500ms; bare numbers are ms (default {defaults.SCHEDULE_DELAY_MS:g})",
            env=("OTEL_BSP_SCHEDULE_DELAY", "OTEL_TRACING_BATCH_TIMEOUT"),
        ),
        Key(
            "queue_size",
            parse_count,
            f"max span queue size (default {defaults.QUEUE_SIZE})",
            env=("OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_TRACING_QUEUE_SIZE"),
        ),
        Key(
            "export_timeout",
            parse_duration_ms,
            f"export timeout; bare numbers are ms (default {defaults.EXPORT_TIMEOUT_MS:g})",
            env=("OTEL_BSP_EXPORT_TIMEOUT",),
        ),
    ]


def _export_keys() -> list[Key]:
    return [
        Key(
            "exporter",
            _pipeline("parse_exporter"),
            f"span exporter: {defaults.EXPORTER} (default), memory, otlp (alias otlp-http; needs the [otlp] extra) "
            "or module:factory returning a SpanExporter",
            check=_pipeline("check_exporter"),
        ),
        Key(
            "endpoint",
            _pipeline("parse_endpoint"),
            "OTLP/HTTP endpoint of your own collector, e.g. http://localhost:4318; alone it selects "
            "exporter otlp (default: a receiver on 127.0.0.1 that the plugin starts)",
        ),
        Key(
            "compression",
            _pipeline("parse_compression"),
            "OTLP compression: " + _options_text(defaults.COMPRESSIONS, defaults.COMPRESSION),
            env=("OTEL_EXPORTER_OTLP_COMPRESSION",),
        ),
        Key(
            "backend_latency",
            _pipeline("parse_backend_latency"),
            "delay of the embedded OTLP receiver before each answer, e.g. 50ms "
            f"(default {defaults.BACKEND_LATENCY_MS:g})",
        ),
        Key(
            "backend_error_rate",
            _pipeline("parse_backend_error_rate"),
            "share of requests the embedded OTLP receiver answers 503, e.g. 0.1 "
            f"(default {defaults.BACKEND_ERROR_RATE:g})",
        ),
        Key(
            "metric_interval",
            _pipeline("parse_metric_interval"),
            "metric export interval, counted in instrumented time; bare numbers are ms "
            f"(default {defaults.METRIC_INTERVAL_MS:g})",
            env=("OTEL_METRIC_EXPORT_INTERVAL",),
        ),
        Key(
            "instrument",
            _pipeline("parse_instrumentors"),
            "instrumentors applied in the instrumented arm only, module:Class, comma-separated "
            "(e.g. opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor)",
            check=_pipeline("check_instrumentors"),
        ),
        Key(
            "max_dropped",
            _pipeline("parse_max_dropped"),
            "fail the test when the diagnostic round loses more spans than this (default: report only)",
        ),
    ]


def _measuring_keys() -> list[Key]:
    modes = {Mode.TIME: "CPU and wall time", Mode.INSTRUCTIONS: "counted under valgrind"}
    return [
        Key(
            "mode",
            _choice(tuple(Mode)),
            "what to measure: "
            + " or ".join(
                f"{mode} ({what}{', default' if mode == defaults.MODE else ''})" for mode, what in modes.items()
            ),
        ),
        Key(
            "max_time",
            parse_seconds,
            f"cap on measuring time per test, e.g. 30 or 2min (default {defaults.MAX_TIME_S:g} s)",
        ),
        Key(
            "confidence",
            _confidence,
            "how sure every interval and verdict is, e.g. 99% or 0.99 (default "
            f"{defaults.CONFIDENCE:.0%}): higher errs less often near the budget and leaves more tests undecided",
        ),
        Key(
            "processes",
            _processes,
            "fresh processes that time mode spreads each measurement over, one after another: auto or a number, "
            "exactly that many (default auto: this process, and fresh ones added where the between-process "
            f"term keeps a budget open, a comparison is undecided, or a saved run has fewer than "
            f"{SAVED_PROCESSES})",
            env=("PYTEST_OTEL_OVERHEAD_PROCESSES",),
        ),
        Key(
            "calibration",
            _lazy("pytest_otel_overhead.settings.calibration", "read_calibration"),
            "calibration file with the between-process and load terms measured on this runner "
            "(python -m pytest_otel_overhead calibrate; default: otel-overhead-calibration.json in the root "
            "folder when it exists, else the built-in terms)",
            env=("OTEL_OVERHEAD_CALIBRATION",),
            check=_path_text,
        ),
        Key(
            "inconclusive",
            _choice(tuple(InconclusivePolicy)),
            "what an undecided budget does to the test: "
            + _options_text(tuple(InconclusivePolicy), defaults.INCONCLUSIVE),
        ),
        Key(
            "no_telemetry",
            _choice(tuple(NoTelemetryPolicy)),
            "what a measurement whose instrumented arm recorded no spans and no metrics does to the test: "
            + _options_text(tuple(NoTelemetryPolicy), defaults.NO_TELEMETRY),
            env=("OTEL_OVERHEAD_NO_TELEMETRY",),
        ),
        Key(
            "failed_exports",
            _choice(tuple(FailedExportsPolicy)),
            "what a measurement in which every export failed (nothing reached the backend: a collector down, "
            "refusing or never answering) does to the test: "
            + _options_text(tuple(FailedExportsPolicy), defaults.FAILED_EXPORTS),
            env=("OTEL_OVERHEAD_FAILED_EXPORTS",),
        ),
    ]


@functools.cache
def key_table() -> Mapping[str, Key]:
    """Every setting by name, in the order ``--help`` and the docs list them."""
    keys = [*_budget_keys(), *_sampling_keys(), *_batch_keys(), *_export_keys(), *_measuring_keys()]
    return {key.name: key for key in keys}


class _KeyTable(Mapping[str, Key]):
    """:func:`key_table` under the name modules import, built when first read rather than on import."""

    def __getitem__(self, name: str) -> Key:
        return key_table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(key_table())

    def __len__(self) -> int:
        return len(key_table())

    def __repr__(self) -> str:
        return repr(dict(key_table()))


KEYS: Mapping[str, Key] = _KeyTable()


def check_keys(raw: Mapping[str, object], source: str) -> None:
    """Reject unknown setting names, suggesting the closest known one."""
    for key in raw:
        if key not in KEYS:
            import difflib  # only to word an error

            close = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(KEYS)}"
            raise SettingsError(f"{source}: unknown argument {key!r}{hint}")


_DECLARED = '''"""The settings' names and help texts as pytest declares them in every run.

Generated from the key registry (:mod:`pytest_otel_overhead.settings.keys`) by
``python -m pytest_otel_overhead.settings.keys``; a test checks that the two agree. Declaring the
options from literals spares every pytest run building the registry, its defaults and its parsers.
"""

KEY_HELP: dict[str, str] = {{
{entries}}}
"""Every setting's help, by name, in the order ``--help`` lists them."""
'''


def declared_source() -> str:
    """The text of :mod:`pytest_otel_overhead.settings.declared`: every key's name and help, as literals."""
    import json  # double-quoted literals, as the formatter writes them

    def literal(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)

    entries = "".join(f"    {literal(name)}: {literal(key.help)},\n" for name, key in key_table().items())
    return _DECLARED.format(entries=entries)


if __name__ == "__main__":
    import pathlib

    pathlib.Path(__file__).with_name("declared.py").write_text(declared_source(), encoding="utf-8")
