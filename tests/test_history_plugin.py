"""Saving, comparing and CI outputs through pytest itself, in subprocesses.

Effects are kept far from every threshold: the "heavy" workload starts ~60 spans around a tiny loop
(overhead of the order of +100..400%), the "light" one one span around ~1 ms of work (a few %),
budgets are 10000% so they pass quickly (and the heavy one stays ~25 times below its budget), and
regressions are judged against +50 percentage points (heavy against light) or +1000 (light against
light: an A/A comparison that must read OK).

A run stops at its first decided look, and two runs are compared on the pairs they kept: a max_time
of 20 s puts the first look late enough for well over the minimum of 8 pairs even on a busy machine
(a decided run still ends in a few seconds), so comparisons are not made on a handful of noisy pairs.
"""

from __future__ import annotations

import json
import sys

import pytest
from instant_engine import INSTANT_ENGINE


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite run inside GitHub Actions must not write these runs into its own job summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


WORKLOAD = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("workload")
SPANS, LOOP = {spans}, {loop}


def work():
    for _ in range(SPANS):
        with tracer.start_as_current_span("step"):
            pass
    total = 0
    for i in range(LOOP):
        total += i
    return total


@pytest.mark.otel_overhead(budget="10000%", inconclusive="pass")
def test_work():
    assert work() >= 0


def test_plain():
    pass
"""
LIGHT = WORKLOAD.format(spans=1, loop=30000)
HEAVY = WORKLOAD.format(spans=60, loop=1000)
MEASURE = ("-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-max-time=20")


def test_regression_fails_the_test_and_reaches_every_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_workload=LIGHT)
    first = pytester.runpytest_subprocess(*MEASURE, "--otel-overhead-save=base")
    first.assert_outcomes(passed=2)
    saved = list((pytester.path / ".otel-overhead").glob("*_base_*.json"))
    assert len(saved) == 1
    data = json.loads(saved[0].read_text())
    assert data["run"]["name"] == "base" and data["run"]["machine"].keys() >= {"cpu_model"}
    assert len(data["tests"][0]["samples"]["per_call_seconds"]) == data["tests"][0]["pairs"] >= 8

    pytester.makepyfile(test_workload=HEAVY)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step-summary.md"))
    second = pytester.runpytest_subprocess(
        *MEASURE,
        "--otel-overhead-compare=base",
        "--otel-overhead-compare-fail=cpu:+50pp",
        "--otel-overhead-markdown=out/summary.md",
        "--otel-overhead-html=out/report.html",
    )
    second.assert_outcomes(passed=1, failed=1)
    output = second.stdout.str()
    # pytest 8+ also puts a pytest.fail(pytrace=False) message in the short summary; pytest 7 in the failure only.
    pytest8 = int(pytest.__version__.split(".")[0]) >= 8
    assert ("test_workload.py::test_work - " if pytest8 else "") + "otel-overhead: CPU" in output
    assert "grew by more than 50 percentage points (cpu:+50pp)" in output
    assert "REGRESSED" in output and "compared with run 'base'" in output
    summary = (pytester.path / "out" / "summary.md").read_text()
    assert "### Compared with run 'base'" in summary and "❌ regressed" in summary
    assert "OpenTelemetry overhead" in (pytester.path / "step-summary.md").read_text()
    report = (pytester.path / "out" / "report.html").read_text()
    assert "Compared with an earlier run" in report and "test_workload.py::test_work" in report
    assert "<h2>History</h2>" in report, "the saved run and this one make a trend"
    assert not list((pytester.path / ".otel-overhead").glob("*.tmp"))


def test_autosave_from_ini_and_compare_with_a_run_from_elsewhere(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\notel_overhead_autosave = true\notel_overhead_storage = runs\n")
    pytester.makepyfile(test_workload=LIGHT)
    pytester.runpytest_subprocess(*MEASURE).assert_outcomes(passed=2)
    (saved,) = (pytester.path / "runs").glob("*.json")
    data = json.loads(saved.read_text())
    data["environment"]["python"] = "2.7.18"
    data["environment"]["packages"]["opentelemetry-sdk"] = "0.0.1"
    saved.write_text(json.dumps(data))

    second = pytester.runpytest_subprocess(*MEASURE, "--otel-overhead-compare-fail=cpu:+300pp")
    second.assert_outcomes(passed=2, warnings=1)
    output = second.stdout.str()
    assert "measured elsewhere: Python 2.7.18 → " in output
    assert "opentelemetry-sdk 0.0.1 → " in output
    assert len(list((pytester.path / "runs").glob("*.json"))) == 2


def test_nothing_to_compare_with_is_a_warning_and_nothing_measured_saves_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-compare-fail=cpu:+1pp", "--otel-overhead-save=x"
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*no saved run in *.otel-overhead to compare with; this run is not compared*"])
    assert not (pytester.path / ".otel-overhead").exists()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--otel-overhead-compare=nope"], "ERROR: otel-overhead: *: no saved run named 'nope'*"),
        (
            "garbage",
            ["--otel-overhead-compare"],
            "ERROR: otel-overhead: *20250101T000000000000Z_x_00000000.json: not valid JSON*",
        ),
        (
            "foreign",
            ["--otel-overhead-compare=latest"],
            "ERROR: otel-overhead: *other.json: not a pytest-otel-overhead run*",
        ),
        (None, ["--otel-overhead-compare-fail=cpu"], "*--otel-overhead-compare-fail: 'cpu' is not a regression crit*"),
        (None, ["--otel-overhead-save", "tests"], "*--otel-overhead-save took 'tests' as its value*"),
        (None, ["--otel-overhead-save=a/b"], "*a run name has letters, digits*"),
        (
            None,
            ["--otel-overhead-min-processes=0"],
            "ERROR: otel-overhead: --otel-overhead-min-processes: '0' is not a whole number of at least 1",
        ),
        (
            None,
            ["--otel-overhead-min-processes=9"],
            "ERROR: otel-overhead: --otel-overhead-min-processes: 9 is more than the 8 processes *",
        ),
        (
            "ini",
            [],
            "ERROR: otel-overhead: ini otel_overhead_min_processes: 'many' is not a whole number of at least 1",
        ),
    ],
)
def test_bad_history_options_stop_the_session_with_one_line(
    pytester: pytest.Pytester, setup: str | None, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.mkdir("tests")
    store = pytester.mkdir(".otel-overhead")
    if setup == "garbage":
        (store / "20250101T000000000000Z_x_00000000.json").write_text("{not json")
    elif setup == "foreign":
        (store / "other.json").write_text('{"benchmarks": []}')
    elif setup == "ini":
        pytester.makeini("[pytest]\notel_overhead_min_processes = many\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--otel-overhead", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_tracking_lines_follow_the_verdict_table_and_precede_the_advice(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_workload=LIGHT)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead-explain", "--otel-overhead-save=x", "--otel-overhead-storage=runs"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- otel-overhead -*",
            "1 measured: 1 PASS, 0 FAIL, 0 INCONCLUSIVE*",
            "saved run 'x' to*",
            "*runs*",  # the path whole, on a line of its own when the line would not fit
            "*- otel-overhead advice -*",
            "otel-overhead by layer:",
        ]
    )
    assert len(list((pytester.path / "runs").glob("*_x_*.json"))) == 1


def test_options_are_listed_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    for option in (
        "--otel-overhead-save=[NAME]",
        "--otel-overhead-autosave",
        "--otel-overhead-storage=PATH",
        "--otel-overhead-compare=[NAME|latest]",
        "--otel-overhead-compare-fail=EXPR",
        "--otel-overhead-markdown=PATH",
        "--otel-overhead-html=PATH",
    ):
        assert option in result.stdout.str(), option
    for ini in ("otel_overhead_autosave", "otel_overhead_storage", "otel_overhead_compare_fail", "otel_overhead_html"):
        assert ini in result.stdout.str(), ini


def test_command_line_on_a_saved_store(pytester: pytest.Pytester) -> None:
    """``python -m pytest_otel_overhead`` on a store written by a real run; exit codes and files."""
    pytester.makepyfile(test_workload=LIGHT)
    pytester.runpytest_subprocess(*MEASURE, "--otel-overhead-save=one").assert_outcomes(passed=2)
    pytester.runpytest_subprocess(*MEASURE, "--otel-overhead-save=two").assert_outcomes(passed=2)
    listing = pytester.run(sys.executable, "-m", "pytest_otel_overhead", "list")
    assert listing.ret == 0
    listing.stdout.fnmatch_lines(["file*name*saved*", "*_one_*one*", "*_two_*two*"])
    compared = pytester.run(
        sys.executable, "-m", "pytest_otel_overhead", "compare", "one", "latest", "--fail", "cpu:+1000pp",
        "--markdown", "cmp.md",
    )  # fmt: skip
    assert compared.ret == 0, compared.stdout.str() + compared.stderr.str()
    compared.stdout.fnmatch_lines(["compared with run 'one'*", "*test_workload.py::test_work*OK*"])
    reported = pytester.run(
        sys.executable, "-m", "pytest_otel_overhead", "report", "latest", "--html", "r.html", "--markdown", "r.md"
    )
    assert reported.ret == 0
    assert "<h2>History</h2>" in (pytester.path / "r.html").read_text()
    assert "test\\_workload.py::test\\_work" in (pytester.path / "r.md").read_text()
    (pytester.path / ".otel-overhead" / "zz-broken.json").write_text("[")
    broken = pytester.run(sys.executable, "-m", "pytest_otel_overhead", "compare", "zz-broken", "one")
    assert broken.ret == 2
    assert broken.stderr.lines[-1].startswith("error: ") and "zz-broken.json: not valid JSON" in broken.stderr.str()
    assert "Traceback" not in broken.stderr.str()
