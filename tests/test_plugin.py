"""The plugin end to end: pytest runs in subprocesses, so this process's OpenTelemetry globals stay untouched.

Measured workloads differ between the arms by far more than their budgets (or not at all), so the
verdicts hold on a busy machine; measuring time per test is capped at a few seconds.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.session import record_properties

# Every measured test in these runs must leave the interpreter exactly as it found it.
STATE_CONFTEST = """
import gc
import os
import threading
import tracemalloc

import pytest
from opentelemetry import trace


def _state():
    environ = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    return {
        "tracemalloc": tracemalloc.is_tracing(),
        "gc_enabled": gc.isenabled(),
        "gc_threshold": gc.get_threshold(),
        "gc_freeze_count": gc.get_freeze_count(),
        "threads": threading.active_count(),
        "environ": environ,
    }


@pytest.fixture(autouse=True)
def interpreter_left_as_found():
    provider = trace.get_tracer_provider()
    before = _state()
    yield
    assert trace.get_tracer_provider() is provider, "the global TracerProvider was replaced"
    after = _state()
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert not changed, f"left changed: {changed}"
"""

MEASURED_TESTS = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("shop")
CALLS = {"while_measured": 0}


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


# A queue far larger than the diagnostic round's spans: no drops however far the worker lags.
@pytest.mark.otel_overhead(budget="5%", queue_size=1_000_000)
def test_heavy_overhead():
    for _ in range(200):
        with tracer.start_as_current_span("step"):
            pass


@pytest.mark.otel_overhead(budget="1000%")
def test_no_spans():
    spin(200)


@pytest.mark.otel_overhead(budget="1000%", no_telemetry="warn")
def test_fixture_returns_the_result(otel_overhead):
    seen = []

    def price(order, *, quantity):
        seen.append(order)
        return order * quantity

    assert otel_overhead(price, 21, quantity=2) == 42
    assert len(seen) > 100, "the callable was measured, not just called"


@pytest.mark.otel_overhead(budget="50%")
def test_body_raises():
    raise LookupError("sku-42 is missing")


@pytest.mark.otel_overhead(budget="50%")
def test_raises_while_measured():
    CALLS["while_measured"] += 1
    if CALLS["while_measured"] > 300:
        raise LookupError("gave up on call 301")


def test_fixture_callable_raises(otel_overhead):
    otel_overhead(lambda: 1 / 0)
"""


def _subprocess_environment(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "PYTEST_ADDOPTS"}
    environ["PY_COLORS"] = "0"
    environ.update(extra)
    return environ


@dataclass
class PytestRun:
    """A finished pytest subprocess run in ``path``."""

    ret: int
    stdout: str
    stderr: str
    path: Path
    module: str
    outcomes: dict[str, int] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return json.loads((self.path / "out.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def result_for(self, name: str) -> dict[str, Any]:
        by_nodeid = {test["nodeid"]: test for test in self.document()["tests"]}
        return by_nodeid[f"{self.module}::{name}"]  # type: ignore[no-any-return]

    def statuses(self, name: str) -> list[str]:
        return re.findall(rf"^{re.escape(self.module)}::{name} (PASSED|FAILED|ERROR)\b", self.stdout, re.MULTILINE)

    def properties(self, name: str) -> dict[str, str]:
        tree = ET.parse(self.path / "junit.xml")
        (case,) = (c for c in tree.iter("testcase") if c.get("name") == name)
        return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def run_pytest(path: Path, files: dict[str, str], *args: str) -> PytestRun:
    """Run pytest in a fresh interpreter on ``files``, as pytester's subprocess mode does, once per module."""
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args]
    done = subprocess.run(
        command, cwd=path, env=_subprocess_environment(), capture_output=True, text=True, timeout=600, check=False
    )
    outcomes = pytest.RunResult.parse_summary_nouns(done.stdout.splitlines())
    module = next(name for name in files if name.startswith("test_"))
    return PytestRun(done.returncode, done.stdout, done.stderr, path, module, outcomes)


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory: pytest.TempPathFactory) -> PytestRun:
    """One pytest run measuring several kinds of workload (a few seconds each)."""
    return run_pytest(
        tmp_path_factory.mktemp("measured"),
        {"conftest.py": STATE_CONFTEST, "test_measured.py": MEASURED_TESTS},
        "-v",
        "--otel-overhead",
        "--otel-overhead-max-time=10",  # stops at the first decision; the cap only matters on a loaded machine
        "--otel-overhead-json=out.json",
        "--junitxml=junit.xml",
    )


def test_outcomes_of_the_measured_run(measured_run: PytestRun) -> None:
    # The two workloads without spans measured no telemetry: by default that fails the test; with
    # no_telemetry="warn" it passes with a warning.
    assert measured_run.outcomes == {"failed": 5, "passed": 1, "warnings": 1}, measured_run.stdout
    assert measured_run.ret == pytest.ExitCode.TESTS_FAILED
    assert measured_run.statuses("test_heavy_overhead") == ["FAILED"]
    assert measured_run.statuses("test_no_spans") == ["FAILED"]
    assert measured_run.statuses("test_fixture_returns_the_result") == ["PASSED"]


def test_huge_overhead_fails_with_the_figures(measured_run: PytestRun) -> None:
    figures = r"CPU overhead \+\d+\.\d% \(95% CI \[\+\d+\.\d%, (\+\d+\.\d%|∞)\]\) exceeds budget 5\.0%"
    assert re.search(figures, measured_run.stdout), measured_run.stdout
    section = measured_run.stdout.split("_ test_heavy_overhead _", 1)[1].split("\n_", 1)[0]
    assert "exceeds budget 5.0%" in section
    assert "200 spans/call" in section
    assert "Traceback" not in section and "pytest_otel_overhead" not in section
    result = measured_run.result_for("test_heavy_overhead")
    assert result["verdict"] == "FAIL"
    assert result["metrics"]["cpu"]["ci_low"] > 0.5  # truly several times the baseline


def test_a_workload_without_spans_fails_on_no_telemetry_not_on_its_budget(measured_run: PytestRun) -> None:
    assert re.search(
        r"^FAILED test_measured\.py::test_no_spans - Failed: no telemetry measured",
        measured_run.stdout,
        re.MULTILINE,
    )
    result = measured_run.result_for("test_no_spans")
    assert result["verdict"] != "FAIL"
    assert abs(result["metrics"]["cpu"]["overhead"]) < 0.5  # truly about 0
    assert result["pipeline"]["spans_started_per_call"] == 0
    assert result["outcome"] == "NO_TELEMETRY"


def test_the_fixture_returns_the_result_and_is_measured(measured_run: PytestRun) -> None:
    result = measured_run.result_for("test_fixture_returns_the_result")
    assert result["settings"]["budgets"]["cpu"] == {"kind": "relative", "value": 10.0}


def test_a_raising_workload_fails_with_its_own_exception(measured_run: PytestRun) -> None:
    assert measured_run.statuses("test_body_raises") == ["FAILED"]
    assert "LookupError: sku-42 is missing" in measured_run.stdout
    assert measured_run.statuses("test_raises_while_measured") == ["FAILED"]
    assert "LookupError: gave up on call 301" in measured_run.stdout
    assert measured_run.statuses("test_fixture_callable_raises") == ["FAILED"]
    assert "ZeroDivisionError" in measured_run.stdout


def test_no_measured_test_changed_the_interpreter(measured_run: PytestRun) -> None:
    assert "left changed" not in measured_run.stdout
    assert "the global TracerProvider was replaced" not in measured_run.stdout
    for name in (
        "test_heavy_overhead",
        "test_no_spans",
        "test_fixture_returns_the_result",
        "test_raises_while_measured",
    ):
        assert "ERROR" not in measured_run.statuses(name), name
    assert "error" not in measured_run.outcomes and "errors" not in measured_run.outcomes


def test_the_json_document(measured_run: PytestRun) -> None:
    document = measured_run.document()
    assert document["schema_version"] == 1
    packages = document["environment"]["packages"]
    for name in ("pytest-otel-overhead", "pytest", "opentelemetry-api", "opentelemetry-sdk"):
        assert packages[name], name
    nodeids = sorted(test["nodeid"] for test in document["tests"])
    assert nodeids == [
        "test_measured.py::test_fixture_returns_the_result",
        "test_measured.py::test_heavy_overhead",
        "test_measured.py::test_no_spans",
    ]
    for test in document["tests"]:
        assert test["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
        assert test["settings"]["max_time_s"] == 10.0
        assert test["settings"]["sources"]["max_time"] == "--otel-overhead-max-time"
        cpu = test["metrics"]["cpu"]
        for key in ("baseline", "instrumented", "overhead", "ci_low", "ci_high", "budget", "verdict"):
            assert key in cpu, key
        assert cpu["baseline"] > 0 and cpu["instrumented"] > 0
        assert cpu["budget"]["kind"] == "relative"
        assert cpu["verdict"] == test["verdict"]
        if cpu["ci_low"] is not None and cpu["ci_high"] is not None:
            assert cpu["ci_low"] <= cpu["overhead"] <= cpu["ci_high"]


def test_junit_properties(measured_run: PytestRun) -> None:
    heavy = measured_run.properties("test_heavy_overhead")
    assert heavy["otel_overhead.verdict"] == "FAIL"
    assert heavy["otel_overhead.cpu.verdict"] == "FAIL"
    assert float(heavy["otel_overhead.cpu.overhead"]) > 0.5
    low, high = (float(v) for v in heavy["otel_overhead.cpu.ci"].split(".."))
    assert low <= float(heavy["otel_overhead.cpu.overhead"]) <= high
    assert int(heavy["otel_overhead.pairs"]) >= 8
    assert float(heavy["otel_overhead.spans_per_call"]) == 200
    assert heavy["otel_overhead.spans_dropped"] == "0"
    assert "otel_overhead.wall.overhead" in heavy
    assert measured_run.properties("test_no_spans")["otel_overhead.verdict"] != "FAIL"


def _progress_under(run: PytestRun, name: str) -> list[str]:
    """The progress lines printed under the line pytest -v starts a test with (its id, then a space)."""
    after = run.stdout.split(f"\n{run.module}::{name} \n", 1)[1]
    return [line for line in after.split("\n\n", 1)[0].splitlines() if line.startswith("  ")]


def test_verbose_progress_lines(measured_run: PytestRun) -> None:
    heavy = _progress_under(measured_run, "test_heavy_overhead")
    assert heavy and heavy[0].startswith("  otel-overhead: look 1/6: ")
    # pytest has just printed the test's id: the progress lines do not repeat it.
    assert not [line for line in heavy if "test_heavy_overhead" in line]
    looks = [line for line in heavy if line.startswith("  otel-overhead: look ")]
    # The test fails on its CPU budget, so the last look decided FAIL; figures read as in the summary.
    assert re.fullmatch(
        r"  otel-overhead: look \d/6: \d+ pairs, [\d.]+s: "
        r"CPU \+[\d.]+% \[\+[\d.]+%, (\+[\d.]+%|∞)\] budget 5\.0%: FAIL",
        looks[-1],
    )
    assert re.match(r"  otel-overhead: look 1/6: \d+ pairs", _progress_under(measured_run, "test_no_spans")[0])


def test_the_terminal_summary_table(measured_run: PytestRun) -> None:
    out = measured_run.stdout
    assert re.search(r"^-+ otel-overhead -+$", out, re.MULTILINE)
    assert re.search(r"^test_measured\.py::test_heavy_overhead  FAIL  budget CPU 5\.0% \(marker\)$", out, re.MULTILINE)
    unwrapped = out.replace("\n      ", " ")  # a line too long for the width goes on indented two more
    assert re.search(r"^    sampler parentbased_always_on, .*; \d+ pairs in ", unwrapped, re.MULTILINE)
    # The plugin's section only: pytest's own sections after it (warnings summary, short summary) are pytest's.
    section = re.split(r"^=+ ", out.split("-- otel-overhead --", 1)[1], maxsplit=1, flags=re.MULTILINE)[0]
    assert max(len(line) for line in section.splitlines()) <= 120
    assert re.search(
        r"^\s+metric\s+baseline/call\s+instrumented/call\s+overhead %\s+95% CI\s+budget\s+verdict$", out, re.MULTILINE
    )
    assert re.search(r"^\s+CPU\s+.*\s5\.0%\s+FAIL$", out, re.MULTILINE)
    assert re.search(r"^3 measured: 0 PASS, 1 FAIL, 0 INCONCLUSIVE, 2 NO TELEMETRY$", out, re.MULTILINE)


# --- without the flag ---------------------------------------------------------------------------


def test_without_the_flag_marked_tests_run_once_and_the_fixture_just_calls(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(STATE_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        CALLS = {"body": 0, "callable": 0}

        @pytest.mark.otel_overhead(budget="5%")
        def test_marked():
            CALLS["body"] += 1

        def test_fixture(otel_overhead):
            def work(x):
                CALLS["callable"] += 1
                return x + 1
            assert otel_overhead(work, 41) == 42

        def test_counts():
            assert CALLS == {"body": 1, "callable": 1}

        def test_no_provider_was_installed():
            from opentelemetry import trace

            assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=4)
    assert not re.search(r"^-+ otel-overhead -+$", result.stdout.str(), re.MULTILINE)


def test_the_ini_file_can_enable_measuring_and_every_layer_is_honoured(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini(
        """
        [pytest]
        otel_overhead = true
        otel_overhead_max_time = 30
        otel_overhead_queue_size = 100
        otel_overhead_json = reports/out.json
        """
    )
    pytester.makepyfile(
        """
        import pytest
        from opentelemetry import trace

        tracer = trace.get_tracer("layers")

        @pytest.mark.otel_overhead(budget="100000%", exporter="none")
        def test_layers():
            with tracer.start_as_current_span("one"):
                pass
        """
    )
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4096")
    result = pytester.runpytest_subprocess("--otel-overhead-max-time=2", "--otel-overhead-exporter=memory")
    result.assert_outcomes(passed=1)
    (test,) = json.loads((pytester.path / "reports" / "out.json").read_text())["tests"]
    settings, sources = test["settings"], test["settings"]["sources"]
    assert (settings["max_time_s"], sources["max_time"]) == (2.0, "--otel-overhead-max-time")
    assert (settings["queue_size"], sources["queue_size"]) == (100, "ini otel_overhead_queue_size in tox.ini")
    assert (settings["batch_size"], sources["batch_size"]) == (50, "$OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
    assert (settings["exporter"], sources["exporter"]) == (
        "none",
        "marker on test_the_ini_file_can_enable_measuring_and_every_layer_is_honoured.py::test_layers",
    )
    assert settings["budgets"]["cpu"] == {"kind": "relative", "value": 1000.0}
    assert settings["schedule_delay_ms"] == 5000.0
    assert "schedule_delay" not in sources


def test_help_lists_the_marker(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["@pytest.mark.otel_overhead(budget='5%', **settings): measure this test's*"])
    for key in ("budget", "sampler", "sample_rate", "batch_size", "queue_size", "max_time", "inconclusive"):
        assert key in result.stdout.str()


def test_help_shows_the_option_group_and_the_ini_twins(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0, result.stderr.str()
    out = result.stdout.str()
    assert "OpenTelemetry overhead (pytest-otel-overhead)" in out
    for option in ("--otel-overhead ", "--otel-overhead-json", "--otel-overhead-budget", "--otel-overhead-sample-rate"):
        assert option in out
    for ini in ("otel_overhead ", "otel_overhead_json", "otel_overhead_budget", "otel_overhead_queue_size"):
        assert ini in out
    assert "%%" not in out


# --- bad settings --------------------------------------------------------------------------------

USAGE_ERRORS = [
    pytest.param(
        {"OTEL_BSP_MAX_QUEUE_SIZE": "abc"},
        [],
        None,
        "$OTEL_BSP_MAX_QUEUE_SIZE: 'abc' is not a whole number of at least 1",
        id="env-value",
    ),
    pytest.param(
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256", "OTEL_TRACING_BATCH_SIZE": "128"},
        [],
        None,
        "$OTEL_TRACING_BATCH_SIZE=128 disagrees with $OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        id="env-conflict",
    ),
    pytest.param(
        {}, ["--otel-overhead-budget=five"], None, "--otel-overhead-budget: 'five' is not a budget", id="cli-budget"
    ),
    pytest.param(
        {},
        ["--otel-overhead-batch-size=4096"],
        None,
        "batch_size 4096 (--otel-overhead-batch-size) exceeds queue_size 2048 (default)",
        id="cli-batch-over-queue",
    ),
    pytest.param(
        {"OTEL_BSP_MAX_QUEUE_SIZE": "64"},
        [],
        "otel_overhead_batch_size = 128",
        "batch_size 128 (ini otel_overhead_batch_size in tox.ini) exceeds queue_size 64 ($OTEL_BSP_MAX_QUEUE_SIZE)",
        id="ini-batch-over-env-queue",
    ),
    pytest.param(
        {},
        [],
        "otel_overhead_budget = five",
        "ini otel_overhead_budget in tox.ini: 'five' is not a budget",
        id="ini-budget",
    ),
]


@pytest.mark.parametrize(("env", "args", "ini", "message"), USAGE_ERRORS)
def test_a_bad_setting_is_one_clean_line_naming_its_source(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    ini: str | None,
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if ini is not None:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--otel-overhead", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith("ERROR: otel-overhead: ")
    assert message in errors[0]
    everything = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in everything
    assert "pytest_otel_overhead" not in everything


MARKER_ERRORS = """
import pytest


@pytest.mark.otel_overhead(budjet="5%")
def test_unknown():
    pass


@pytest.mark.otel_overhead(budget="five")
def test_five():
    pass


@pytest.mark.otel_overhead(sample_rate=-1)
def test_rate():
    pass


@pytest.mark.otel_overhead(batch_size=4096)
def test_batch():
    pass


@pytest.mark.otel_overhead("5%")
def test_positional():
    pass


@pytest.mark.otel_overhead(budget="5%")
async def test_async():
    pass


@pytest.mark.otel_overhead(queue_size=0)
def test_fixture_with_bad_marker(otel_overhead):
    pass
"""


@pytest.fixture(scope="module")
def marker_errors_run(tmp_path_factory: pytest.TempPathFactory) -> PytestRun:
    return run_pytest(tmp_path_factory.mktemp("markers"), {"test_markers.py": MARKER_ERRORS}, "--otel-overhead")


def test_bad_marker_arguments_error_the_test_with_a_message_naming_the_marker(marker_errors_run: PytestRun) -> None:
    assert marker_errors_run.outcomes == {"errors": 7}, marker_errors_run.stdout
    out = marker_errors_run.stdout
    for expected in (
        "otel-overhead: marker on test_markers.py::test_unknown: unknown argument 'budjet'; did you mean 'budget'?",
        "otel-overhead: marker on test_markers.py::test_five: 'five' is not a budget",
        "otel-overhead: marker on test_markers.py::test_rate: -1 is not a sampling rate",
        "otel-overhead: batch_size 4096 (marker on test_markers.py::test_batch) exceeds queue_size 2048 (default)",
        "otel-overhead: marker on test_markers.py::test_positional: takes keyword arguments only",
        "otel-overhead: marker on test_markers.py::test_async: the test body must be a plain function",
        "otel-overhead: marker on test_markers.py::test_fixture_with_bad_marker: 0 is not a whole number of at "
        "least 1 (argument queue_size)",
    ):
        assert expected in out, expected
    assert "Traceback" not in out
    assert "pytest_otel_overhead" not in out


def test_a_bad_marker_argument_is_reported_once(marker_errors_run: PytestRun) -> None:
    out = marker_errors_run.stdout
    assert "During handling of the above exception" not in out
    assert "SettingsError" not in out
    for test, message in (("test_five", "'five' is not a budget"), ("test_rate", "-1 is not a sampling rate")):
        section = out.split(f"_ ERROR at setup of {test} _", 1)[1].split("\n_", 1)[0]
        assert section.count(message) == 1, section


# --- undecided budgets ---------------------------------------------------------------------------

UNDECIDED_CONFTEST = """
import pytest_otel_overhead.engine.strategy as strategy_module
from pytest_otel_overhead.results import MetricResult, StopReason, TestResult
from pytest_otel_overhead.stats.verdict import Verdict


def undecided(workload, settings, router, *, nodeid="", progress=None, **kwargs):
    workload()
    cpu = MetricResult(
        metric="cpu", baseline=1e-3, instrumented=1.04e-3, overhead=0.04, ci_low=-0.02, ci_high=0.10,
        kind="relative", n=30, spread=0.05, confidence=0.95, budget=settings.budget("cpu"),
        verdict=Verdict.INCONCLUSIVE, resolution=0.06, note="undecided after 30 pairs",
    )
    return TestResult(
        nodeid=nodeid, settings=settings, metrics=(cpu,), health=None, process=None, pairs=30,
        calls_per_block=10, looks=6, duration_s=3.0, stop_reason=StopReason.MAX_TIME,
        throughput_baseline=1000.0, throughput_instrumented=960.0,
    )


strategy_module.measure = undecided
"""

UNDECIDED_TESTS = """
import pytest


@pytest.mark.otel_overhead(budget="5%")
def test_default_policy():
    pass


@pytest.mark.otel_overhead(budget="5%", inconclusive="fail")
def test_policy_fail():
    pass


@pytest.mark.otel_overhead(budget="5%", inconclusive="warn")
def test_policy_warn():
    pass


@pytest.mark.otel_overhead(budget="5%", inconclusive="pass")
def test_policy_pass():
    pass
"""


def test_the_inconclusive_policy_from_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UNDECIDED_CONFTEST)
    pytester.makepyfile(test_undecided=UNDECIDED_TESTS)
    result = pytester.runpytest_subprocess("--otel-overhead", "-p", "no:randomly", "-W", "default", "-rA")
    assert result.parseoutcomes() == {"failed": 1, "passed": 3, "warnings": 2}
    result.stdout.fnmatch_lines(["FAILED test_undecided.py::test_policy_fail - Failed: CPU +4.0% undecided vs*"])
    result.stdout.fnmatch_lines(["CPU +4.0% undecided vs budget 5.0% (inconclusive=fail, marker on *)"])
    result.stdout.fnmatch_lines(["PASSED test_undecided.py::test_policy_pass"])
    out = result.stdout.str()
    assert "undecided against budget 5.0% (undecided after 30 pairs)" in out
    # Each warning names the test's own line (its marker, lines 4 and 14), not the plugin's frame.
    warned = re.findall(
        r"test_undecided\.py:(\d+): OverheadInconclusiveWarning: test_undecided\.py::(\w+): CPU overhead", out
    )
    assert set(warned) == {("4", "test_default_policy"), ("14", "test_policy_warn")}
    assert "4 measured: 0 PASS, 0 FAIL, 4 INCONCLUSIVE" in out


def test_the_inconclusive_policy_from_the_command_line_yields_to_markers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UNDECIDED_CONFTEST)
    pytester.makepyfile(test_undecided=UNDECIDED_TESTS)
    result = pytester.runpytest_subprocess(
        "--otel-overhead", "--otel-overhead-inconclusive=fail", "-p", "no:randomly", "-W", "default", "-rA"
    )
    # The command line decides for test_default_policy; every other test keeps its marker's policy.
    assert result.parseoutcomes() == {"failed": 2, "passed": 2, "warnings": 1}
    result.stdout.fnmatch_lines(["FAILED test_undecided.py::test_default_policy - *"])
    result.stdout.fnmatch_lines(["FAILED test_undecided.py::test_policy_fail - *"])
    result.stdout.fnmatch_lines(
        ["*CPU +4.0% undecided vs budget 5.0% (inconclusive=fail, --otel-overhead-inconclusive)"]
    )
    result.stdout.fnmatch_lines(["*undecided against budget 5.0%*"])


# --- junit properties of several fixture calls (in process) --------------------------------------


@dataclass
class FakeItem:
    nodeid: str
    user_properties: list[tuple[str, object]] = field(default_factory=list)


def test_junit_properties_of_a_second_fixture_call_get_their_own_prefix(make_result: Callable[..., TestResult]) -> None:
    item = FakeItem("tests/test_shop.py::test_checkout[eu]")
    record_properties(item, make_result(item.nodeid))  # type: ignore[arg-type]
    record_properties(item, make_result(item.nodeid + "#call2"))  # type: ignore[arg-type]
    names = [name for name, _ in item.user_properties]
    assert len(names) == len(set(names)), "a second call must not repeat the first call's names"
    first = {n for n in names if not n.startswith("otel_overhead.call2.")}
    second = {
        n.replace("otel_overhead.call2.", "otel_overhead.", 1) for n in names if n.startswith("otel_overhead.call2.")
    }
    assert first == second
    assert {
        "otel_overhead.verdict",
        "otel_overhead.cpu.overhead",
        "otel_overhead.cpu.ci",
        "otel_overhead.cpu.verdict",
    } <= first
    for name in names:
        assert re.fullmatch(r"otel_overhead(\.call\d+)?\.[a-z0-9_.]+", name), name
    values = dict(item.user_properties)
    assert values["otel_overhead.verdict"] == "PASS"
    assert values["otel_overhead.cpu.ci"] == "-0.01..0.03"
    assert values["otel_overhead.spans_per_call"] == "3"
