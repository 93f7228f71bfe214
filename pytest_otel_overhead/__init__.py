"""pytest-otel-overhead: does your OpenTelemetry instrumentation cost more than you allow?

``pytest --otel-overhead`` measures tests marked ``otel_overhead`` (or callables passed to the
``otel_overhead`` fixture) against an uninstrumented baseline, with a real OpenTelemetry SDK
pipeline in the instrumented arm, and fails the tests whose overhead exceeds their budget.

The names below are imported on first use: importing the package (as pytest does for every run,
measuring or not) loads nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_otel_overhead.otel.health import PipelineHealth
    from pytest_otel_overhead.results.records import MetricResult, TestResult
    from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
    from pytest_otel_overhead.stats.verdict import Verdict
    from pytest_otel_overhead.units import Budget, SettingsError
    from pytest_otel_overhead.warning_types import (
        OverheadCompareWarning,
        OverheadFailedExportsWarning,
        OverheadInconclusiveWarning,
        OverheadNoTelemetryWarning,
    )

    __version__: str

_EXPORTS = {
    "Budget": "pytest_otel_overhead.units",
    "MeasureSettings": "pytest_otel_overhead.settings.records",
    "MetricResult": "pytest_otel_overhead.results.records",
    "OverheadCompareWarning": "pytest_otel_overhead.warning_types",
    "OverheadFailedExportsWarning": "pytest_otel_overhead.warning_types",
    "OverheadInconclusiveWarning": "pytest_otel_overhead.warning_types",
    "OverheadNoTelemetryWarning": "pytest_otel_overhead.warning_types",
    "PipelineHealth": "pytest_otel_overhead.otel.health",
    "PipelineSettings": "pytest_otel_overhead.settings.records",
    "SettingsError": "pytest_otel_overhead.units",
    "TestResult": "pytest_otel_overhead.results.records",
    "Verdict": "pytest_otel_overhead.stats.verdict",
}

__all__ = [
    "Budget",
    "MeasureSettings",
    "MetricResult",
    "OverheadCompareWarning",
    "OverheadFailedExportsWarning",
    "OverheadInconclusiveWarning",
    "OverheadNoTelemetryWarning",
    "PipelineHealth",
    "PipelineSettings",
    "SettingsError",
    "TestResult",
    "Verdict",
    "__version__",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-otel-overhead")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
