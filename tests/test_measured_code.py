"""End to end: what measured code can do wrong is said in one place, in words that say what to change.

pytest runs once, in a fresh interpreter, on tests whose telemetry goes nowhere the arms reach
(their own TracerProvider, a connection made before an instrumentor was applied, a benchmark of
an SDK tracer), tests that set the global provider, fail on a repetition or hand a coroutine to
the fixture, and tests that do it right. Budgets are far from every figure, so no verdict depends
on the machine's load.
"""

from __future__ import annotations

import re

import pytest
from measured_project import Run, run_measured

CONFTEST = """
import threading
import tracemalloc

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer, TracerProvider


@pytest.fixture(autouse=True)
def left_as_found():
    before = (trace.get_tracer_provider(), tracemalloc.is_tracing(), threading.active_count(), Tracer.start_span)
    yield
    after = (trace.get_tracer_provider(), tracemalloc.is_tracing(), threading.active_count(), Tracer.start_span)
    assert after == before, "left changed"
"""

MEASURED = """
import asyncio
import sqlite3

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

own = TracerProvider(shutdown_on_exit=False)
micro = own.get_tracer("micro")
tracer = trace.get_tracer("shop")
CALLS = {"flaky": 0}
DB = sqlite3.connect(":memory:")  # made before the instrumented arm: the instrumentor cannot reach it


def own_spans():
    for _ in range(5):
        micro.start_span("s").end()


@pytest.mark.otel_overhead(budget="100000%", no_telemetry="warn")
def test_own_provider():
    own_spans()


@pytest.mark.otel_overhead(budget="100000%", no_telemetry="fail")
def test_own_provider_fails():
    own_spans()


@pytest.mark.otel_overhead(budget="100000%", no_telemetry="ignore")
def test_own_provider_ignored():
    own_spans()


@pytest.mark.otel_overhead(budget="100000%", instrument="opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor")
def test_connection_made_before_the_arm():
    DB.execute("select 1").fetchall()


@pytest.mark.otel_overhead(budget="100000%")
def test_routed_spans():
    with tracer.start_as_current_span("s"):
        pass


@pytest.mark.otel_overhead(budget="100000%")
def test_sets_the_provider():
    trace.set_tracer_provider(TracerProvider(shutdown_on_exit=False))


@pytest.mark.otel_overhead(budget="100000%")
def test_fails_on_its_third_call():
    CALLS["flaky"] += 1
    assert CALLS["flaky"] < 3, "out of stock"


async def fetch():
    with tracer.start_as_current_span("fetch"):
        await asyncio.sleep(0)


@pytest.mark.otel_overhead(budget="100000%")
def test_coroutine_to_the_fixture(otel_overhead):
    otel_overhead(asyncio.run, fetch())


@pytest.mark.otel_overhead(budget="100000%")
def test_async_code_the_right_way(otel_overhead):
    otel_overhead(lambda: asyncio.run(fetch()))


@pytest.mark.otel_overhead(budget="100000%")
def test_benchmark_of_an_sdk_tracer(benchmark):
    benchmark(own_spans)
"""
PROVIDER_LINE = MEASURED.splitlines().index("own = TracerProvider(shutdown_on_exit=False)") + 1


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("measured_code")
    return run_measured(path, {"conftest.py": CONFTEST, "test_measured.py": MEASURED}, max_time="5")


def test_spans_through_a_provider_of_their_own_warn_with_where_it_was_made(run: Run) -> None:
    assert run.status("test_own_provider") == "PASSED"
    marker = MEASURED.splitlines().index("def test_own_provider():")  # its marker, one line above (1-based)
    warned = rf"test_measured\.py:{marker}: OverheadNoTelemetryWarning: test_measured\.py::test_own_provider: (.*)"
    warning = re.search(warned, run.stdout)
    assert warning is not None, run.stdout
    assert warning.group(1).startswith("no telemetry measured: the instrumented arm recorded no spans and no metrics")
    assert "tracer 'micro' started at test_measured.py:" in warning.group(1)
    assert f"its TracerProvider created at test_measured.py:{PROVIDER_LINE}" in warning.group(1)
    result = run.result("test_own_provider")
    assert result["outcome"] == "NO_TELEMETRY"
    assert result["no_telemetry"] == warning.group(1).removeprefix("no telemetry measured: ")
    assert result["pipeline"]["foreign_spans_per_call"] == 5
    properties = run.properties("test_own_provider")
    assert properties["otel_overhead.outcome"] == "NO_TELEMETRY"
    assert properties["otel_overhead.no_telemetry"] == result["no_telemetry"]
    assert re.search(
        r"^test_measured\.py::test_own_provider  NO TELEMETRY  (budget|no budget)", run.stdout, re.MULTILINE
    )


def test_no_telemetry_fails_when_asked_and_is_quiet_when_ignored(run: Run) -> None:
    assert run.status("test_own_provider_fails") == "FAILED"
    section = run.section("test_own_provider_fails").strip()
    first, second = section.splitlines()[:2]
    assert first == (
        "no telemetry measured: no budget decided (no_telemetry=fail, marker on "
        "test_measured.py::test_own_provider_fails; no_telemetry=warn only warns)"
    )
    assert second.startswith("otel-overhead: test_measured.py::test_own_provider_fails: no telemetry measured:")
    assert "tracer 'micro' started at test_measured.py:" in second
    assert "Traceback" not in section
    assert run.status("test_own_provider_ignored") == "PASSED"
    assert "test_measured.py::test_own_provider_ignored: no telemetry" not in run.stdout
    assert run.result("test_own_provider_ignored")["outcome"] == "NO_TELEMETRY"  # still said in the report


def test_an_instrumentor_whose_target_existed_before_the_arm_is_named(run: Run) -> None:
    # No policy given: a measurement of no telemetry fails its test by default.
    assert run.status("test_connection_made_before_the_arm") == "FAILED"
    first = run.section("test_connection_made_before_the_arm").strip().splitlines()[0]
    assert first.startswith("no telemetry measured: no budget decided (no_telemetry=fail, default;")
    result = run.result("test_connection_made_before_the_arm")
    assert result["outcome"] == "NO_TELEMETRY"
    assert (
        "the instrumentors applied in the instrumented arm (SQLite3Instrumentor) recorded nothing"
        in (result["no_telemetry"])
    )


def test_a_benchmark_of_an_sdk_tracer_says_no_telemetry_too(run: Run) -> None:
    assert run.status("test_benchmark_of_an_sdk_tracer") == "FAILED"  # no_telemetry=fail by default
    result = run.result("test_benchmark_of_an_sdk_tracer")
    assert result["outcome"] == "NO_TELEMETRY"
    assert "tracer 'micro'" in result["no_telemetry"]


def test_code_that_records_through_the_global_provider_is_measured(run: Run) -> None:
    for name in ("test_routed_spans", "test_async_code_the_right_way"):
        assert run.status(name) == "PASSED"
        assert run.result(name)["outcome"] == "PASS"
        assert run.result(name)["no_telemetry"] is None
        assert f"test_measured.py::{name}: no telemetry" not in run.stdout
    assert re.search(r"^7 measured: 2 PASS, 0 FAIL, 0 INCONCLUSIVE, 5 NO TELEMETRY$", run.stdout, re.MULTILINE)


def test_setting_the_provider_in_the_measured_code_stops_with_one_line(run: Run) -> None:
    assert run.status("test_sets_the_provider") == "FAILED"
    section = run.section("test_sets_the_provider")
    first = section.strip().splitlines()[0]
    assert first.startswith(
        "otel-overhead: test_measured.py::test_sets_the_provider: the measured code calls "
        "trace.set_tracer_provider(...) at test_measured.py:"
    )
    assert "Traceback" not in section
    # The plugin's first, ordinary call logs once; the measured ones are held back.
    assert run.stdout.count("Overriding of current TracerProvider is not allowed") <= 1


def test_a_body_failing_on_a_repetition_says_which_with_its_own_exception(run: Run) -> None:
    assert run.status("test_fails_on_its_third_call") == "FAILED"
    lines = run.section("test_fails_on_its_third_call").strip().splitlines()
    # The fix first, then the body's own frame and exception; none of the plugin's frames.
    assert lines[0].startswith("otel-overhead: a measured body must be repeatable")
    assert lines[0].endswith(
        "(it passed its first call but raised on a measured repetition: warm-up, "
        "instrumented arm, block 1, call 1 of 1)"
    )
    assert "AssertionError: out of stock" in lines[-3:]
    section = "\n".join(lines)
    assert "test_measured.py" in section.split("Traceback of the measured code", 1)[1]
    assert "pytest_otel_overhead" not in section and "pyfuncitem" not in section


def test_a_coroutine_given_to_the_fixture_says_how_to_pass_async_code(run: Run) -> None:
    assert run.status("test_coroutine_to_the_fixture") == "FAILED"
    section = run.section("test_coroutine_to_the_fixture").strip()
    assert section == (
        "otel-overhead: test_measured.py::test_coroutine_to_the_fixture: otel_overhead(asyncio.run, ...) was given "
        "the coroutine object fetch(...), which the first call uses up, while a measurement calls the function "
        "thousands of times; pass a callable that makes a new one on each call, e.g. "
        "otel_overhead(lambda: asyncio.run(fetch(...)))"
    )
    assert "cannot reuse already awaited coroutine" not in run.stdout


def test_every_test_left_the_interpreter_as_found(run: Run) -> None:
    assert "left changed" not in run.stdout
    assert " ERROR" not in run.stdout
