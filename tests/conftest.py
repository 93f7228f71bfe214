"""Shared configuration for the test suite: a Hypothesis profile, a hermetic environment, result builders,
and the scripts of docs/ loaded as modules."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from pytest_otel_overhead.engine.machine import cpu_reading
from pytest_otel_overhead.results import MetricResult, PipelineHealth, StopReason, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

DOCS = Path(__file__).resolve().parents[1] / "docs"


def docs_script(name: str) -> ModuleType:
    """``docs/<name>.py`` (a script that writes or checks a generated page), loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# CI machines are shared and slow: no per-example deadline, a modest number of examples.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OpenTelemetry variable of the machine running the suite may leak into a test or a subprocess, nor the
    width of its terminal (``$COLUMNS``, which a shell may export and which the workers of ``-n 2`` see as 80):
    output wraps at the width a CI log gets unless a test sets one."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    yield


def build_metric(
    metric: str = "cpu",
    *,
    overhead: float = 0.0,
    ci_low: float = -0.01,
    ci_high: float = 0.01,
    budget: Budget | None = None,
    verdict: Verdict | None = None,
    baseline: float = 1e-3,
    note: str | None = None,
) -> MetricResult:
    instrumented = baseline * (1 + overhead) if budget is None or budget.kind == "relative" else baseline + overhead
    return MetricResult(
        metric=metric,
        baseline=baseline,
        instrumented=instrumented,
        overhead=overhead,
        ci_low=ci_low,
        ci_high=ci_high,
        kind=budget.kind if budget is not None else "relative",
        n=40,
        spread=0.02,
        confidence=0.95,
        budget=budget,
        verdict=verdict,
        resolution=None if verdict is not Verdict.INCONCLUSIVE else (ci_high - ci_low) / 2,
        note=note,
    )


def build_result(
    nodeid: str = "tests/test_x.py::test_y",
    *,
    metrics: tuple[MetricResult, ...] | None = None,
    settings: MeasureSettings | None = None,
) -> TestResult:
    """A complete, plausible :class:`TestResult` for code that consumes results."""
    budget = Budget("relative", 0.05)
    if metrics is None:
        metrics = (
            build_metric("cpu", overhead=0.01, ci_low=-0.01, ci_high=0.03, budget=budget, verdict=Verdict.PASS),
            build_metric("wall", overhead=0.012),
        )
    return TestResult(
        nodeid=nodeid,
        settings=settings or MeasureSettings(),
        metrics=metrics,
        health=PipelineHealth(calls=100, started=300, sampled=300, exported=300, export_calls=2, by_name=(("s", 300),)),
        process=None,
        pairs=40,
        calls_per_block=10,
        looks=2,
        duration_s=1.5,
        stop_reason=StopReason.DECIDED,
        throughput_baseline=1000.0,
        throughput_instrumented=990.0,
        samples=((1e-3, 1.01e-3, 1e-3, 1.01e-3),),
    )


@pytest.fixture
def make_metric() -> Callable[..., MetricResult]:
    return build_metric


@pytest.fixture
def make_result() -> Callable[..., TestResult]:
    return build_result


BUSY_LOOP = "import time\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"


@pytest.fixture
def machine_kept_busy() -> Iterator[int]:
    """More busy processes than CPUs, for the length of the test."""
    count = (cpu_reading().cpus or 1) + 1
    processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield count
    finally:
        for process in processes:
            process.kill()
            process.wait()
