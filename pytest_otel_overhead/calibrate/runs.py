"""The pytest runs a calibration makes: the user's marked tests measured over processes, quiet or beside busy processes.

A run is ``python -m pytest PYTEST_ARGS --otel-overhead --otel-overhead-processes=N`` with a JSON
report in a folder of the calibration's own, in the folder the command was started from. Its
verdicts gate nothing here (an undecided budget passes; a failed one only makes pytest's exit
status 1): the calibration wants the processes' figures. The run dies with the command, however
the command ends (``engine.children``), and so do the busy processes: each leaves when its stdin
closes, and they are stopped after the run, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_otel_overhead.engine.children import CHILD_START, Child, child_environment, output_tail
from pytest_otel_overhead.engine.replica_child import REPLICA_ENV
from pytest_otel_overhead.engine.replicas import MAX_PROCESSES
from pytest_otel_overhead.history.reader import load_run
from pytest_otel_overhead.history.run import HistoryError, RunRecord

__all__ = ["BUSY_SOURCE", "CalibrationError", "MeasuredRun", "busy_processes", "measure", "pytest_arguments"]

# A busy process walks a 16 MB list of pointers (and the ints behind them) over and over: CPU time and
# cache pressure, since spans touch more memory than the work they wrap.
BUSY_SOURCE = """
import os, sys, threading
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
data = list(range(2_000_000))
while True:
    sum(data)
    data.reverse()
"""
NO_TESTS_COLLECTED = 5
"""pytest's exit status when it selected no test."""
TESTS_FAILED = 1
"""pytest's exit status when a test failed: here, maybe only a budget."""


class CalibrationError(Exception):
    """A calibration that cannot go on; its message is one line."""


@dataclass(frozen=True)
class MeasuredRun:
    """One pytest run's measurements, how long it took and how it ended."""

    run: RunRecord
    seconds: float
    exit_status: int
    output_tail: str


def pytest_arguments(pytest_args: Sequence[str], processes: int, report: Path) -> list[str]:
    """pytest's arguments for one run: the user's selection, measured over ``processes`` processes, into ``report``."""
    return [
        *pytest_args,
        "--otel-overhead",
        f"--otel-overhead-processes={processes}",
        # Every process asked for: a calibration wants the spread, not only the verdict two may give.
        f"--otel-overhead-min-processes={min(processes, MAX_PROCESSES)}",
        f"--otel-overhead-json={report}",
        "--otel-overhead-inconclusive=pass",
        "-p",
        "no:cacheprovider",
    ]


def measure(pytest_args: Sequence[str], processes: int, work: Path, name: str, cwd: Path) -> MeasuredRun:
    """Run pytest on the user's tests in ``cwd``, its report and output in ``work`` under ``name``."""
    report, log = work / f"{name}.json", work / f"{name}.log"
    environ = {key: value for key, value in child_environment().items() if key != REPLICA_ENV}
    began = time.perf_counter()
    child = Child.start(
        [sys.executable, "-c", CHILD_START, *pytest_arguments(pytest_args, processes, report)],
        cwd=cwd,
        env=environ,
        log=log,
    )
    try:
        status = child.process.wait()
    finally:
        child.stop()
    seconds = time.perf_counter() - began
    tail = output_tail(child.output())
    if status == NO_TESTS_COLLECTED:
        raise CalibrationError(f"pytest selected no test ({tail})")
    if status not in (0, TESTS_FAILED) or not report.is_file():
        raise CalibrationError(f"pytest failed (exit status {status}); its output ends: {tail}")
    try:
        run = load_run(report)
    except HistoryError as error:
        raise CalibrationError(f"pytest's report cannot be read: {error}") from None
    return MeasuredRun(run, seconds, status, tail)


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[list[int]]:
    """``count`` busy processes for the duration of the block, stopped after it however it ends."""
    busy: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            busy.append(
                subprocess.Popen(
                    [sys.executable, "-c", BUSY_SOURCE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,  # Ctrl-C reaches them too: no traceback of theirs
                )
            )
        yield [process.pid for process in busy]
    finally:
        for process in busy:
            if process.stdin is not None:
                process.stdin.close()  # its own thread sees the end of file and leaves at once
        for process in busy:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
