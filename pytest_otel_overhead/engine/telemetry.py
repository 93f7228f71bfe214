"""Did the instrumented arm measure any telemetry? If not, the likely causes, as far as the round saw them.

When the diagnostic round saw no span start and no metric recorded through the plugin's
providers, both arms ran the same code and the figures compare nothing, whatever the budgets'
verdict. The reason names what the round saw instead: spans that went through other SDK
TracerProviders (and where those were made), instrumentors applied in the arm that found nothing
to patch, or nothing at all.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_otel_overhead.results import PipelineHealth, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings

__all__ = ["no_telemetry_reason", "with_telemetry_outcome"]


def _foreign(health: PipelineHealth) -> str:
    origins = "; ".join(health.foreign_origins[:3])
    return (
        f"its spans went through other TracerProviders, which the arms cannot switch ({origins}): "
        "code that builds its own TracerProvider(), or is given one explicitly (tracer_provider=...), records "
        "the same spans in both arms; take tracers from the global provider (trace.get_tracer(...)) instead"
    )


def _instrumentors(instrument: tuple[str, ...]) -> str:
    names = ", ".join(spec.rsplit(":", 1)[-1] for spec in instrument)
    return (
        f"the instrumentors applied in the instrumented arm ({names}) recorded nothing: they patch classes and "
        "functions as the arm starts, so objects made before it (a connection, an app built in set-up or at "
        "import) stay uninstrumented; make those objects inside the measured callable"
    )


def no_telemetry_reason(health: PipelineHealth | None, settings: MeasureSettings) -> str | None:
    """Why the instrumented arm recorded no spans and no metrics, or ``None`` if it recorded some."""
    if health is None or not health.recorded_nothing:
        return None
    causes = []
    if health.foreign_spans:
        causes.append(_foreign(health))
    if settings.pipeline.instrument:
        causes.append(_instrumentors(settings.pipeline.instrument))
    if not causes:
        causes.append(
            "the measured code started no span and recorded no metric through OpenTelemetry's global providers; "
            "is it instrumented, and does the measured call reach that instrumentation?"
        )
    return "the instrumented arm recorded no spans and no metrics, so both arms ran the same code: " + "; ".join(causes)


def with_telemetry_outcome(result: TestResult) -> TestResult:
    """``result`` with its ``no_telemetry`` reason, from its diagnostic round and settings."""
    return replace(result, no_telemetry=no_telemetry_reason(result.health, result.settings))
