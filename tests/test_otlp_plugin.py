"""OTLP export end to end: pytest runs in subprocesses with --otel-overhead and the embedded receiver.

Proves, from inside those runs, that instruments made at import time follow the arm, that a lossy
pipeline fails its max_dropped budget, and that at the end of the session the receiver process,
its port and every thread are gone. Time budgets are far above any overhead here, so verdicts do not
depend on how busy the machine is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "test_auto_instrumentation.py"

SHOP = """
from opentelemetry import metrics, trace

# Made at import time (conftest imports this module before the plugin installs its providers):
# proxies that must follow the arm like everything else.
tracer = trace.get_tracer("shop")
meter = metrics.get_meter("shop")
ORDERS = meter.create_counter("orders")
LATENCY = meter.create_histogram("latency", unit="s")


def handle(lines=3):
    with tracer.start_as_current_span("request"):
        for i in range(lines):
            with tracer.start_as_current_span("line") as span:
                span.set_attribute("line", i)
        ORDERS.add(1, {"region": "eu"})
        LATENCY.record(0.001)
    return sum(range(20000))
"""

LIFECYCLE_CONFTEST = """
import json
import re
import socket
import threading

import psutil
import pytest

import shop  # noqa: F401 - instruments made before the plugin's providers exist

STATE = {}


def pytest_configure(config):
    STATE["threads"] = threading.active_count()
    STATE["children"] = sorted(p.pid for p in psutil.Process().children(recursive=True))


@pytest.fixture(autouse=True)
def _note_the_receiver():
    yield
    from pytest_otel_overhead.otel import receiver

    if receiver._shared is not None:
        STATE["receiver"] = (receiver._shared.pid, receiver._shared.port)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    from pytest_otel_overhead.otel import receiver

    pid, port = STATE.get("receiver", (None, None))
    report = {"receiver_seen": pid is not None, "shared_left": receiver._shared is not None}
    if pid is not None:
        report["process_left"] = psutil.pid_exists(pid)
        with socket.socket() as probe:
            probe.settimeout(5)
            report["port_open"] = probe.connect_ex(("127.0.0.1", port)) == 0
    report["threads_left"] = threading.active_count() - STATE["threads"]
    report["children_left"] = sorted(p.pid for p in psutil.Process().children(recursive=True)) != STATE["children"]
    with open("lifecycle.json", "w") as out:
        json.dump(report, out)
"""

OTLP_TESTS = """
import pytest

from shop import handle


# The diagnostic round runs for a fixed time, however fast the calls are: thousands of spans may
# queue up faster than a busy machine exports them, so a queue far larger than that keeps drops
# (and the exact per-call counts asserted on them) independent of how the worker thread is scheduled.
@pytest.mark.otel_overhead(
    exporter="otlp", compression="gzip", metric_interval="20ms", queue_size=1_000_000, budget="1000%"
)
def test_exported_over_otlp():
    handle()


@pytest.mark.otel_overhead(
    exporter="otlp", queue_size=16, batch_size=16, backend_latency="20ms", max_dropped=0, budget="1000%"
)
def test_loses_spans():
    handle(lines=50)
"""


@dataclass
class Run:
    ret: int
    stdout: str
    stderr: str
    path: Path

    def results(self) -> dict[str, dict[str, Any]]:
        document = json.loads((self.path / "out.json").read_text(encoding="utf-8"))
        return {test["nodeid"].split("::")[-1]: test for test in document["tests"]}


def run_pytest(path: Path, files: dict[str, str], *args: str) -> Run:
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "PYTEST_ADDOPTS"}
    environ["PY_COLORS"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr, path)


@pytest.fixture(scope="module")
def otlp_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_pytest(
        tmp_path_factory.mktemp("otlp"),
        {"shop.py": SHOP, "conftest.py": LIFECYCLE_CONFTEST, "test_shop.py": OTLP_TESTS},
        "-v",
        "--otel-overhead",
        "--otel-overhead-max-time=3",
        "--otel-overhead-json=out.json",
    )


def test_outcomes(otlp_run: Run) -> None:
    assert "test_shop.py::test_exported_over_otlp PASSED" in otlp_run.stdout, otlp_run.stdout + otlp_run.stderr
    assert "test_shop.py::test_loses_spans FAILED" in otlp_run.stdout


def test_spans_and_import_time_metrics_reach_the_receiver(otlp_run: Run) -> None:
    result = otlp_run.results()["test_exported_over_otlp"]
    assert result["settings"]["exporter"] == "otlp" and result["settings"]["compression"] == "gzip"
    pipeline = result["pipeline"]
    assert pipeline["spans_started_per_call"] == pipeline["spans_exported_per_call"] == 4
    assert pipeline["spans_dropped"] == 0
    assert pipeline["metric_points"] >= 2  # the counter and the histogram made at import time
    assert pipeline["bytes_sent_per_call"] > 0
    assert pipeline["compression_ratio"] > 1.2
    assert pipeline["export_latency_p50_s"] > 0
    assert pipeline["extra_threads"] >= 1


def test_a_lossy_pipeline_fails_its_dropped_budget(otlp_run: Run) -> None:
    section = otlp_run.stdout.split("_ test_loses_spans _", 1)[1].split("\n_", 1)[0]
    assert "spans in" in section and "budget max_dropped=0" in section and "(queue full: " in section
    assert "Traceback" not in section
    pipeline = otlp_run.results()["test_loses_spans"]["pipeline"]
    assert pipeline["spans_dropped"] > 0 and pipeline["dropped_verdict"] == "FAIL"
    assert pipeline["queue_peak"] == pipeline["queue_capacity"] == 16
    assert otlp_run.results()["test_loses_spans"]["verdict"] == "FAIL"


def test_the_summary_has_a_pipeline_line(otlp_run: Run) -> None:
    unwrapped = otlp_run.stdout.replace("\n      ", " ")  # a line too long for the width goes on indented two more
    lines = [line.strip() for line in unwrapped.splitlines() if line.strip().startswith("pipeline: ")]
    assert len(lines) == 2
    assert "compressed ×" in lines[0] and "queue peak" in lines[0]
    assert "max_dropped 0: FAIL" in lines[1]


def test_a_fail_from_lost_spans_is_named_in_the_progress_and_next_to_the_verdict(otlp_run: Run) -> None:
    out = otlp_run.stdout
    # The looks decide the CPU budget (a PASS here); the pipeline's verdict follows them, as its own line.
    assert re.search(
        r"^  otel-overhead: pipeline: lost \d+ spans in \d+ calls "
        r"\(queue full: \d+, failed exports: \d+\): FAIL \(max_dropped 0\)$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(
        r"^test_shop\.py::test_loses_spans  FAIL \(max_dropped 0\)  budget CPU 1000\.0% \(marker\)$", out, re.MULTILINE
    )
    passed = r"^test_shop\.py::test_exported_over_otlp  PASS  budget CPU 1000\.0% \(marker\)$"
    assert re.search(passed, out, re.MULTILINE)


def test_the_session_leaves_no_receiver_port_or_thread(otlp_run: Run) -> None:
    report = json.loads((otlp_run.path / "lifecycle.json").read_text(encoding="utf-8"))
    assert report == {
        "receiver_seen": True,
        "shared_left": False,
        "process_left": False,
        "port_open": False,
        "threads_left": 0,
        "children_left": False,
    }


def test_asking_for_otlp_without_the_extra_names_the_extra(tmp_path: Path) -> None:
    conftest = (
        "import sys\n"
        "# As if opentelemetry-exporter-otlp-proto-http were not installed.\n"
        "sys.modules['opentelemetry.exporter.otlp.proto.http.trace_exporter'] = None\n"
    )
    run = run_pytest(
        tmp_path,
        {"conftest.py": conftest, "test_x.py": "def test_x():\n    pass\n"},
        "--otel-overhead",
        "--otel-overhead-exporter=otlp",
    )
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "otel-overhead: --otel-overhead-exporter: exporter 'otlp' needs the OTLP/HTTP exporter "
        "(opentelemetry.exporter.otlp.proto.http.trace_exporter is missing); "
        "install it with pip install 'pytest-otel-overhead[otlp]'"
    ) in run.stderr


def test_the_auto_instrumentation_example_measures_sqlite_spans(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.instrumentation.sqlite3")
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    run = run_pytest(
        tmp_path, {}, "-v", "--otel-overhead", "--otel-overhead-max-time=3", "--otel-overhead-json=out.json"
    )
    assert "test_unknown_sku_is_an_error PASSED" in run.stdout, run.stdout + run.stderr
    results = run.results()
    for name in (
        "test_quote_basket",
        "test_quote_with_a_slow_collector",
        "test_quote_with_a_slow_collector_and_a_small_queue",
    ):
        by_name = results[name]["pipeline"]["spans_per_call_by_name"]
        assert by_name == {"SELECT": 20.0}, name  # spans of the instrumented library, 20 queries per quote
    assert results["test_quote_with_a_slow_collector"]["pipeline"]["export_latency_p50_s"] >= 0.05
    assert results["test_quote_with_a_slow_collector_and_a_small_queue"]["pipeline"]["spans_dropped"] > 0
