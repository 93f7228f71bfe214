"""Tests of the harness's own logic: statistics, parsers of the tools' output, the plan and the report.

Run by path (``python -m pytest benchmarks/real/test_harness.py``; ``tox -e real`` runs them first).
They use synthetic records and captured output formats only: nothing is timed.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.real import cli, plan, plugin, report, tools
from benchmarks.real.processes import WORKLOAD_PROJECT, Record, child_env, load_generator, load_summary, run_command


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
        "--workloads: unknown workload 'django'; known: flask, fastapi, requests, sqlite3, manual"
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
    assert kinds == {"plugin": 20, "benchmark": 10, "reference": 150, "pyperf": 15, "instructions": 1}
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
    with load_generator(1) as pids:
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
    spread = dataclasses.replace(base, max_time=60.0, budget="5%", processes=3)
    assert plugin.settings_args(spread) == [
        "--otel-overhead-max-time=60",
        "--otel-overhead-budget=5%",
        "--otel-overhead-processes=3",
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
