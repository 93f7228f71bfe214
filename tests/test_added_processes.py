"""processes auto, end to end: a test far from its budget decides in its own process; one that the
between-process term holds open, or whose comparison with a saved run it leaves undecided, gets fresh
processes, each running timed pairs only, pooled with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.settings.flags import SAVED_PROCESSES
from tests.measured_project import Run, run_measured

PROJECT = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("added")


def busy(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
"""

MEASURED = (
    PROJECT
    + """

@pytest.mark.otel_overhead(budget="5%")
def test_far_above():
    for _ in range(20):
        with tracer.start_as_current_span("tiny"):
            busy(20)


# A term calibrated wide (0.3 in log ratio, well known) holds any budget within about half of the
# estimate open whatever the pairs say, and pooling eight processes still cannot close it.
@pytest.mark.otel_overhead(budget="5%", no_telemetry="ignore", calibration="wide.json")
def test_held_open():
    busy(3000)


@pytest.mark.otel_overhead(budget="5%", processes=1, no_telemetry="ignore", calibration="wide.json")
def test_held_open_in_one_process():
    busy(3000)
"""
)


WIDE = '{"format": "pytest-otel-overhead calibration 1", "tau": 0.3, "slope": 0, "df": 100, "load": 0}'
GROWS = '{"format": "pytest-otel-overhead calibration 1", "tau": 0, "slope": 0.4, "df": 100, "load": 0}'


@pytest.fixture(scope="module")
def added(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path: Path = tmp_path_factory.mktemp("added")
    return run_measured(path, {"test_measured.py": MEASURED, "wide.json": WIDE}, max_time="12")


def _cpu(result: dict[str, Any]) -> dict[str, Any]:
    metric: dict[str, Any] = result["metrics"]["cpu"]
    return metric


def test_far_from_the_budget_one_process_decides_with_the_prior_counted(added: Run) -> None:
    result = added.result("test_far_above")
    cpu = _cpu(result)
    assert cpu["verdict"] == "FAIL" and result["stop_reason"] == "decided"
    assert result["processes"] == 1
    assert cpu["between_process_source"] == "built-in"
    assert cpu["between_process_spread"] > 0
    # The printed interval is the pairs' own, widened on each side.
    assert cpu["ci_low"] < cpu["process_ci_low"] <= cpu["overhead"] <= cpu["process_ci_high"] < cpu["ci_high"]


def test_a_budget_the_term_holds_open_gets_fresh_processes_pooled_with_the_first(added: Run) -> None:
    result = added.result("test_held_open")
    cpu = _cpu(result)
    assert result["processes"] >= 2, added.stdout
    assert cpu["between_process_source"] == "measured"
    assert cpu["verdict"] == "INCONCLUSIVE"
    assert cpu["n"] == result["processes"]
    assert result["stop_reason"] in ("max_time", "all processes")
    # The first process's heap and pipeline figures stand for all.
    assert "heap" in result["metrics"] and result["pipeline"] is not None
    assert "the between-process term keeps a budget open" in added.stdout


def test_a_fixed_single_process_stays_alone_and_says_what_holds_it_open(added: Run) -> None:
    result = added.result("test_held_open_in_one_process")
    cpu = _cpu(result)
    assert result["processes"] == 1
    assert cpu["verdict"] == "INCONCLUSIVE"
    assert cpu["between_process_source"] == "calibrated"
    assert result["stop_reason"] != "process term"


COMPARED = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("compared")


# The wide calibrated term holds any comparison of two runs open, however the machine's load moves
# them; the budget lies far enough above for one process to decide it all the same.
@pytest.mark.otel_overhead(budget="1000%", heap="100MiB", calibration="wide.json")
def test_far_from_its_budget():
    with tracer.start_as_current_span("work"):
        total = 0
        for i in range(3000):
            total += i * i
"""


def _session(path: Path, *args: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONTRACEMALLOC"))}
    environ.pop("PYTEST_ADDOPTS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "--otel-overhead"]
    # Room for the heap rounds on a busy machine: tracemalloc slows them several times.
    command += ["--otel-overhead-max-time=20", "--otel-overhead-json=out.json", *args]
    done = subprocess.run(command, cwd=path, env=environ, capture_output=True, text=True, timeout=600, check=False)
    document: dict[str, Any] = json.loads((path / "out.json").read_text(encoding="utf-8"))
    (test,) = document["tests"]
    test["stdout"] = done.stdout
    return test


def test_a_comparison_gate_left_undecided_gets_processes_as_a_budget_does(tmp_path: Path) -> None:
    (tmp_path / "test_compared.py").write_text(COMPARED, encoding="utf-8")
    (tmp_path / "wide.json").write_text(WIDE, encoding="utf-8")
    # A fixed single process is kept when saving too.
    saved = _session(tmp_path, "--otel-overhead-save=main", "--otel-overhead-processes=1")
    assert saved["processes"] == 1 and saved["verdict"] == "PASS", saved["stdout"]
    # Unchanged code against a growth of 0.1 points, the runs' term 0.3: one process each cannot decide it.
    compared = _session(tmp_path, "--otel-overhead-compare=main", "--otel-overhead-compare-fail=cpu:+0.1pp")
    assert compared["verdict"] == "PASS"
    assert compared["processes"] >= 2, compared["stdout"]
    assert "1 compared: 0 regressed, 0 within cpu:+0.1pp, 1 undecided" in compared["stdout"]
    assert compared["metrics"]["cpu"]["between_process_source"] == "measured"
    # Only the first process measures the heap: its verdict stands, once, and holds no process open.
    assert compared["metrics"]["heap"]["verdict"] == "PASS"
    heap_rows = [line for line in compared["stdout"].splitlines() if line.lstrip().startswith("peak heap ")]
    assert len(heap_rows) == 1, compared["stdout"]


def test_a_saved_run_measures_each_test_over_at_least_three_processes(tmp_path: Path) -> None:
    (tmp_path / "test_compared.py").write_text(COMPARED, encoding="utf-8")
    (tmp_path / "wide.json").write_text(WIDE, encoding="utf-8")
    # Far from its budget: one process would decide it (a run that is not saved stops there, as
    # test_far_from_the_budget_one_process_decides_with_the_prior_counted shows).
    saved = _session(tmp_path, "-v", "--otel-overhead-save=main", "--otel-overhead-max-time=40")
    assert saved["processes"] == SAVED_PROCESSES, saved["stdout"]
    assert saved["verdict"] == "PASS" and saved["stop_reason"] == "decided"
    assert saved["metrics"]["cpu"]["between_process_source"] == "measured"
    assert f"a saved run measures each test over at least {SAVED_PROCESSES} processes" in saved["stdout"]
    # The saved run is the one measured over those processes.
    (stored,) = (tmp_path / ".otel-overhead").glob("*_main_*.json")
    assert json.loads(stored.read_text(encoding="utf-8"))["tests"][0]["processes"] == SAVED_PROCESSES


def test_a_run_asked_for_a_minimum_of_processes_measures_that_many_saved_or_not(tmp_path: Path) -> None:
    (tmp_path / "test_compared.py").write_text(COMPARED, encoding="utf-8")
    (tmp_path / "wide.json").write_text(WIDE, encoding="utf-8")
    # A shard of a baseline run that another step saves asks for it by itself.
    shard = _session(tmp_path, "-v", "--otel-overhead-min-processes=2", "--otel-overhead-max-time=40")
    assert shard["processes"] == 2 and shard["stop_reason"] == "decided", shard["stdout"]
    assert "this run measures each test over at least 2 processes" in shard["stdout"]
    # And a saved run may ask for one process only.
    single = _session(tmp_path, "--otel-overhead-save=one", "--otel-overhead-min-processes=1")
    assert single["processes"] == 1, single["stdout"]


BUSY = (
    PROJECT
    + """

# A calibrated term that grows with the overhead (0.4 x the log ratio, about 0.8 x it at the prior's quantile):
# decided FAIL in one process for any overhead above about +30% (this one is well over +100%), but never with
# its interval twice as wide, so an added process must confirm it.
@pytest.mark.otel_overhead(budget="5%", no_telemetry="ignore", calibration="grows.json")
def test_above_within_twice_its_interval():
    for _ in range(10):
        with tracer.start_as_current_span("tiny"):
            busy(150)


# Several hundred per cent, tens of its interval's half-widths above: no burst of load makes that.
@pytest.mark.otel_overhead(budget="5%")
def test_far_beyond():
    for _ in range(200):
        with tracer.start_as_current_span("tiny"):
            pass
"""
)


def test_on_a_busy_machine_a_verdict_near_its_budget_is_confirmed_by_more_processes_and_a_far_one_stands(
    tmp_path: Path, machine_kept_busy: int
) -> None:
    run = run_measured(tmp_path, {"test_measured.py": BUSY, "grows.json": GROWS}, max_time="20")
    near = run.result("test_above_within_twice_its_interval")
    assert near["processes"] >= 2, run.stdout
    assert "the machine is busy: more processes confirm one process's verdict" in run.stdout
    assert any(note.startswith("the machine was busy while measuring") for note in near["notes"])
    # The processes agree: confirmed, not left open.
    assert _cpu(near)["verdict"] == "FAIL" and near["stop_reason"] == "decided", run.stdout
    far = run.result("test_far_beyond")
    assert any(note.startswith("the machine was busy while measuring") for note in far["notes"])
    assert _cpu(far)["verdict"] == "FAIL", run.stdout
    assert far["processes"] == 1 and far["stop_reason"] == "decided", run.stdout
