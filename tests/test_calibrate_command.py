"""``python -m pytest_otel_overhead calibrate`` end to end, on a small project: the file it writes, what it prints,
its one-line errors, and a later pytest session of that project counting the calibrated term."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pytest_otel_overhead.settings.calibration import CALIBRATION_FILE, Calibration
from pytest_otel_overhead.stats.process_term import TermSource

# Work done only while a span records: the instrumented arm costs about twice the baseline, far from any
# question of whether it is over its budget.
PROJECT = {
    "pytest.ini": "[pytest]\n",
    "test_costly.py": """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("calibrated")


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.otel_overhead(budget="5%")
def test_costly():
    with tracer.start_as_current_span("step") as span:
        spin(4000)
        if span.is_recording():
            spin(4000)


# A span around real work, about +5%: within the range where a busy machine's move is the load
# term's floor (calibrate.terms.FLOOR_RANGE), which `--load` measures.
@pytest.mark.otel_overhead(budget="50%")
def test_light():
    with tracer.start_as_current_span("step"):
        spin(8000)


def test_unmarked():
    spin(10)
""",
}
MAX_TIME = ("-o", "otel_overhead_max_time=20")
"""Two processes, each with time to start (5 s and more on a busy machine) and to decide so large an overhead."""


def project(path: Path) -> Path:
    for name, text in PROJECT.items():
        (path / name).write_text(text, encoding="utf-8")
    return path


def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONTRACEMALLOC"))}
    environ.pop("PYTEST_ADDOPTS", None)
    return subprocess.run(
        [sys.executable, *args], cwd=path, env=environ, capture_output=True, text=True, timeout=300, check=False
    )


def test_calibrate_writes_the_file_the_project_s_sessions_then_use(tmp_path: Path) -> None:
    path = project(tmp_path)
    done = run(path, "-m", "pytest_otel_overhead", "calibrate", "--processes", "2", "--load", "0", "--",
               "test_costly.py::test_costly", *MAX_TIME)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    calibration = Calibration.read(path / CALIBRATION_FILE, "the test")
    assert calibration.term.source is TermSource.CALIBRATED
    assert calibration.term.df == 4  # the built-in prior's: a calibration widens its spread, not its certainty
    measured = calibration.measured
    assert (measured["tests"], measured["processes"], measured["load_measured"]) == (1, 2, False)
    (figure,) = measured["figures"]
    assert figure["test"] == "test_costly.py::test_costly" and figure["metric"] == "cpu"
    assert 0.3 < figure["overhead"] < 5 and figure["tau"] >= 0
    assert "test_costly.py::test_costly  cpu     2" in done.stdout  # a table's row, whole
    said = " ".join(done.stdout.split())  # its sentences wrapped to the width, a long path on a line of its own
    assert "measured 1 test over 2 processes in all (2 asked a test), quiet only, in " in said
    assert f"wrote {path / CALIBRATION_FILE}: sessions whose root folder is {path}" in said

    options = ["--otel-overhead-processes=1", "--otel-overhead-max-time=3", "--otel-overhead-json=o.json"]
    session = run(path, "-m", "pytest", "-p", "no:cacheprovider", "test_costly.py::test_costly", "--otel-overhead",
                  *options)  # fmt: skip
    assert session.returncode == 1, session.stdout  # the test is over its budget: it ran, and measured
    (test,) = json.loads((path / "o.json").read_text(encoding="utf-8"))["tests"]
    term = test["settings"]["process_term"]
    assert term["source"] == "calibrated"
    assert (term["tau"], term["slope"], term["df"]) == (calibration.term.tau, calibration.term.slope, 4)


def test_calibrate_beside_a_busy_process_measures_the_load_term(tmp_path: Path) -> None:
    path = project(tmp_path)
    done = run(path, "-m", "pytest_otel_overhead", "calibrate", "--processes", "2", "--load", "1", "--out",
               "cal.json", "test_costly.py::test_light", "test_costly.py::test_costly", *MAX_TIME)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    calibration = Calibration.read(path / "cal.json", "the test")
    measured = calibration.measured
    assert measured["load_measured"] is True and measured["load_processes"] == 1
    # test_light (+5%) measures the floor, test_costly (+100% or more) the share of the overhead.
    assert measured["load_share_measured"] is True
    assert all(figure["loaded_log_ratio"] is not None for figure in measured["figures"])
    assert 0 <= calibration.term.load <= 1 and 0 <= calibration.term.load_share <= 1
    measured_share = r"\(measured \d\.\d{4} on 1 figure\)"
    assert re.search(rf"^load_share +\d\.\d{{4}} {measured_share} +0\.1$", done.stdout, re.MULTILINE), done.stdout
    said = " ".join(done.stdout.split())
    assert "calibrate: loaded run beside 1 busy processes" in said
    assert "quiet and beside 1 busy processes" in said
    assert not (path / CALIBRATION_FILE).exists()


def test_what_cannot_be_calibrated_ends_in_one_line(tmp_path: Path) -> None:
    path = project(tmp_path)
    unmarked = run(path, "-m", "pytest_otel_overhead", "calibrate", "test_costly.py::test_unmarked")
    assert unmarked.returncode == 2
    assert unmarked.stderr.startswith(
        "error: calibrate: no marked test was measured among `test_costly.py::test_unmarked`"
    )
    assert len(unmarked.stderr.splitlines()) == 1
    broken = run(path, "-m", "pytest_otel_overhead", "calibrate", "--", "test_costly.py", "--no-such-option")
    assert broken.returncode == 2
    assert broken.stderr.startswith("error: calibrate: pytest failed (exit status 4); its output ends: ")
    assert "--no-such-option" in broken.stderr
    assert not (path / CALIBRATION_FILE).exists()
