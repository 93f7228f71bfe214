"""End to end: a collector that delivers nothing is said as such, never as a PASS nor as noise.

pytest runs once, in a fresh interpreter, on tests that export over OTLP to real sockets on
127.0.0.1: a closed port (every connection refused at once) and a server that accepts
connections and never answers. Budgets are far from every figure, so no verdict depends on the
machine's load; what is checked is the outcome, its reason, and that every text counts the lost
spans alike.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MEASURED = """
import socket
import threading

import pytest
from opentelemetry import trace

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    CLOSED = probe.getsockname()[1]
SILENT = socket.socket()
SILENT.bind(("127.0.0.1", 0))
SILENT.listen(64)
HELD = []


def hold():  # accepts every connection, never reads nor answers
    while True:
        HELD.append(SILENT.accept()[0])


threading.Thread(target=hold, daemon=True).start()
DEAD = f"http://127.0.0.1:{CLOSED}/v1/traces"
NEVER = f"http://127.0.0.1:{SILENT.getsockname()[1]}/v1/traces"
tracer = trace.get_tracer("shop")


def handle():
    with tracer.start_as_current_span("request"):
        for line in range(5):
            with tracer.start_as_current_span("line"):
                pass


@pytest.mark.otel_overhead(budget="100000%", exporter="otlp", endpoint=DEAD)
def test_dead(otel_overhead):
    otel_overhead(handle)


@pytest.mark.otel_overhead(budget="100000%", exporter="otlp", endpoint=DEAD, failed_exports="warn")
def test_dead_warned(otel_overhead):
    otel_overhead(handle)


@pytest.mark.otel_overhead(budget="100000%", exporter="otlp", endpoint=DEAD, failed_exports="ignore", max_dropped=0)
def test_dead_ignored_with_max_dropped(otel_overhead):
    otel_overhead(handle)


@pytest.mark.otel_overhead(budget="100000%", exporter="otlp", endpoint=NEVER, failed_exports="warn")
def test_never_answers(otel_overhead):
    otel_overhead(handle)


@pytest.mark.otel_overhead(budget="100000%", exporter="otlp")
def test_healthy(otel_overhead):
    otel_overhead(handle)
"""


@dataclass
class Run:
    stdout: str
    path: Path

    def status(self, name: str) -> str:
        found = re.findall(rf"^test_measured\.py::{name} (PASSED|FAILED|ERROR)\b", self.stdout, re.MULTILINE)
        assert len(found) == 1, self.stdout
        return str(found[0])

    def result(self, name: str) -> dict[str, Any]:
        document = json.loads((self.path / "out.json").read_text(encoding="utf-8"))
        return next(t for t in document["tests"] if t["nodeid"] == f"test_measured.py::{name}")

    def summary(self, name: str) -> str:
        """The test's block in the plugin's summary: its heading line and the indented lines under it."""
        found = re.search(rf"^test_measured\.py::{name}  [A-Z].*\n(?:    .*\n)*", self.stdout, re.MULTILINE)
        assert found is not None, self.stdout
        return found.group(0)

    def properties(self, name: str) -> dict[str, str]:
        tree = ET.parse(self.path / "junit.xml")
        (case,) = (c for c in tree.iter("testcase") if c.get("name") == name)
        return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("failed_exports")
    (path / "test_measured.py").write_text(MEASURED, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONTRACEMALLOC"))}
    environ.pop("PYTEST_ADDOPTS", None)
    environ["PY_COLORS"] = "0"
    command = [
        *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-v", "-W", "default"),
        *("--otel-overhead", "--otel-overhead-max-time=3", "--otel-overhead-json=out.json", "--junitxml=junit.xml"),
    ]
    done = subprocess.run(command, cwd=path, env=environ, capture_output=True, text=True, timeout=600, check=False)
    return Run(done.stdout, path)


def test_a_dead_collector_fails_the_test_by_default_naming_the_refusal(run: Run) -> None:
    assert run.status("test_dead") == "FAILED"
    failure = re.search(r"otel-overhead: test_measured\.py::test_dead: failed exports: (.*)", run.stdout)
    assert failure is not None, run.stdout
    assert failure.group(1).startswith("every export failed (")
    assert "refused them or answered with an error" in failure.group(1)
    assert failure.group(1).endswith("(failed_exports=fail, default)")
    result = run.result("test_dead")
    assert result["outcome"] == "FAILED_EXPORTS" and result["failed_exports"] in failure.group(1)
    assert result["settings"]["failed_exports"] == "fail"
    assert run.properties("test_dead")["otel_overhead.outcome"] == "FAILED_EXPORTS"
    assert run.summary("test_dead").startswith("test_measured.py::test_dead  FAILED EXPORTS")


def test_failed_exports_warn_or_are_ignored_when_asked_and_are_still_reported(run: Run) -> None:
    assert run.status("test_dead_warned") == "PASSED"
    assert re.search(r"OverheadFailedExportsWarning: test_measured\.py::test_dead_warned: failed exports: ", run.stdout)
    assert run.result("test_dead_warned")["outcome"] == "FAILED_EXPORTS"
    assert "test_dead_ignored_with_max_dropped: failed exports" not in run.stdout
    assert run.result("test_dead_ignored_with_max_dropped")["outcome"] == "FAILED_EXPORTS"
    assert re.search(r"\d+ measured: .*, 4 FAILED EXPORTS$", run.stdout, re.MULTILINE), run.stdout


def test_spans_of_refused_exports_are_failed_exports_in_every_text_and_count_against_max_dropped(run: Run) -> None:
    name = "test_dead_ignored_with_max_dropped"
    assert run.status(name) == "FAILED"  # max_dropped=0 still fails it
    pipeline = run.result(name)["pipeline"]
    # Refused at once: nothing for max_time to cut, so no note that the backend did not answer.
    assert pipeline["spans_timed_out"] == 0 and pipeline["exports_timed_out"] == 0
    assert pipeline["time_cap_note"] is None or "did not answer" not in pipeline["time_cap_note"]
    failed = pipeline["spans_dropped_failed_export"]
    assert failed == pipeline["spans_dropped"] >= 1 and pipeline["dropped_verdict"] == "FAIL"
    sentence = re.search(r"lost (\d+) spans in \d+ calls \(queue full: (\d+), failed exports: (\d+)\)", run.stdout)
    assert sentence is not None, run.stdout
    assert [int(n) for n in sentence.groups()] == [failed, 0, failed]
    assert f"(queue full 0, failed exports {failed}); " in run.summary(name)


def test_a_backend_that_never_answers_is_said_to_be_the_cause_not_noise(run: Run) -> None:
    result = run.result("test_never_answers")
    assert result["outcome"] == "FAILED_EXPORTS"
    assert "the backend did not answer" in result["failed_exports"]
    cpu = result["metrics"]["cpu"]
    if cpu["verdict"] == "INCONCLUSIVE":  # the usual case: exports hold the flushes until the cap
        assert "too noisy" not in cpu["note"]
        assert "not for noise: the backend did not answer: exports took the whole time left" in cpu["note"]
    assert "too noisy" not in run.summary("test_never_answers")


def test_a_healthy_pipeline_has_no_such_outcome(run: Run) -> None:
    assert run.status("test_healthy") == "PASSED"
    result = run.result("test_healthy")
    assert result["outcome"] == "PASS" and result["failed_exports"] is None
    assert result["pipeline"]["export_failures"] == 0
