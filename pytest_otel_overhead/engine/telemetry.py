"""Did the instrumented arm measure any telemetry, and did it reach the backend? If not, the likely causes.

When the diagnostic round saw no span start and no metric recorded through the plugin's
providers, both arms ran the same code and the figures compare nothing, whatever the budgets'
verdict. The reason names what the round saw instead: spans that went through other SDK
TracerProviders (and where those were made), instrumentors applied in the arm that found nothing
to patch, or nothing at all.

When every export of the round failed, the instrumented arm measured a pipeline that delivers
nothing: failing at once costs less than delivering, and waiting on a silent backend more. The
reason says which, from how long the failed exports took.
"""

from __future__ import annotations

from dataclasses import replace

from pytest_otel_overhead.formatting import format_seconds
from pytest_otel_overhead.otel.export_deadlines import endpoint_refuses
from pytest_otel_overhead.results import PipelineHealth, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings

__all__ = ["TIMED_OUT_SHARE", "failed_exports_reason", "no_telemetry_reason", "with_telemetry_outcome"]

TIMED_OUT_SHARE = 0.9
"""A failed export that took this share of ``export_timeout`` or more waited for an answer that never came."""


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


def _how_exports_failed(health: PipelineHealth, settings: MeasureSettings) -> str:
    timeout_s = settings.pipeline.export_timeout_ms / 1e3
    slowest = health.export_latency_p95
    endpoint = settings.pipeline.endpoint
    if endpoint_refuses(endpoint):  # retries of a refused connection can use up the time as silence does
        return f"the backend at {endpoint} refuses connections (is the collector running, and listening there?)"
    if health.backend_rejected:  # the embedded receiver saw the requests and answered errors
        return f"the backend answered with errors ({health.backend_rejected} of {health.backend_requests} requests)"
    if health.exports_timed_out >= health.export_failures:
        return (
            "the backend did not answer: exports took the whole time left, until max_time cut them "
            "(a backend that accepts connections and never replies)"
        )
    if slowest is not None and slowest >= TIMED_OUT_SHARE * timeout_s:
        return f"the backend did not answer within export_timeout ({format_seconds(timeout_s)})"
    where = f" at {settings.pipeline.endpoint}" if settings.pipeline.endpoint else ""
    took = f", each within {format_seconds(slowest)}" if slowest is not None else ""
    return (
        f"the backend{where} refused them or answered with an error{took} (is the collector running, "
        "and listening there?)"
    )


def failed_exports_reason(health: PipelineHealth | None, settings: MeasureSettings) -> str | None:
    """Why nothing reached the backend when every export of the diagnostic round failed, else ``None``."""
    if health is None or not health.every_export_failed:
        return None
    return (
        f"every export failed ({health.export_failures} of {health.export_calls}, {health.spans_failed} spans "
        f"dropped): {_how_exports_failed(health, settings)}; the instrumented arm measured a pipeline that "
        "delivers nothing, whose cost is not that of one that does"
    )


def with_telemetry_outcome(result: TestResult) -> TestResult:
    """``result`` with its ``no_telemetry`` and ``failed_exports`` reasons, from its diagnostic round and settings."""
    return replace(
        result,
        no_telemetry=no_telemetry_reason(result.health, result.settings),
        failed_exports=failed_exports_reason(result.health, result.settings),
    )
