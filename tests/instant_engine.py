"""A stand-in for the engine in pytest subprocesses: a PASS result at once, no measuring.

Written as the subprocess's ``conftest.py``, it lets end-to-end tests check what the session does
with results (files, summaries, plugins) in a fraction of a second and with no timing involved.
"""

INSTANT_ENGINE = """
import pytest_otel_overhead.engine.strategy as strategy_module
from pytest_otel_overhead.results import MetricResult, StopReason, TestResult
from pytest_otel_overhead.stats.verdict import Verdict


def instant(workload, settings, router, *, nodeid="", progress=None, **kwargs):
    workload()
    cpu = MetricResult(
        metric="cpu", baseline=1e-3, instrumented=1.01e-3, overhead=0.01, ci_low=0.0, ci_high=0.02,
        kind="relative", n=30, spread=0.01, confidence=0.95, budget=settings.budget("cpu"),
        verdict=Verdict.PASS, resolution=None, note=None,
    )
    return TestResult(
        nodeid=nodeid, settings=settings, metrics=(cpu,), health=None, process=None, pairs=30,
        calls_per_block=10, looks=1, duration_s=0.1, stop_reason=StopReason.DECIDED,
        throughput_baseline=1000.0, throughput_instrumented=990.0,
    )


def no_added_processes(item, settings, first, **kwargs):
    return first


strategy_module.measure = instant
strategy_module.add_processes = no_added_processes  # a saved run adds processes: none here
"""
