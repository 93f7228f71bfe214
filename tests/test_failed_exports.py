"""A collector that delivers nothing is said as such, never as a PASS nor as noise.

End to end, pytest runs once, in a fresh interpreter, on tests that export over OTLP to real
sockets on 127.0.0.1: a closed port (every connection refused at once) and a server that accepts
connections and never answers. Budgets are far from every figure, so no verdict depends on the
machine's load; what is checked is the outcome, its reason, and that every text counts the lost
spans alike. Below, the same parts without a measurement: the setting, the reasons, the counts
and what the time cap counts as cut.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
import socket
import time
import types
from collections.abc import Sequence

import pytest
from conftest import build_result
from measured_project import Run, run_measured
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from pytest_otel_overhead.engine.telemetry import failed_exports_reason, with_telemetry_outcome
from pytest_otel_overhead.otel.export_deadlines import ExportDeadlines
from pytest_otel_overhead.reports.terminal import health_line, summary_lines
from pytest_otel_overhead.results import FAILED_EXPORTS, PipelineHealth, TestResult
from pytest_otel_overhead.session import record_properties
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.units import SettingsError

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


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("failed_exports")
    return run_measured(path, {"test_measured.py": MEASURED}, max_time="3")


def test_a_dead_collector_fails_the_test_by_default_naming_the_refusal(run: Run) -> None:
    assert run.status("test_dead") == "FAILED"
    assert (
        "failed exports: nothing reached the backend (failed_exports=fail, default; failed_exports=warn only warns)"
        in run.stdout
    )
    failure = re.search(r"otel-overhead: test_measured\.py::test_dead: failed exports: (.*)", run.stdout)
    assert failure is not None, run.stdout
    assert failure.group(1).startswith("every export failed (")
    assert f"the backend at {run.result('test_dead')['settings']['endpoint']} refuses connections" in failure.group(1)
    result = run.result("test_dead")
    assert result["outcome"] == "FAILED_EXPORTS" and result["failed_exports"] in failure.group(1)
    assert result["settings"]["failed_exports"] == "fail"
    assert run.properties("test_dead")["otel_overhead.outcome"] == "FAILED_EXPORTS"
    assert run.summary("test_dead").startswith("test_measured.py::test_dead  FAILED EXPORTS")


def test_failed_exports_warn_or_are_ignored_when_asked_and_are_still_reported(run: Run) -> None:
    assert run.status("test_dead_warned") == "PASSED"
    # The warning names the test's own line, not the plugin's frame that issued it.
    marker = MEASURED.splitlines().index("def test_dead_warned(otel_overhead):")  # its marker, one line above (1-based)
    warned = rf"test_measured\.py:{marker}: OverheadFailedExportsWarning: test_measured\.py::test_dead_warned: failed "
    assert re.search(warned, run.stdout), run.stdout
    assert run.result("test_dead_warned")["outcome"] == "FAILED_EXPORTS"
    assert "test_dead_ignored_with_max_dropped: failed exports" not in run.stdout
    assert run.result("test_dead_ignored_with_max_dropped")["outcome"] == "FAILED_EXPORTS"
    assert re.search(r"\d+ measured: .*, 4 FAILED EXPORTS$", run.stdout, re.MULTILINE), run.stdout


def test_spans_of_refused_exports_are_failed_exports_in_every_text_and_count_against_max_dropped(run: Run) -> None:
    name = "test_dead_ignored_with_max_dropped"
    assert run.status(name) == "FAILED"  # max_dropped=0 still fails it
    pipeline = run.result(name)["pipeline"]
    # Refused at once: failed exports, not cut by max_time (unless the exporter's retries used up the
    # time, and the cap then refused the exports still queued: those alone are cut).
    cut = pipeline["spans_timed_out"]
    failed = pipeline["spans_dropped_failed_export"] - cut
    assert pipeline["spans_dropped_failed_export"] >= 1
    assert "refuses connections" in run.result(name)["failed_exports"]
    nothing_cut = cut == 0 and pipeline["rounds_exports_timed_out"] == 0 and not pipeline["export_left_running"]
    assert (pipeline["time_cap_note"] is None) == nothing_cut
    # Every dropped span is counted once: queue full (older SDKs export only per block, so their queue can
    # fill), failed, or cut by max_time.
    dropped = failed + cut + pipeline["spans_dropped_queue_full"]
    assert pipeline["spans_dropped"] == dropped and pipeline["dropped_verdict"] == "FAIL"
    sentence = re.search(r"lost (\d+) spans in \d+ calls \(queue full: (\d+), failed exports: (\d+)\)", run.stdout)
    assert sentence is not None, run.stdout
    queue_full = pipeline["spans_dropped_queue_full"]
    assert [int(n) for n in sentence.groups()] == [failed + queue_full, queue_full, failed]
    assert f"(queue full {queue_full}, failed exports {failed}" in re.sub(r"\s+", " ", run.summary(name))  # lines wrap


HOLDING_EXPORTS = tuple(
    int(part) for part in importlib.metadata.version("opentelemetry-exporter-otlp-proto-http").split(".")[:2]
) >= (1, 35)
"""From 1.35 an OTLP export to a backend that never answers holds until the time left runs out."""


def test_a_backend_that_never_answers_is_said_to_be_the_cause_not_noise(run: Run) -> None:
    result = run.result("test_never_answers")
    assert result["outcome"] == "FAILED_EXPORTS"
    if not HOLDING_EXPORTS:
        # Before 1.35 the OTLP exporter's own read timeout ends each request, and the export fails
        # instead of holding until the cap: the outcome is the same, the cause reads as a failure.
        assert "every export failed" in result["failed_exports"]
        return
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


# --- without a measurement ---------------------------------------------------------------------------


def settings_for(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_failed_exports.py")])


def failing(**fields: object) -> PipelineHealth:
    """A round whose 4 exports of 1000 spans all failed."""
    values: dict[str, object] = {
        "calls": 1000, "started": 1000, "sampled": 1000, "ended": 1000, "exported": 0, "export_calls": 4,
        "export_failures": 4, "spans_failed": 1000, "export_latency_p50": 0.004, "export_latency_p95": 0.009,
    }  # fmt: skip
    values.update(fields)
    return PipelineHealth(**values)  # type: ignore[arg-type]


def test_the_failed_exports_policy_is_a_setting_from_every_source() -> None:
    assert MeasureSettings().failed_exports == "fail"
    assert settings_for(failed_exports="WARN").failed_exports == "warn"
    settings = resolve([env_layer({"OTEL_OVERHEAD_FAILED_EXPORTS": "ignore"})])
    assert settings.failed_exports == "ignore"
    assert settings.source("failed_exports") == "$OTEL_OVERHEAD_FAILED_EXPORTS"
    assert KEYS["failed_exports"].env == ("OTEL_OVERHEAD_FAILED_EXPORTS",)
    assert settings.as_dict()["failed_exports"] == "ignore"
    with pytest.raises(SettingsError, match=r"'loud' is not one of fail, warn, ignore$"):
        Layer.parse({"failed_exports": "loud"}, lambda key: "--otel-overhead-failed-exports")


def test_the_reason_says_how_the_exports_failed() -> None:
    with socket.socket() as listening:  # accepts connections: the reason comes from how the exports failed
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        endpoint = f"http://127.0.0.1:{listening.getsockname()[1]}/v1/traces"
        settings = settings_for(exporter="otlp", endpoint=endpoint, export_timeout="2s")
        refused = failed_exports_reason(failing(), settings)
        slow = failed_exports_reason(failing(export_latency_p95=1.95), settings)
        cut = failed_exports_reason(failing(exports_timed_out=4, spans_timed_out=1000), settings)
    assert refused is not None and refused.startswith("every export failed (4 of 4, 1000 spans dropped): ")
    assert f"the backend at {endpoint} refused them or answered with an error, each within" in refused
    closed = failed_exports_reason(failing(exports_timed_out=4, spans_timed_out=1000), settings)  # port now closed
    assert closed is not None and f"the backend at {endpoint} refuses connections" in closed
    assert slow is not None and "the backend did not answer within export_timeout (2.00 s)" in slow
    assert cut is not None and "the backend did not answer: exports took the whole time left" in cut
    assert failed_exports_reason(failing(export_failures=3, exported=250), settings) is None  # one got through
    assert failed_exports_reason(failing(export_calls=0, export_failures=0, spans_failed=0), settings) is None
    assert failed_exports_reason(None, settings) is None


def with_health(health: PipelineHealth) -> TestResult:
    return dataclasses.replace(build_result(), health=health)


def test_the_outcome_is_never_pass_and_reads_alike_everywhere() -> None:
    result = with_telemetry_outcome(with_health(failing()))
    assert result.verdict.value == "PASS" and result.outcome == FAILED_EXPORTS
    document = result.as_dict()
    assert document["outcome"] == "FAILED_EXPORTS" and document["failed_exports"] == result.failed_exports
    lines = summary_lines([result])
    text = re.sub(r"\s+", " ", "\n".join(lines))  # long lines are wrapped to the terminal
    assert "FAILED EXPORTS" in lines[0] and f" failed exports: {result.failed_exports}" in text
    assert lines[-1].endswith(", 1 FAILED EXPORTS")
    item = types.SimpleNamespace(nodeid=result.nodeid, user_properties=[])
    record_properties(item, result)  # type: ignore[arg-type]
    assert ("otel_overhead.failed_exports", result.failed_exports) in item.user_properties
    # No telemetry comes first: with no spans there is nothing to export.
    nothing = failing(started=0, sampled=0, ended=0, spans_failed=0, metric_measurements=0)
    assert with_telemetry_outcome(with_health(nothing)).outcome == "NO_TELEMETRY"
    assert with_telemetry_outcome(with_health(PipelineHealth(1, 1, 1, 1, 1))).outcome == "PASS"


def test_the_summary_line_and_the_sentence_split_the_dropped_spans_alike() -> None:
    # 300 spans failed outright, 1200 more were cut by max_time: every text says 300 failed.
    health = failing(exported=1500, export_calls=6, spans_failed=1500, exports_timed_out=3, spans_timed_out=1200)
    health = dataclasses.replace(health, started=3000, sampled=3000, ended=3000, max_dropped=0)
    line = health_line(with_health(health))
    assert line is not None and "(queue full 0, failed exports 300, cut by max_time 1200)" in line
    assert health.dropped_sentence() == "lost 300 spans in 1000 calls (queue full: 0, failed exports: 300), " + (
        "1200 more cut by max_time"
    )
    assert health.as_dict()["spans_dropped"] == 1500
    note = health.time_cap_note()
    assert note is not None and "1200 spans, dropped but not counted against max_dropped" in note


class _Refusing(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


class _Silent(SpanExporter):
    def __init__(self) -> None:
        self.deadlines: ExportDeadlines | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        assert self.deadlines is not None and self.deadlines.cap_at is not None
        while time.monotonic() < self.deadlines.cap_at:  # waits out its time, as a silent backend makes it
            time.sleep(0.001)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


def test_only_exports_that_ran_out_of_time_count_as_cut_by_the_cap() -> None:
    refused = ExportDeadlines(_Refusing(), timeout_s=30.0)
    refused.cap_at = time.monotonic() + 5.0  # the cap is nearer than the exporter's own deadline
    assert refused.export([]) is SpanExportResult.FAILURE
    assert (refused.capped.exports, refused.capped.failed) == (0, 1)  # failed at once: a failure, not a cut
    silent_exporter = _Silent()
    silent = ExportDeadlines(silent_exporter, timeout_s=30.0)
    silent_exporter.deadlines = silent
    silent.cap_at = time.monotonic() + 0.05
    assert silent.export([]) is SpanExportResult.FAILURE
    assert (silent.capped.exports, silent.capped.failed) == (1, 1) and silent.capped.failed_s >= 0.04
    assert silent.export([]) is SpanExportResult.FAILURE  # past the cap: refused without trying
    assert silent.capped.exports == 2
