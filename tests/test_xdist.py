"""pytest-xdist: every result reaches the controller, and time measurements never share the host."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import build_metric, build_result

from pytest_otel_overhead.engine.machine import BUSY_NOTE_START
from pytest_otel_overhead.plugins.xdist import HostLock, result_from_wire, result_to_wire, worker_slot
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.stats.verdict import Verdict

pytest.importorskip("xdist")

# Measured tests (time mode, short) and plain tests that mark when they run, so the test can check
# that no plain test ran while a measurement did. The workloads make no spans (overhead about 0) and
# the budget is huge, so no verdict can fail the run however loaded the machine is.
TESTS = """
import json, os, time

import pytest

LOG = os.environ["OVERLAP_LOG"]


def note(kind, start, end):
    with open(LOG, "a") as stream:
        stream.write(json.dumps([kind, os.getpid(), start, end]) + "\\n")


def busy():
    return sum(i * i for i in range(2000))


@pytest.mark.otel_overhead(budget="1000%", max_time="1.5s", no_telemetry="warn")
def test_measured_body():
    busy()


@pytest.mark.otel_overhead(budget="1000%", max_time="1.5s", no_telemetry="warn")
def test_measured_twice(otel_overhead):
    otel_overhead(busy)
    otel_overhead(busy)


@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    start = time.time()
    time.sleep(0.15)
    note("plain", start, time.time())
"""

# Wraps the engine in every process to log when each time measurement runs.
CONFTEST = """
import json, os, time

import pytest_otel_overhead.engine.strategy as strategy

_measure = strategy.measure


def logged(*args, **kwargs):
    start = time.time()
    try:
        return _measure(*args, **kwargs)
    finally:
        with open(os.environ["OVERLAP_LOG"], "a") as stream:
            stream.write(json.dumps(["measure", os.getpid(), start, time.time()]) + "\\n")


strategy.measure = logged
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    lines: list[str]


def _run(root: Path, name: str, *args: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env["OVERLAP_LOG"] = str(root / f"{name}.log")
    # A temporary directory of the run's own, where the workers' lock files must not outlive it.
    scratch = root / f"tmp-{name}"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)
    command = [sys.executable, "-m", "pytest", "--otel-overhead", f"--otel-overhead-json={name}.json"]
    command += [f"--junitxml={name}.xml", "-p", "no:randomly", "-p", "no:cacheprovider", *args]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    return Run(done.returncode, (done.stdout + done.stderr).splitlines())


def _tests(path: Path) -> dict[str, dict[str, object]]:
    return {test["nodeid"]: test for test in json.loads(path.read_text())["tests"]}


def _properties(path: Path) -> dict[str, set[str]]:
    """Property names per test case; a note that the machine was busy is left out, since the load during one
    run says nothing about xdist (each run gets one or not as the machine's other jobs come and go)."""
    found: dict[str, set[str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        names = {
            p.get("name", "")
            for p in case.iter("property")
            if not (p.get("name", "").endswith(".note") and p.get("value", "").startswith(BUSY_NOTE_START))
        }
        found[f"{case.get('classname')}::{case.get('name')}"] = names
    return found


def _shape(test: dict[str, object]) -> tuple[object, ...]:
    """What a run must reproduce under xdist: the figures themselves differ from run to run."""
    metrics = test["metrics"]
    assert isinstance(metrics, dict)
    return (test["mode"], tuple(sorted(metrics)), tuple(sorted(test)), test["settings"])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One pair of runs serves every test in this module: each run measures for several seconds.
    path = tmp_path_factory.mktemp("xdist")
    (path / "test_work.py").write_text(textwrap.dedent(TESTS))
    (path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    return path


@pytest.fixture(scope="module")
def runs(root: Path) -> dict[str, Run]:
    return {"serial": _run(root, "serial"), "xdist": _run(root, "xdist", "-n", "2")}


def test_every_result_reaches_the_controller(runs: dict[str, Run], root: Path) -> None:
    for result in runs.values():
        assert result.returncode == 0, "\n".join(result.lines)
        assert any(re.search(r"\b8 passed\b", line) for line in result.lines)
    serial, xdist = _tests(root / "serial.json"), _tests(root / "xdist.json")
    assert list(xdist) == list(serial)  # the same results, in collection order
    assert list(xdist) == [
        "test_work.py::test_measured_body",
        "test_work.py::test_measured_twice",
        "test_work.py::test_measured_twice#call2",
    ]
    for nodeid, test in serial.items():
        assert _shape(xdist[nodeid]) == _shape(test)


def test_the_summary_and_junit_are_complete_under_xdist(runs: dict[str, Run], root: Path) -> None:
    for result in runs.values():
        pytest.LineMatcher(result.lines).fnmatch_lines(
            [
                "*- otel-overhead -*",
                "test_work.py::test_measured_body  *",
                "test_work.py::test_measured_twice  *",
                "test_work.py::test_measured_twice#call2  *",
                "3 measured: *",
            ]
        )
    assert _properties(root / "xdist.xml") == _properties(root / "serial.xml")
    measured = _properties(root / "xdist.xml")["test_work::test_measured_twice"]
    assert {"otel_overhead.verdict", "otel_overhead.call2.verdict"} <= measured


def test_time_measurements_run_alone_on_the_host(runs: dict[str, Run], root: Path) -> None:
    entries = [json.loads(line) for line in (root / "xdist.log").read_text().splitlines()]
    assert len({pid for _, pid, _, _ in entries}) == 2  # both workers ran something
    measures = [(start, end) for kind, _, start, end in entries if kind == "measure"]
    plain = [(start, end) for kind, _, start, end in entries if kind == "plain"]
    assert len(measures) == 3 and len(plain) == 6
    for start, end in measures:
        for other_start, other_end in measures + plain:
            if (other_start, other_end) != (start, end):
                assert other_end <= start or other_start >= end, "something ran during a time measurement"


def test_lock_files_are_removed(runs: dict[str, Run], root: Path) -> None:
    assert not list((root / "tmp-xdist").glob("pytest-otel-overhead-*"))


def test_a_result_crosses_processes_without_loss() -> None:
    metrics = (
        build_metric("cpu", overhead=0.01, ci_low=-math.inf, ci_high=math.inf, verdict=Verdict.INCONCLUSIVE),
        build_metric("wall", overhead=math.nan, baseline=math.nan),
    )
    result = build_result(metrics=metrics)
    rebuilt = result_from_wire(result_to_wire(result))
    assert isinstance(rebuilt, TestResult)
    assert json.dumps(rebuilt.as_dict(), sort_keys=True) == json.dumps(result.as_dict(), sort_keys=True)
    assert repr(rebuilt) == repr(result)
    assert rebuilt.metrics[0].verdict is Verdict.INCONCLUSIVE
    assert rebuilt.settings == result.settings


def _gate_held(lock: HostLock) -> bool:
    """Whether some holder has the gate (a measurement waiting or running), without waiting."""
    from filelock import FileLock, Timeout

    probe = FileLock(lock.gate_path, thread_local=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


def test_a_measurement_waits_for_running_tests_and_holds_off_new_ones(tmp_path: Path) -> None:
    first, second = HostLock("unit", 0, 2, tmp_path), HostLock("unit", 1, 2, tmp_path)
    events: list[str] = []

    def measuring() -> None:
        with second.test(), second.exclusive():
            events.append("measure start")
            time.sleep(0.2)
            events.append("measure end")

    with first.test():
        worker = threading.Thread(target=measuring)
        worker.start()
        # Wait (on a busy machine, as long as it takes) until the measurement has reached the gate;
        # a fixed sleep would let a new test slip in ahead of a measurement whose thread ran late.
        # The gate is also taken for an instant as a test starts: only once the measuring thread's
        # test has started does a held gate mean the measurement.
        deadline = time.monotonic() + 60
        while not (second.holding_test and _gate_held(first)):
            assert time.monotonic() < deadline, "the measurement never took the gate"
            time.sleep(0.01)
        time.sleep(0.2)  # room for a measurement that wrongly started alongside this test to show
        events.append("running test ends")
    time.sleep(0.05)
    with first.test():  # a new test waits until the measurement is done
        events.append("next test starts")
    worker.join(60)
    assert not worker.is_alive()
    assert events == ["running test ends", "measure start", "measure end", "next test starts"]
    first.close()
    second.close()


def test_two_measuring_workers_do_not_deadlock(tmp_path: Path) -> None:
    locks = [HostLock("pair", slot, 2, tmp_path) for slot in range(2)]
    spans: list[tuple[float, float]] = []

    def worker(lock: HostLock) -> None:
        with lock.test(), lock.exclusive():
            start = time.monotonic()
            time.sleep(0.1)
            spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=worker, args=(lock,)) for lock in locks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)  # a deadlock never ends; a loaded machine only takes longer
    assert len(spans) == 2
    (_, first_end), (second_start, _) = sorted(spans)
    assert first_end <= second_start
    for lock in locks:
        lock.close()


def test_a_measurement_waits_for_the_tests_of_every_other_worker(tmp_path: Path) -> None:
    locks = [HostLock("three", slot, 3, tmp_path) for slot in range(3)]
    events: list[str] = []
    release = [threading.Event(), threading.Event()]
    started = [threading.Event(), threading.Event()]

    def running_test(index: int) -> None:
        with locks[index].test():
            started[index].set()
            release[index].wait(60)
            events.append(f"test {index} ends")

    def measuring() -> None:
        with locks[2].exclusive():
            events.append("measure")

    tests = [threading.Thread(target=running_test, args=(index,)) for index in range(2)]
    for thread in tests:
        thread.start()
    for event in started:
        assert event.wait(60)
    measurement = threading.Thread(target=measuring)
    measurement.start()
    for index in (1, 0):  # the measurement must wait for both, whichever ends last
        measurement.join(0.2)
        assert measurement.is_alive() and "measure" not in events
        release[index].set()
        tests[index].join(60)
    measurement.join(60)
    assert events == ["test 1 ends", "test 0 ends", "measure"]
    for lock in locks:
        lock.close()


@pytest.mark.parametrize(
    ("workerinput", "expected"),
    [
        ({"workerid": "gw0", "workercount": 2}, (0, 2)),
        ({"workerid": "gw1", "workercount": 2}, (1, 2)),
        ({"workerid": "gw5", "workercount": 4}, (1, 4)),  # a replacement for a crashed worker
        ({"workerid": "gw0"}, (0, 1)),
        ({}, (0, 1)),
    ],
)
def test_each_worker_has_a_slot_of_its_own(workerinput: dict[str, object], expected: tuple[int, int]) -> None:
    assert worker_slot(workerinput) == expected
