"""The settings records: the pipeline of the instrumented arm and everything one measurement needs.

Their field defaults are the settings' defaults: the key registry's help text and the merge rules
read them from here, so a default is written once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pytest_otel_overhead.settings.origin import DEFAULT_SOURCE, Source, as_source
from pytest_otel_overhead.settings.sampling import LoadThresholds, Strategies
from pytest_otel_overhead.units import Budget

__all__ = [
    "BUDGET_METRICS",
    "DEFAULT_BUDGET",
    "Choice",
    "FailedExportsPolicy",
    "InconclusivePolicy",
    "MeasureSettings",
    "Mode",
    "NoTelemetryPolicy",
    "PipelineSettings",
]

BUDGET_METRICS = ("cpu", "wall", "latency_p50", "latency_p95", "latency_p99", "heap")
DEFAULT_BUDGET = Budget("relative", 0.05)
"""The gate metric's budget when none is given."""


class Choice(str, enum.Enum):
    """A setting's value out of a fixed set: it prints, compares, hashes and serialises as its text.

    Its repr is its text's too, so a record reads the same whether it holds the member or, read back
    from JSON, the text.
    """

    def __repr__(self) -> str:
        return str.__repr__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)

    __hash__ = str.__hash__


class Mode(Choice):
    """What a measurement measures."""

    TIME = "time"
    INSTRUCTIONS = "instructions"


class InconclusivePolicy(Choice):
    """What an undecided budget does to the test."""

    FAIL = "fail"
    WARN = "warn"
    PASS = "pass"


class NoTelemetryPolicy(Choice):
    """What a measurement whose instrumented arm recorded no telemetry does to the test."""

    WARN = "warn"
    FAIL = "fail"
    IGNORE = "ignore"


class FailedExportsPolicy(Choice):
    """What a measurement in which every export failed (nothing reached the backend) does to the test."""

    FAIL = "fail"
    WARN = "warn"
    IGNORE = "ignore"


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
    budgets: tuple[tuple[str, Budget], ...] = (("cpu", DEFAULT_BUDGET),)
    metric: str = "cpu"
    max_time: float = 30.0
    inconclusive: InconclusivePolicy = InconclusivePolicy.WARN
    sources: tuple[tuple[str, str], ...] = ()
    """Where each setting given came from; plain text in records read back from a saved run."""
    profile: str | None = None
    # Annotated as text, which they are: the reader of saved runs carries fields of simple types over.
    mode: str = Mode.TIME
    """A :class:`Mode` value."""
    processes: int = 1
    """Fresh processes a time-mode measurement is spread over (``engine.replicas``); 1 measures here."""
    no_telemetry: str = NoTelemetryPolicy.WARN
    """What a measurement that saw no telemetry in its instrumented arm does: a :class:`NoTelemetryPolicy` value."""
    failed_exports: str = FailedExportsPolicy.FAIL
    """What a measurement in which every export failed does: a :class:`FailedExportsPolicy` value."""

    def budget(self, metric: str) -> Budget | None:
        return dict(self.budgets).get(metric)

    def source(self, key: str) -> Source:
        given = dict(self.sources).get(key)
        return DEFAULT_SOURCE if given is None else as_source(given)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.pipeline.as_dict(),
            "metric": self.metric,
            "max_time_s": self.max_time,
            "inconclusive": str(self.inconclusive),
            "profile": self.profile,
            "mode": str(self.mode),
            "processes": self.processes,
            "no_telemetry": str(self.no_telemetry),
            "failed_exports": str(self.failed_exports),
            "budgets": {name: {"kind": b.kind, "value": b.value} for name, b in self.budgets},
            "sources": dict(self.sources),
        }
