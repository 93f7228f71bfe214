"""pytest-otel-overhead: does your OpenTelemetry instrumentation cost more than you allow?

``pytest --otel-overhead`` measures tests marked ``otel_overhead`` (or callables passed to the
``otel_overhead`` fixture) against an uninstrumented baseline, with a real OpenTelemetry SDK
pipeline in the instrumented arm, and fails the tests whose overhead exceeds their budget.
"""

from importlib.metadata import PackageNotFoundError, version

from pytest_otel_overhead.results import MetricResult, PipelineHealth, TestResult
from pytest_otel_overhead.settings.layers import MeasureSettings, PipelineSettings
from pytest_otel_overhead.units import Budget, SettingsError
from pytest_otel_overhead.verdict import Verdict

try:
    __version__ = version("pytest-otel-overhead")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "Budget",
    "MeasureSettings",
    "MetricResult",
    "PipelineHealth",
    "PipelineSettings",
    "SettingsError",
    "TestResult",
    "Verdict",
    "__version__",
]
