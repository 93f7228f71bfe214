"""Tests of the harness's own logic: statistics, parsers of the tools' output, the plan and the report.

Run by path (``python -m pytest benchmarks/real/test_harness.py``; ``tox -e real`` runs them first).
They use synthetic records and captured output formats only: nothing is timed.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.real import budgets, cli, near_report, plan, plugin, report, tools
from benchmarks.real.processes import (
    WORKLOAD_PROJECT,
    Outcome,
    Record,
    Workspace,
    child_env,
    load_summary,
    run_command,
)
from pytest_otel_overhead.calibrate.runs import busy_processes


def binomial_tail(n: int, k: int) -> float:
    """P(Binomial(n, 1/2) <= k)."""
    return float(sum(math.comb(n, j) for j in range(k + 1)) / 2**n)


@pytest.mark.parametrize("n", range(1, 41))
def test_median_interval_is_the_narrowest_order_statistic_interval_with_95_percent(n: int) -> None:
    values = [float(v) for v in range(n, 0, -1)]  # unsorted on purpose: x_(i) = i
    low, high, confidence = report.median_interval(values)
    k = int(low)
    assert high == n + 1 - k
    if k == 1 and 1 - 2 * binomial_tail(n, 0) < 0.95:  # too few values: the range, at its own confidence
        assert confidence == pytest.approx(1 - 2 / 2**n)
        return
    assert confidence == pytest.approx(1 - 2 * binomial_tail(n, k - 1))
    assert confidence >= 0.95
    assert 1 - 2 * binomial_tail(n, k) < 0.95 or k + 1 > n // 2  # one step narrower would fall short


def test_median_interval_of_thirty_processes() -> None:
    low, high, confidence = report.median_interval([float(v) for v in range(1, 31)])
    assert (low, high) == (10.0, 21.0)
    assert confidence == pytest.approx(0.9572, abs=1e-4)


def test_median_interval_needs_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        report.median_interval([])


@pytest.mark.parametrize(
    ("low", "high", "value", "expected"),
    [
        (0.01, 0.03, 0.02, True),
        (0.01, 0.03, 0.04, False),
        (0.01, 0.03, 0.0, False),
        (None, 0.03, -5.0, True),
        (0.01, None, 5.0, True),
        (0.01, None, 0.0, False),
    ],
)
def test_covers_reads_null_ends_as_unbounded(
    low: float | None, high: float | None, value: float, expected: bool
) -> None:
    assert report.covers({"ci_low": low, "ci_high": high}, value) is expected


def test_conflicts_only_for_pass_and_fail_under_one_budget() -> None:
    five = {"kind": "relative", "value": 0.05}
    ten = {"kind": "relative", "value": 0.1}
    assert report.conflicts([{"verdict": "PASS", "budget": five}, {"verdict": "FAIL", "budget": five}]) == "YES"
    assert (
        report.conflicts([{"verdict": "PASS", "budget": five}, {"verdict": "INCONCLUSIVE", "budget": five}]) == "never"
    )
    assert report.conflicts([{"verdict": "PASS", "budget": ten}, {"verdict": "FAIL", "budget": five}]) == "never"


COMPARE_OUTPUT = """\
compared with run-000 (saved 2026-12-04T10:00:00Z); fail on growth beyond cpu:+1pp
  test_real.py::test_flask  OK
      CPU +3.1% → +3.4%: +0.3pp (95% CI -0.5pp…+1.0pp)  [40 vs 40 pairs]  OK cpu:+1pp
  test_real.py::test_manual  REGRESSED
      CPU +5.0% → +7.2%: +2.2pp (95% CI +1.3pp…+3.1pp)  [40 vs 40 pairs]  REGRESSED cpu:+1pp
  test_real.py::test_sqlite3  UNDECIDED
      CPU +400% → +420%: +20pp (95% CI -30pp…+70pp)  [12 vs 10 pairs]  UNDECIDED cpu:+1pp
  test_real.py::test_requests  new test: not in the earlier run
3 compared: 1 regressed, 1 within cpu:+1pp, 1 undecided
"""


def test_parse_comparison_reads_each_test_and_its_lines() -> None:
    found = plugin.parse_comparison(COMPARE_OUTPUT)
    assert {w: r["outcome"] for w, r in found.items()} == {"flask": "OK", "manual": "REGRESSED", "sqlite3": "UNDECIDED"}
    assert found["manual"]["lines"] == [
        "CPU +5.0% → +7.2%: +2.2pp (95% CI +1.3pp…+3.1pp)  [40 vs 40 pairs]  REGRESSED cpu:+1pp"
    ]


def test_parse_comparison_joins_the_lines_the_terminal_width_wrapped() -> None:
    from pytest_otel_overhead.reports.terminal import wrap_lines

    wrapped = "\n".join(wrap_lines(COMPARE_OUTPUT.splitlines(), 60))
    assert len(wrapped.splitlines()) > len(COMPARE_OUTPUT.splitlines())
    found, whole = plugin.parse_comparison(wrapped), plugin.parse_comparison(COMPARE_OUTPUT)
    assert {w: r["outcome"] for w, r in found.items()} == {w: r["outcome"] for w, r in whole.items()}
    for workload, record in whole.items():
        assert [" ".join(line.split()) for line in found[workload]["lines"]] == [
            " ".join(line.split()) for line in record["lines"]
        ]


def test_compare_saved_records_each_workload_of_either_run_and_passes_over_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def compared(label: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, **_: object) -> Outcome:
        log.write_text(COMPARE_OUTPUT, encoding="utf-8")
        return Outcome(1, 0.1, log)

    monkeypatch.setattr(plugin, "run_command", compared)
    counts = plan.Counts(runs=2, reference_processes=0, reference_seconds=10, pyperf_rounds=0, benchmark_rounds=0)
    p = plan.Plan(plan.WORKLOADS, counts, block_ms=20, load=0, max_time=None, budget=None, instructions=False, seed=7)
    records = plugin.compare_saved(0, 1, p, Workspace(tmp_path, None))
    outcomes = {r["workload"]: r["outcome"] for r in records}
    # requests is in the comparison without a verdict; fastapi and checkout are in neither run.
    assert outcomes == {"flask": "OK", "manual": "REGRESSED", "sqlite3": "UNDECIDED", "requests": "ERROR"}


BENCHMARK_OUTPUT = """\
Performance has regressed:
\ttest_flask (0001_baselin) - Field 'median' has failed PercentageRegressionCheck: 9.836831872 > 5.000000000
\ttest_sqlite3 (0001_baselin) - Field 'median' has failed PercentageRegressionCheck: 518.063891113 > 5.000000000
--------------------------------------------------------------------------------
"""


def test_regressed_workloads_from_pytest_benchmark_output() -> None:
    assert tools.regressed_workloads(BENCHMARK_OUTPUT) == {"flask", "sqlite3"}
    assert tools.regressed_workloads("5 passed in 3.2s\n") == set()


@pytest.mark.parametrize(
    ("text", "instrumented", "verdict"),
    [
        (
            "Mean +- std dev: [b] 1.00 ms +- 0.01 ms -> [i] 1.20 ms +- 0.01 ms: 1.20x slower\nSignificant (t=-7.86)\n",
            1.2,
            "FAIL",
        ),
        (
            "Mean +- std dev: [b] 1.00 ms +- 0.5 ms -> [i] 1.20 ms +- 0.5 ms: 1.20x slower\nNot significant!\n",
            1.2,
            "PASS",
        ),
        (
            "Mean +- std dev: [b] 1.00 ms +- 0.01 ms -> [i] 1.03 ms +- 0.01 ms: 1.03x slower\nSignificant (t=-3.1)\n",
            1.03,
            "PASS",
        ),
    ],
)
def test_pyperf_verdict_is_fail_only_when_significant_and_over_budget(
    text: str, instrumented: float, verdict: str
) -> None:
    result = tools.pyperf_verdict(text, 1.0, instrumented, 0.05)
    assert result["verdict"] == verdict
    assert result["estimate"] == pytest.approx(instrumented - 1)


def test_pyperf_verdict_without_a_significance_line_is_an_error() -> None:
    assert (
        tools.pyperf_verdict("Benchmark hidden because not significant (1): manual\n", 1.0, 1.2, 0.05)["verdict"]
        == "ERROR"
    )


def test_budget_fraction() -> None:
    assert tools.budget_fraction(None) == 0.05
    assert tools.budget_fraction("7.5%") == pytest.approx(0.075)
    with pytest.raises(ValueError, match="'500us': pyperf and pytest-benchmark take relative budgets only"):
        tools.budget_fraction("500us")
    with pytest.raises(ValueError, match="'x%' is not a percentage"):
        tools.budget_fraction("x%")


def test_cli_errors_name_the_option_and_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.arguments(["--workloads", "flask,django"])
    assert (
        "--workloads: unknown workload 'django'; known: flask, fastapi, requests, sqlite3, manual, checkout"
        in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        cli.arguments(["--runs", "0"])
    assert "--runs: 0 is below 1" in capsys.readouterr().err


def test_quick_plan_and_overrides() -> None:
    quick = cli.build_plan(cli.arguments(["--quick", "--seed", "3"]))
    assert quick.counts == plan.QUICK
    assert quick.max_time == plan.QUICK_MAX_TIME
    assert quick.pyperf_args == plan.QUICK_PYPERF_ARGS
    full = cli.build_plan(
        cli.arguments(["--runs", "25", "--pyperf-rounds", "0", "--workloads", "manual", "--load", "2"])
    )
    assert (full.counts.runs, full.counts.pyperf_rounds, full.counts.reference_processes) == (25, 0, 30)
    assert (full.workloads, full.load, full.max_time, full.pyperf_args) == (("manual",), 2, None, ())


def test_schedule_holds_every_job_once_in_a_seeded_order() -> None:
    counts = plan.Counts(runs=20, reference_processes=30, reference_seconds=10, pyperf_rounds=3, benchmark_rounds=10)
    p = plan.Plan(plan.WORKLOADS, counts, block_ms=20, load=0, max_time=None, budget=None, instructions=True, seed=7)
    jobs = plan.schedule(p)
    kinds = Counter(job.kind for job in jobs)
    n = len(plan.WORKLOADS)
    assert kinds == {"plugin": 20, "benchmark": 10, "reference": 30 * n, "pyperf": 3 * n, "instructions": 1}
    assert len(set(jobs)) == len(jobs)
    assert jobs == plan.schedule(p)
    assert jobs != sorted(jobs, key=lambda j: (j.kind, j.workload or "", j.index))
    orders = {tuple(plan.shuffled_workloads(p, job)) for job in jobs if job.kind == "plugin"}
    assert all(sorted(order) == sorted(plan.WORKLOADS) for order in orders)
    assert len(orders) > 1  # test orders vary from run to run


def functions(path: Path) -> set[str]:
    return {node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}


def test_every_workload_has_its_tests_and_its_definition() -> None:
    apps = (WORKLOAD_PROJECT / "apps.py").read_text()
    for workload in plan.WORKLOADS:
        assert f"test_{workload}" in functions(WORKLOAD_PROJECT / "test_real.py")
        assert f"test_{workload}" in functions(WORKLOAD_PROJECT / "test_bench.py")
        assert f'Workload("{workload}",' in apps


def test_load_summary() -> None:
    summary = load_summary([1.0, 1.0, 1.0], [0.5, 2.0, 1.0], None)
    assert (summary["min"], summary["median"], summary["max"], summary["samples"]) == (0.5, 1.0, 2.0, 3)
    assert load_summary(None, [], None)["median"] is None


def plugin_record(verdict: str, estimate: float, low: float | None, high: float | None, seconds: float) -> Record:
    budget = {"kind": "relative", "value": 0.05}
    return {
        "type": "plugin",
        "workload": "manual",
        "verdict": verdict,
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "budget": budget,
        "duration_s": seconds,
    }


def test_table_row_from_synthetic_records() -> None:
    records: list[Record] = [
        *({"type": "reference", "workload": "manual", "estimate": e} for e in (0.04, 0.05, 0.06)),
        plugin_record("FAIL", 0.062, 0.055, 0.068, 2.0),  # misses the reference median, 5%
        plugin_record("INCONCLUSIVE", 0.05, 0.04, 0.061, 30.0),
        plugin_record("INCONCLUSIVE", 0.058, 0.045, None, 4.0),  # unbounded above: holds it
        {"type": "plugin", "workload": "manual", "verdict": "ERROR", "error": "boom"},
        {"type": "pyperf", "workload": "manual", "verdict": "FAIL", "estimate": 0.2},
        {"type": "pyperf", "workload": "manual", "verdict": "PASS", "estimate": 0.0},
        {"type": "benchmark", "workload": "manual", "verdict": "PASS", "estimate": 0.01},
        {"type": "compare", "workload": "manual", "outcome": "OK"},
        {"type": "compare", "workload": "manual", "outcome": "REGRESSED", "before": 0, "after": 1, "lines": []},
        {"type": "compare", "workload": "manual", "outcome": None},
    ]
    [row] = report.table_rows(records)
    cells = dict(zip(report.HEADER, row, strict=True))
    assert cells["reference (median, interval, processes)"] == "+5.0% [+4.0%, +6.0%] (75% interval), 3"
    assert cells["plugin runs"] == "3"
    assert cells["PASS / FAIL / INCONCL."] == "0 / 1 / 2"
    assert cells["PASS and FAIL"] == "never"
    assert cells["interval holds the reference"] == "2/3"
    assert cells["plugin est. (median)"] == "+5.8%"
    assert cells["time to verdict (median)"] == "4.0 s"
    assert cells["pyperf FAIL (est.)"] == "1/2 (+10.0%)"
    assert cells["pytest-benchmark FAIL (est.)"] == "0/1 (+1.0%)"
    assert cells["A/A compare REGRESSED"] == "1/2 (1 not compared)"
    assert "A/A compare (1 REGRESSED):" in report.report_text(records)


def test_each_interval_is_held_against_the_median_of_the_other_runs() -> None:
    steady = [plugin_record("FAIL", e, e - 0.005, e + 0.005, 3.0) for e in (0.050, 0.051, 0.049, 0.050)]
    moved = plugin_record("FAIL", 0.080, 0.075, 0.085, 3.0)  # the other runs' median, 5.0%, lies outside
    wide = plugin_record("INCONCLUSIVE", 0.080, 0.045, None, 3.0)  # unbounded above: holds 5.0%
    column = "... the other runs' median"
    [row] = [dict(zip(report.HEADER, r, strict=True)) for r in report.table_rows([*steady, moved])]
    assert row[column] == "4/5"
    [row] = [dict(zip(report.HEADER, r, strict=True)) for r in report.table_rows([*steady, wide])]
    assert row[column] == "5/5"
    [row] = [dict(zip(report.HEADER, r, strict=True)) for r in report.table_rows(steady[:2])]
    assert row[column] == "–"


def test_report_groups_quiet_and_loaded_runs_apart() -> None:
    records = [
        plugin_record("PASS", 0.01, 0.0, 0.02, 3.0) | {"load_generator": 0},
        plugin_record("FAIL", 0.09, 0.07, 0.11, 3.0) | {"load_generator": 2},
    ]
    rows = [dict(zip(report.HEADER, row, strict=True)) for row in report.table_rows(records)]
    assert [(row["load"], row["PASS / FAIL / INCONCL."], row["PASS and FAIL"]) for row in rows] == [
        ("quiet", "1 / 0 / 0", "never"),
        ("2 busy", "0 / 1 / 0", "never"),
    ]
    # Within each load the verdicts agree; across loads one test passed and failed, and the report says so.
    assert report.agreement(records) == "PASS and FAIL for one test and budget, over all loads: manual (of 2 verdicts)"
    assert (
        report.agreement(records[:1]) == "PASS and FAIL for one test and budget, over all loads: never (in 1 verdicts)"
    )


def test_a_loaded_run_without_a_reference_of_its_own_is_held_against_the_quiet_one() -> None:
    quiet = [
        {"type": "reference", "workload": "manual", "estimate": e, "load_generator": 0} for e in (0.04, 0.05, 0.06)
    ]
    frozen = [
        {"type": "reference_frozen", "workload": "manual", "estimate": e, "load_generator": 0}
        for e in (0.07, 0.08, 0.09)
    ]
    loaded = [
        plugin_record("FAIL", 0.08, 0.07, 0.09, 3.0) | {"load_generator": 2},
        plugin_record("INCONCLUSIVE", 0.06, 0.045, 0.085, 3.0) | {"load_generator": 2},
    ]
    rows = [dict(zip(report.HEADER, r, strict=True)) for r in report.table_rows([*quiet, *frozen, *loaded])]
    assert [r["load"] for r in rows] == ["quiet", "2 busy"]
    row = rows[1]
    assert row["reference (median, interval, processes)"] == "+5.0% [+4.0%, +6.0%] (75% interval), 3 (quiet)"
    assert row["frozen-heap reference"] == "+8.0% [+7.0%, +9.0%] (75% interval), 3"
    assert row["interval holds the reference"] == "1/2"
    assert row["... the frozen-heap reference"] == "2/2"


def a_plan(**changes: object) -> plan.Plan:
    """A plan of one quiet run on the manual workload, with ``changes``."""
    base = plan.Plan(
        workloads=("manual",),
        counts=plan.QUICK,
        block_ms=20,
        load=0,
        max_time=None,
        budget=None,
        instructions=False,
        seed=1,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_frozen_reference_jobs_are_planned_and_run_with_the_flag(tmp_path: Path) -> None:
    counts = plan.Counts(
        runs=1,
        reference_processes=2,
        reference_seconds=1.0,
        pyperf_rounds=0,
        benchmark_rounds=0,
        frozen_reference_processes=3,
    )
    jobs = plan.schedule(a_plan(workloads=("manual", "flask"), counts=counts))
    assert Counter(j.kind for j in jobs) == {"plugin": 1, "reference": 4, "reference_frozen": 6}
    assert cli.RUNNERS["reference_frozen"] is tools.run_reference


def test_read_records_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"type": "run"}\n{not json\n')
    with pytest.raises(SystemExit, match=r"results.jsonl:2: not a JSON record"):
        report.read_records([path])


def test_budget_and_time_arguments_name_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.arguments(["--budget", "2ms"])
    assert "argument --budget: '2ms': pyperf and pytest-benchmark take relative budgets only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.arguments(["--max-time", "0"])
    assert "argument --max-time: '0' is not above 0" in capsys.readouterr().err
    assert cli.arguments(["--budget", "5%"]).budget == "5%"


def test_a_calibration_file_is_given_to_the_plugin_runs_by_its_absolute_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cal.json").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    plan_ = cli.build_plan(cli.arguments(["--calibration", "cal.json", "--seed", "1"]))
    assert plan_.calibration == str(tmp_path / "cal.json")
    with pytest.raises(SystemExit):
        cli.arguments(["--calibration", "missing.json"])
    assert "argument --calibration: 'missing.json' is not a file" in capsys.readouterr().err


def test_run_command_reports_exit_codes_and_time_outs(tmp_path: Path) -> None:
    done = run_command("script", [sys.executable, "-c", "print('hi')"], tmp_path, os.environ, tmp_path / "a.log", 60)
    assert (done.returncode, done.error, done.tail()) == (0, None, "hi")
    failed = run_command(
        "script", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, os.environ, tmp_path / "b.log", 60
    )
    assert failed.error == "script exited with 3"
    allowed = run_command(
        "script", [sys.executable, "-c", "raise SystemExit(1)"], tmp_path, os.environ, tmp_path / "c.log", 60, (0, 1)
    )
    assert allowed.error is None
    hung = run_command(
        "script", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, os.environ, tmp_path / "d.log", 0.1
    )
    assert hung.error == "script timed out after 0.1 s"
    assert hung.returncode is not None  # killed and reaped, nothing left running


def test_load_generator_processes_end_with_the_block() -> None:
    with busy_processes(1) as pids:  # the load generator: the calibrate command's busy processes
        assert len(pids) == 1
        os.kill(pids[0], 0)  # running
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def test_child_env_drops_what_would_change_the_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = child_env(tmp_path, {"REAL_ARM": "instrumented"})
    assert "OTEL_TRACES_SAMPLER" not in env and "PYTEST_ADDOPTS" not in env
    assert env["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/elsewhere"])
    assert env["REAL_ARM"] == "instrumented"


def test_plugin_settings_on_the_command_line_only_when_the_plan_sets_them() -> None:
    base = a_plan()
    assert plugin.settings_args(base) == []
    spread = dataclasses.replace(base, max_time=60.0, budget="5%", processes=3, calibration="/runner/cal.json")
    assert plugin.settings_args(spread) == [
        "--otel-overhead-max-time=60",
        "--otel-overhead-budget=5%",
        "--otel-overhead-processes=3",
        "--otel-overhead-calibration=/runner/cal.json",
    ]


def test_runs_with_another_processes_setting_get_rows_of_their_own() -> None:
    references = [{"type": "reference", "workload": "manual", "estimate": e} for e in (0.04, 0.05, 0.06)]
    one = plugin_record("FAIL", 0.08, 0.07, 0.09, 3.0)
    three = plugin_record("INCONCLUSIVE", 0.05, 0.03, 0.07, 12.0) | {"plugin_processes": 3}
    rows = [dict(zip(report.HEADER, r, strict=True)) for r in report.table_rows([*references, one, three])]
    assert [(r["load"], r["interval holds the reference"]) for r in rows] == [
        ("quiet", "0/1"),
        ("quiet, processes=3", "1/1"),
    ]


# ------------------------------------------------------------------------------ near the budget


def test_offsets_are_parsed_in_order_and_named_in_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert budgets.parse_offsets("-1.5, -0.5,0.5pp,1.5,0.5") == (-1.5, -0.5, 0.5, 1.5)
    assert cli.arguments(["--budget-offsets=-1.5,1.5"]).budget_offsets == (-1.5, 1.5)
    with pytest.raises(SystemExit):
        cli.arguments(["--budget-offsets=-1.5,x"])
    assert "--budget-offsets: '-1.5,x': offsets are numbers of points" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.arguments(["--budget-offsets=0.5", "--budget", "5%"])
    assert "--budget and --budget-offsets" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.arguments(["--budget-offsets=0.5", "--offset-scale", "log"])
    assert "--offset-scale: 'log': one of ratio, reference, points" in capsys.readouterr().err
    assert cli.arguments(["--offset-scale", "Reference"]).offset_scale is budgets.OffsetScale.REFERENCE
    with pytest.raises(SystemExit):
        cli.arguments(["--reference-from", "earlier.jsonl"])
    assert "--reference-from places budgets: give --budget-offsets too" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scale", "reference", "offset", "expected"),
    [
        (budgets.OffsetScale.RATIO, 0.05, 0.5, 0.055),  # at 5%: the points as given
        (budgets.OffsetScale.RATIO, 0.05, -1.5, 0.035),
        (budgets.OffsetScale.RATIO, 5.3, 0.5, 6.3 * (1 + 0.005 / 1.05) - 1),  # sqlite3: 3 points
        (budgets.OffsetScale.REFERENCE, 0.25, 0.5, 0.255),  # up to 30%: points
        (budgets.OffsetScale.REFERENCE, 5.3, 0.5, 5.3 + 0.005 * 5.3 / 0.05),  # above: scaled by the reference
        (budgets.OffsetScale.POINTS, 5.3, -1.5, 5.285),
    ],
)
def test_budget_placement(scale: budgets.OffsetScale, reference: float, offset: float, expected: float) -> None:
    assert budgets.place(reference, offset, scale) == pytest.approx(expected)


def reference_records(kind: str, workload: str, estimates: tuple[float, ...], load: int = 0) -> list[Record]:
    return [
        {"type": kind, "workload": workload, "estimate": e, "seed": i, "process": i, "load_generator": load}
        for i, e in enumerate(estimates)
    ]


def test_budgets_are_placed_around_the_frozen_heap_reference_of_the_quiet_machine() -> None:
    records = [
        *reference_records("reference", "flask", (0.04, 0.05, 0.06)),
        *reference_records("reference_frozen", "flask", (0.06, 0.07, 0.08)),
        *reference_records("reference_frozen", "flask", (0.2, 0.3, 0.4), load=2),  # a busy machine's: not used
        *reference_records("reference", "manual", (0.01, 0.02)),  # no frozen one: the plain one
    ]
    placed, problems = budgets.placed_budgets(
        records, ("flask", "manual", "checkout"), (-1.5, 0.5), budgets.OffsetScale.POINTS
    )
    assert [(b.workload, b.offset, b.budget, b.reference_kind) for b in placed] == [
        ("flask", -1.5, "5.500%", "reference_frozen"),
        ("flask", 0.5, "7.500%", "reference_frozen"),
        ("manual", 0.5, "2.000%", "reference"),
    ]
    assert problems == [
        "manual: offset -1.5 puts the budget at 0.00%, left out",
        "checkout: no reference to place its budgets around",
    ]
    assert budgets.budgets_at(placed, 0.5) == {"flask": "7.500%", "manual": "2.000%"}
    assert placed[0].record()["type"] == "budget"


def test_references_copied_from_file_to_file_count_once() -> None:
    records = reference_records("reference_frozen", "flask", (0.06, 0.07, 0.08))
    copies = [r | {"imported_from": "earlier.jsonl"} for r in records]
    assert len(budgets.unique_references([*records, *copies, {"type": "plugin", "workload": "flask"}])) == 3
    found = budgets.engine_reference([*records, *copies], "flask")
    assert found is not None and found[1].processes == 3
    # The table at one budget too: a report over both files keeps the plugin's records and one of each process.
    plugin = {"type": "plugin", "workload": "flask"}
    kept = budgets.without_copied_references([*records, plugin, *copies])
    assert kept == [*records, plugin]


def near_plan(**changes: object) -> plan.Plan:
    return dataclasses.replace(a_plan(workloads=("manual", "flask"), budget_offsets=(-0.5, 0.5)), **changes)  # type: ignore[arg-type]


def test_a_near_budget_run_measures_its_references_first_and_each_offset_in_its_own_processes() -> None:
    counts = plan.Counts(
        runs=3,
        reference_processes=2,
        reference_seconds=1.0,
        pyperf_rounds=0,
        benchmark_rounds=0,
        frozen_reference_processes=1,
    )
    p = near_plan(counts=counts, referenced=("flask",))
    jobs = plan.schedule(p)
    first, then = plan.phases(p, jobs)
    assert jobs == [*first, *then]
    assert {(j.kind, j.workload) for j in first} == {("reference", "manual"), ("reference_frozen", "manual")}
    assert len(first) == 3  # flask's reference comes from an earlier file
    assert Counter(j.offset for j in then) == {-0.5: 3, 0.5: 3}
    assert {j.kind for j in then} == {"plugin"}
    assert sorted(j.index for j in then) == list(range(6))  # one saved run name each
    assert plan.phases(a_plan(), plan.schedule(a_plan()))[0] == []


def test_a_near_budget_job_gives_each_test_its_budget_and_leaves_out_those_without(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    placed = (
        budgets.PlacedBudget("manual", 0.5, "6.100%", 0.056, "reference_frozen", 8),
        budgets.PlacedBudget("manual", -0.5, "5.100%", 0.056, "reference_frozen", 8),
    )
    seen: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(label: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, **_: object) -> Outcome:
        seen.append((command, env))
        return Outcome(1, 1.0, log)

    monkeypatch.setattr(plugin, "run_command", fake_run)
    space = Workspace(tmp_path, None)
    records = plugin.run_plugin(plan.Job("plugin", 4, offset=0.5), near_plan(budgets=placed), space)
    [(command, env)] = seen
    assert json.loads(env["REAL_BUDGETS"]) == {"manual": "6.100%"}
    assert [c for c in command if c.startswith("test_real.py")] == ["test_real.py::test_manual"]  # flask: none placed
    assert [(r["type"], r.get("offset"), r.get("placed_budget")) for r in records] == [
        ("plugin", 0.5, "6.100%"),
        ("plugin_run", 0.5, None),
    ]
    assert not any(c.startswith("--otel-overhead-budget") for c in command)
    # Saved for the A/A comparisons, measured as an unsaved run is.
    assert "--otel-overhead-save=run-004" in command and "--otel-overhead-min-processes=1" in command
    [nothing] = plugin.run_plugin(plan.Job("plugin", 5, offset=1.5), near_plan(budgets=placed), space)
    assert (nothing["saved"], nothing["error"], len(seen)) == (None, plugin.NO_BUDGET, 1)  # no process started


def test_placing_budgets_writes_them_and_hands_them_to_the_plugin_jobs(tmp_path: Path) -> None:
    p = near_plan(offset_scale=budgets.OffsetScale.POINTS)
    with (tmp_path / "r.jsonl").open("w") as results, (tmp_path / "r.log").open("w") as log:
        output = cli.Output(results, log, p)
        for record in reference_records("reference_frozen", "manual", (0.05, 0.06, 0.07)):
            output.copy(record)
        placed = cli.with_budgets(p, output)
    assert budgets.budgets_at(placed.budgets, -0.5) == {"manual": "5.500%"}
    written = report.read_records([tmp_path / "r.jsonl"])
    assert [r["budget"] for r in written if r["type"] == "budget"] == ["5.500%", "6.500%"]
    assert "flask: no reference to place its budgets around" in (tmp_path / "r.log").read_text()


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ({"process_term": {"source": "built-in", "size": 0.006}}, {"source": "built-in", "size": 0.006}),
        ({"process_term": {"kind": "measured", "tau": 0.01}}, {"source": "measured", "size": 0.01}),
        ({"process_term": 0.004}, {"source": None, "size": 0.004}),
        (
            {"between_process_source": "calibrated", "between_process_spread": 0.003},
            {"source": "calibrated", "size": 0.003},
        ),
        ({"between_process_spread": None}, None),
        ({}, None),
    ],
)
def test_process_term_is_read_from_whichever_keys_the_json_has(gate: Record, expected: Record | None) -> None:
    assert plugin.process_term_of(gate) == expected


def near_record(
    verdict: str, budget: float, low: float, high: float, *, offset: float = 0.5, load: int = 0, **extra: object
) -> Record:
    return {
        "type": "plugin",
        "workload": "checkout",
        "offset": offset,
        "verdict": verdict,
        "budget": {"kind": "relative", "value": budget},
        "ci_low": low,
        "ci_high": high,
        "duration_s": 2.0,
        "load_generator": load,
        **extra,
    }


def near_cells(records: list[Record]) -> list[dict[str, str]]:
    return [dict(zip(near_report.HEADER, row, strict=True)) for row in near_report.near_rows(records)]


def test_near_report_counts_false_verdicts_against_the_frozen_heap_reference() -> None:
    references = [
        *reference_records("reference", "checkout", (0.040, 0.045, 0.050)),
        *reference_records("reference_frozen", "checkout", (0.050, 0.052, 0.054)),  # the truth: 5.2%
    ]
    records = [
        *references,
        near_record("FAIL", 0.057, 0.058, 0.062),  # FAIL while the truth (5.2%) lies below 5.7%: false
        near_record("PASS", 0.057, 0.049, 0.055),  # right, holds 5.2%
        near_record("INCONCLUSIVE", 0.057, 0.050, 0.060, processes=3),  # not decided: never false
        near_record("PASS", 0.047, 0.040, 0.046, offset=-0.5),  # PASS while the truth lies above: false
        near_record("FAIL", 0.047, 0.049, 0.056, offset=-0.5),  # right
    ]
    minus, plus = near_cells(records)
    assert (plus["offset"], plus["budget"], plus["runs"], plus["PASS / FAIL / INCONCL."]) == (
        "+0.5",
        "5.70%",
        "3",
        "1 / 1 / 1",
    )
    assert (plus["false verdicts"], plus["interval holds the reference"]) == ("1/2", "2/3")
    assert plus["PASS and FAIL"] == "YES"
    assert plus["processes (median, max)"] == "1, 3"
    assert plus["reference (frozen heap: median, interval, processes)"].startswith("+5.2% [+5.0%, +5.4%]")
    assert (minus["false verdicts"], minus["PASS and FAIL"]) == ("1/2", "YES")
    expected = "  quiet: false verdicts 2 of 4 decided (50.0%); intervals holding the reference 3 of 5"
    assert expected in near_report.totals(records)


def test_near_report_sees_a_busy_runner_flip_a_quiet_verdict() -> None:
    references = reference_records("reference_frozen", "checkout", (0.050, 0.052, 0.054))
    quiet = [near_record("PASS", 0.057, 0.05, 0.056) for _ in range(2)]
    loaded = [near_record("FAIL", 0.057, 0.058, 0.07, load=2), near_record("INCONCLUSIVE", 0.057, 0.05, 0.07, load=2)]
    rows = near_cells([*references, *quiet, *loaded])
    assert [(r["load"], r["PASS and FAIL"], r["... over all loads"]) for r in rows] == [
        ("quiet", "never", "YES"),
        ("2 busy", "never", "YES"),
    ]
    assert near_report.totals([*references, *quiet, *loaded])[0].endswith(
        "in 1 of 1 (workload, budget) pairs: checkout at 5.70%"
    )
    # The same verdicts under another budget are no contradiction.
    moved = [r | {"budget": {"kind": "relative", "value": 0.058}} for r in loaded]
    assert [r["... over all loads"] for r in near_cells([*references, *quiet, *moved])] == ["never", "never"]


def test_near_report_marks_budgets_inside_the_reference_and_reads_the_process_term() -> None:
    references = reference_records("reference_frozen", "checkout", (0.050, 0.052, 0.054))
    terms = [
        near_record("PASS", 0.053, 0.04, 0.052, process_term={"source": "built-in", "size": 0.006}),
        near_record("PASS", 0.053, 0.04, 0.052, process_term={"source": "measured", "size": 0.004}),
    ]
    [row] = near_cells([*references, *terms])
    assert row["budget"] == "5.30%*"  # inside [5.0%, 5.4%]
    assert row["process term"] == "built-in 1/2, measured 1/2, ±0.50 pts"
    [row] = near_cells([*references, near_record("PASS", 0.06, 0.04, 0.052)])
    assert (row["budget"], row["process term"]) == ("6.00%", "–")
    [row] = near_cells([near_record("PASS", 0.06, 0.04, 0.052)])
    assert row["false verdicts"] == "no reference"


def test_the_table_at_one_budget_leaves_near_budget_runs_to_their_own() -> None:
    records = [
        plugin_record("FAIL", 0.08, 0.07, 0.09, 3.0),
        near_record("PASS", 0.1, 0.07, 0.09) | {"workload": "manual"},
    ]
    [row] = report.table_rows(records)
    assert dict(zip(report.HEADER, row, strict=True))["plugin runs"] == "1"
    assert "never (in 1 verdicts)" in report.agreement(records)
    assert near_report.format_near([plugin_record("FAIL", 0.08, 0.07, 0.09, 3.0)]) == ""


def test_a_near_budget_file_alone_is_reported_by_its_cells(tmp_path: Path) -> None:
    path = tmp_path / "near.jsonl"
    references = reference_records("reference_frozen", "checkout", (0.050, 0.052, 0.054))
    compared = {"type": "compare", "workload": "checkout", "outcome": "UNDECIDED", "before": 0, "after": 1}
    lines = [*references, near_record("PASS", 0.057, 0.05, 0.056), compared]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    text = cli.report_of([path], markdown=True)
    assert "| workload | offset | load | budget |" in text
    assert "plugin runs" not in text  # no table at one budget: nothing ran at one
    assert "A/A comparisons of the saved runs, REGRESSED: 0/1 (1 undecided)" in text
    both = cli.report_of([path, path], markdown=False)  # a file given twice: its references count once
    assert "+5.2% [+5.0%, +5.4%] (75% interval), 3" in both


def _saved_run(
    directory: Path, name: str, tests: dict[str, tuple[float, float, float, float]], created: str | None = None
) -> None:
    """A saved run whose tests have (baseline per call, overhead, ci_low, ci_high) for CPU; with ``created``, the
    time it ended, each test having taken 30 s."""
    directory.mkdir(exist_ok=True)
    keys = ("baseline", "overhead", "ci_low", "ci_high")
    body = [
        {"nodeid": f"test_real.py::test_{w}", "metrics": {"cpu": dict(zip(keys, v, strict=True))}, "duration_s": 30.0}
        for w, v in tests.items()
    ]
    run = {"tests": body} | ({"created": created} if created else {})
    (directory / f"{name}.json").write_text(json.dumps(run), encoding="utf-8")


def test_speeds_split_runs_by_their_baseline_and_fit_how_the_overhead_moves(tmp_path: Path) -> None:
    from benchmarks.real import speeds

    saved = tmp_path / "campaign-saved"
    # Twice as slow, and the overhead 2 points higher: a slope of ln(1.085/1.065) / ln 2 per unit of log speed.
    _saved_run(saved, "a", {"manual": (1e-3, 0.065, 0.06, 0.07)})
    _saved_run(saved, "b", {"manual": (2e-3, 0.085, 0.08, 0.09)})
    _saved_run(saved, "c", {"manual": (1.1e-3, 0.065, 0.06, 0.07)})
    points = speeds.read_points(saved)
    assert [p.workload for p in points] == ["manual"] * 3
    fitted = speeds.slope(points)
    assert 0 < fitted < math.log(1.085 / 1.065) / math.log(2) * 1.2
    refs = {"manual": (math.log1p(0.066), 1e-3, 1.1e-3)}
    table = "\n".join(speeds.coverage_table(points, refs))
    assert "| fast | 2 | +6.5% | 2/2 |" in table and "| slow | 1 | +8.5% | 0/1 |" in table
    own = "\n".join(speeds.coverage_table(points, {}))  # no reference measured: the runs' median, +6.5%
    assert "+6.5% (the runs' median) | fast | 2 | +6.5% | 2/2 |" in own and "| slow | 1 | +8.5% | 0/1 |" in own
    judged = [dataclasses.replace(p, budget=0.07, verdict="FAIL" if p.estimate > 0.07 else "PASS") for p in points]
    verdicts = speeds.verdicts_table(judged)
    assert "| manual | 7.00% | fast | 2 | 2 | 0 | 0 | +6.5% |" in verdicts
    assert "| manual | 7.00% | slow | 1 | 0 | 1 | 0 | +8.5% |" in verdicts


def test_speeds_put_each_test_beside_the_probe_samples_taken_while_it_ran(tmp_path: Path) -> None:
    from benchmarks.real import speed_probe, speeds

    saved = tmp_path / "campaign-saved"
    # Each run measured manual, then checkout, 30 s each; the probe's loop took 70 ms or 105 ms.
    _saved_run(saved, "a", {"manual": (0.6e-3, 0.065, 0.06, 0.07), "checkout": (1.7e-3, 0.04, 0.03, 0.05)},
               created="2026-12-06T19:01:00+00:00")  # fmt: skip
    _saved_run(saved, "b", {"manual": (1.2e-3, 0.085, 0.08, 0.09), "checkout": (3.4e-3, 0.05, 0.04, 0.06)},
               created="2026-12-06T19:03:00+00:00")  # fmt: skip
    probe = tmp_path / "probe.log"
    probe.write_text(
        "19:00:10 cpu_ms=70.1 wall_ms=70.2 steal=0.00% load=1.00\n"  # a's manual (19:00:00-19:00:30)
        "19:00:40 cpu_ms=71.0 wall_ms=71.0 steal=0.00% load=1.00\n"  # a's checkout
        "19:02:05 cpu_ms=104.0 wall_ms=104.2 steal=0.10% load=1.00\n"  # b's manual
        "19:02:20 cpu_ms=106.0 wall_ms=106.2 steal=0.10% load=1.00\n"  # b's manual
        "19:02:50 cpu_ms=105.0 wall_ms=105.0 steal=0.00% load=1.00\n"  # b's checkout
        "not a sample\n",
        encoding="utf-8",
    )
    samples = speeds.read_probe(probe)
    assert samples[0] == (19 * 3600 + 10, 70.1) and len(samples) == 5
    table = speeds.probe_table(speeds.read_points(saved), samples)
    assert "| 19:00:00 | manual | 600 µs | +6.5% |  | 70 (70) |" in table
    assert "| 19:02:00 | manual | 1200 µs | +8.5% |  | 105 (104, 106) |" in table
    assert "| 19:02:30 | checkout | 3400 µs | +5.0% |  | 105 (105) |" in table
    assert "| manual | 2 | — | — |" in table  # two tests: no correlation claimed
    _saved_run(saved, "c", {"manual": (0.7e-3, 0.066, 0.06, 0.07)}, created="2026-12-06T19:05:00+00:00")
    samples.append((19 * 3600 + 4 * 60 + 40, 72.0))  # c's manual (19:04:30-19:05:00)
    table = speeds.probe_table(speeds.read_points(saved), samples)
    (manual,) = [line for line in table if line.startswith("| manual | 3 |")]
    assert [float(r) for r in manual.split("|")[3:5]] == [pytest.approx(1.0, abs=0.05)] * 2
    assert speed_probe.main(["--samples", "1", "--every", "0"]) == 0
