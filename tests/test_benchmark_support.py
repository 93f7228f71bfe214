"""Tests written for pytest-benchmark, measured unchanged under --otel-overhead and timed as usual without it."""

from __future__ import annotations

import inspect
import json

import pytest

pytest.importorskip("pytest_benchmark")


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite run inside GitHub Actions must not write these runs into its own job summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


BENCHMARKS = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("bench")
calls = {"setup": 0, "teardown": 0}


def square(x):
    with tracer.start_as_current_span("square"):
        total = 0
        for i in range(2000):
            total += i
        return x * x


def test_call(benchmark):
    benchmark.extra_info["note"] = "kept"
    assert benchmark(square, 7) == 49


def test_keyword_arguments(benchmark):
    assert benchmark(lambda *, x: square(x), x=3) == 9


def test_pedantic(benchmark):
    def setup():
        calls["setup"] += 1
        return (5,), {}

    def teardown(x):
        calls["teardown"] += 1

    assert benchmark.pedantic(square, setup=setup, teardown=teardown, rounds=3) == 25
    assert calls["setup"] > 1 and calls["teardown"] > 1  # run with each measured call


@pytest.mark.otel_overhead(budget="1000%")
def test_marked(benchmark):
    assert benchmark(square, 2) == 4


def test_used_twice(benchmark):
    benchmark(square, 1)
    benchmark(square, 1)


def test_failing_workload(benchmark):
    def broken():
        raise KeyError("from the workload")

    benchmark(broken)
"""
OVERHEAD = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:xdist",
    "--otel-overhead",
    "--otel-overhead-max-time=2",
    "--otel-overhead-budget=1000%",
)


def test_benchmark_tests_are_measured_for_overhead(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bench=BENCHMARKS)
    result = pytester.runpytest_subprocess(*OVERHEAD, "--otel-overhead-json=out.json", "-rf")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "E *FixtureAlreadyUsed: Fixture can only be used once.*",  # as pytest-benchmark has it
            "E *KeyError: 'from the workload'",  # the workload's own error, from its first ordinary call
            "FAILED test_bench.py::test_used_twice - *",
            "FAILED test_bench.py::test_failing_workload - *",
        ]
    )
    measured = [t["nodeid"] for t in json.loads((pytester.path / "out.json").read_text())["tests"]]
    assert measured == [
        "test_bench.py::test_call",
        "test_bench.py::test_keyword_arguments",
        "test_bench.py::test_pedantic",
        "test_bench.py::test_marked",  # once: its benchmark call, not its body as well
        "test_bench.py::test_used_twice",
    ]
    output = result.stdout.str()
    assert "benchmark: 5 tests" not in output and "Name (time in" not in output, "pytest-benchmark times nothing"
    assert "Benchmark fixture was not used" not in output
    # ... and says so, once, instead of leaving its table to vanish silently.
    note = [line for line in result.stdout.lines if "no pytest-benchmark table" in line]
    assert note == [
        "otel-overhead: no pytest-benchmark table: the benchmark fixture of 6 tests measured telemetry overhead "
        "instead of timing (see the otel-overhead summary; without --otel-overhead pytest-benchmark times them)"
    ]
    # Unmarked benchmark tests say which budget held them, and where it came from.
    result.stdout.fnmatch_lines(
        [
            "test_bench.py::test_call  PASS  budget CPU 1000.0% (--otel-overhead-budget)",
            "test_bench.py::test_marked  PASS  budget CPU 1000.0% (marker)",
        ],
        consecutive=False,
    )


def test_without_the_flag_pytest_benchmark_times_as_usual(pytester: pytest.Pytester) -> None:
    from pytest_benchmark.fixture import BenchmarkFixture

    if "teardown" not in inspect.signature(BenchmarkFixture.pedantic).parameters:
        pytest.skip("test_pedantic passes teardown=, which pytest-benchmark's own pedantic() takes from 5.0 on")
    pytester.makepyfile(test_bench=BENCHMARKS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--benchmark-json=bench.json", "--benchmark-max-time=0.01", "-k", "not failing"
    )
    result.assert_outcomes(passed=4, failed=1)  # pytest-benchmark's own rule: one use per test
    timed = json.loads((pytester.path / "bench.json").read_text())["benchmarks"]
    assert {b["name"] for b in timed} >= {"test_call", "test_keyword_arguments", "test_pedantic", "test_marked"}
    assert all(b["stats"]["rounds"] >= 1 for b in timed)
    assert next(b for b in timed if b["name"] == "test_call")["extra_info"] == {"note": "kept"}
    assert "- otel-overhead -" not in result.stdout.str()
    assert "no pytest-benchmark table" not in result.stdout.str()


def test_benchmark_skip_still_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bench="def test_call(benchmark):\n    benchmark(sum, [1, 2])\n")
    result = pytester.runpytest_subprocess(*OVERHEAD, "--benchmark-skip")
    result.assert_outcomes(skipped=1)


def test_without_pytest_benchmark_loaded_nothing_is_taken_over(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bench="def test_call(benchmark):\n    benchmark(sum, [1, 2])\n")
    result = pytester.runpytest_subprocess(*OVERHEAD, "-p", "no:benchmark")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'benchmark' not found*"])
