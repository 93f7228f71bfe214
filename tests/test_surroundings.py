"""The surroundings of a measurement: tracemalloc paused, tracers and profilers named, overrides stopped.

In process, with a private router that is never installed globally. Every hook a test installs
(trace and profile functions, tracemalloc) is removed in a ``finally``, and the OpenTelemetry
loggers are checked to be left without the engine's filter.
"""

from __future__ import annotations

import logging
import sys
import threading
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace

from pytest_otel_overhead.engine import runner, surroundings
from pytest_otel_overhead.engine.machine import BUSY_NOTE_START
from pytest_otel_overhead.engine.surroundings import (
    TRACEMALLOC_SHIFT,
    MeasurementStopped,
    Surroundings,
    monitoring_notes,
    tracer_notes,
)
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings

OTEL_LOGGERS = ("opentelemetry.trace", "opentelemetry.metrics._internal")


def settings_for(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_surroundings.py")])


@pytest.fixture
def router() -> ArmRouter:
    return ArmRouter()


@pytest.fixture
def loggers_left_alone() -> Iterator[None]:
    before = {name: list(logging.getLogger(name).filters) for name in OTEL_LOGGERS}
    yield
    assert {name: list(logging.getLogger(name).filters) for name in OTEL_LOGGERS} == before


def no_op_trace(frame: Any, event: str, arg: Any) -> None:
    return None


def override_warning(logger: str = "opentelemetry.trace", what: str = "TracerProvider") -> None:
    """What OpenTelemetry logs when set_tracer_provider (set_meter_provider) is called a second time."""
    logging.getLogger(logger).warning(f"Overriding of current {what} is not allowed")


# --- tracemalloc ------------------------------------------------------------------------------------


@pytest.mark.parametrize("busy", [False, True], ids=["as the machine is", "on a busy machine"])
def test_tracemalloc_is_stopped_while_measuring_and_restarted_with_its_frame_limit(
    router: ArmRouter, monkeypatch: pytest.MonkeyPatch, busy: bool
) -> None:
    monkeypatch.delenv("PYTHONTRACEMALLOC", raising=False)
    if busy:  # what a loaded machine adds, whatever the load is now: a note of its own, beside this one
        monkeypatch.setattr(surroundings, "busy_note", lambda start, end: f"{BUSY_NOTE_START}: simulated")
    if tracemalloc.is_tracing():
        pytest.skip("the suite itself runs under tracemalloc")
    tracing: list[bool] = []

    def workload() -> None:
        tracing.append(tracemalloc.is_tracing())

    tracemalloc.start(5)
    try:
        result = runner.measure(workload, settings_for(budget="100000%", max_time=1), router)
        assert tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 5
    finally:
        tracemalloc.stop()
    assert tracing[:4] == [False] * 4  # the first warm-up blocks of both arms
    assert [note for note in result.notes if not note.startswith(BUSY_NOTE_START)] == [
        "tracemalloc was tracing (started by code in this process, 5 frames): stopped while measuring and "
        "started again after, so the traces it held are gone; " + TRACEMALLOC_SHIFT,
    ]
    assert not busy or f"{BUSY_NOTE_START}: simulated" in result.notes


def test_without_tracemalloc_nothing_is_said_or_started(router: ArmRouter) -> None:
    if tracemalloc.is_tracing():
        pytest.skip("the suite itself runs under tracemalloc")
    with surroundings.surroundings(router) as around:
        assert not tracemalloc.is_tracing()
    assert not tracemalloc.is_tracing()
    assert not any("tracemalloc" in note for note in around.notes)


def test_the_tracemalloc_note_names_the_environment_variable(
    router: ArmRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    if tracemalloc.is_tracing():
        pytest.skip("the suite itself runs under tracemalloc")
    monkeypatch.setenv("PYTHONTRACEMALLOC", "1")
    tracemalloc.start()
    try:
        with surroundings.surroundings(router) as around:
            pass
        assert tracemalloc.get_traceback_limit() == 1
    finally:
        tracemalloc.stop()
    assert around.notes[0].startswith("tracemalloc was tracing (PYTHONTRACEMALLOC=1, 1 frame): ")
    # Stopped is not gone: the note says how far the figure still moves, as measured.
    assert "overheads may read 5 to 8 points (7 to 22% of the figure) too high (docs/limits.md)" in around.notes[0]


# --- tracers, profilers, monitoring tools -----------------------------------------------------------


def test_each_hook_installed_is_named_and_none_when_there_is_none() -> None:
    previous = (sys.gettrace(), sys.getprofile(), threading.gettrace(), threading.getprofile())
    if any(hook is not None for hook in previous) or getattr(sys, "monitoring", None) is not None:
        pytest.skip("the suite runs under a tracer, a profiler or sys.monitoring")
    assert tracer_notes() == []
    sys.settrace(no_op_trace)
    try:
        (note,) = tracer_notes()
    finally:
        sys.settrace(None)
    assert note.startswith("sys.settrace is active (")
    assert "no_op_trace" in note and note.endswith("timings include its cost in both arms; the ratio is diluted")
    sys.setprofile(no_op_trace)
    threading.settrace(no_op_trace)
    try:
        notes = tracer_notes()
    finally:
        sys.setprofile(None)
        threading.settrace(None)
    assert [n.split(" is active")[0] for n in notes] == ["sys.setprofile", "threading.settrace"]
    assert "the batch processor's worker" in notes[1]


def test_a_known_tracer_is_named_by_what_installed_it() -> None:
    def call(self: object, frame: Any, event: str, arg: Any) -> None:
        return None

    coverage_tracer = type("CTracer", (), {"__module__": "coverage.tracer", "__call__": call})()
    if sys.getprofile() is not None or sys.gettrace() is not None:
        pytest.skip("the suite runs under a tracer or a profiler")
    sys.setprofile(coverage_tracer)
    try:
        (note,) = tracer_notes()
    finally:
        sys.setprofile(None)
    assert note.startswith("sys.setprofile is active (coverage): ")


def test_monitoring_tools_are_named_by_id() -> None:
    tools = {1: "coverage.py", 2: "profiler"}
    notes = monitoring_notes(tools.get)
    assert notes == [
        "sys.monitoring tool 'coverage.py' (id 1) is registered: timings include what it observes in both arms; "
        "the ratio is diluted",
        "sys.monitoring tool 'profiler' (id 2) is registered: timings include what it observes in both arms; "
        "the ratio is diluted",
    ]
    assert monitoring_notes(lambda tool_id: None) == []


def test_a_tracer_present_during_the_measurement_lands_in_the_result(router: ArmRouter) -> None:
    if sys.gettrace() is not None:
        pytest.skip("the suite runs under a tracer")
    sys.settrace(no_op_trace)
    try:
        result = runner.measure(lambda: None, settings_for(budget="100000%", max_time=1), router)
    finally:
        sys.settrace(None)
    assert any(note.startswith("sys.settrace is active (") for note in result.notes)
    assert result.as_dict()["notes"] == list(result.notes)


# --- set_tracer_provider in the measured code ----------------------------------------------------


def test_override_warnings_are_held_back_and_stop_the_measurement_naming_the_call(
    router: ArmRouter, caplog: pytest.LogCaptureFixture, loggers_left_alone: None
) -> None:
    calls = {"n": 0}

    def workload() -> None:
        calls["n"] += 1
        override_warning()

    with caplog.at_level(logging.WARNING), pytest.raises(MeasurementStopped) as stopped:
        runner.measure(workload, settings_for(budget="100000%", max_time=5), router)
    message = str(stopped.value)
    assert message.startswith("the measured code calls trace.set_tracer_provider(...) at ")
    assert "test_surroundings.py:" in message and "\n" not in message
    assert "set providers once, outside the measured code" in message
    assert calls["n"] == 1  # stopped after the first block, a single call
    assert not [r for r in caplog.records if "Overriding" in r.getMessage()]
    assert router.idle
    override_warning()  # after the measurement the warning reaches the log again
    assert [r.getMessage() for r in caplog.records] == ["Overriding of current TracerProvider is not allowed"]


def test_a_meter_provider_override_is_named_too(router: ArmRouter, loggers_left_alone: None) -> None:
    with surroundings.surroundings(router) as around:
        override_warning("opentelemetry.metrics._internal", "MeterProvider")
        with pytest.raises(MeasurementStopped, match=r"^the measured code calls metrics\.set_meter_provider"):
            around.check()


def test_other_records_of_those_loggers_pass(
    router: ArmRouter, caplog: pytest.LogCaptureFixture, loggers_left_alone: None
) -> None:
    with caplog.at_level(logging.WARNING), surroundings.surroundings(router) as around:
        logging.getLogger("opentelemetry.trace").warning("something else")
        around.check()
    assert [r.getMessage() for r in caplog.records] == ["something else"]


@pytest.mark.parametrize("silence", ["level", "disabled"])
def test_an_override_is_seen_even_when_the_process_silenced_opentelemetry(
    router: ArmRouter, caplog: pytest.LogCaptureFixture, loggers_left_alone: None, silence: str
) -> None:
    logger = logging.getLogger("opentelemetry.trace")
    level, disabled = logger.level, logger.disabled
    if silence == "level":
        logger.setLevel(logging.ERROR)
    else:
        logger.disabled = True
    try:
        with caplog.at_level(logging.WARNING), surroundings.surroundings(router) as around:
            logging.getLogger("opentelemetry.trace").warning("something else")  # still silenced
            override_warning()
            with pytest.raises(MeasurementStopped, match=r"^the measured code calls trace\.set_tracer_provider"):
                around.check()
        assert (logger.level, logger.disabled) == ((logging.ERROR, False) if silence == "level" else (level, True))
    finally:
        logger.setLevel(level)
        logger.disabled = disabled
    assert not caplog.records


def test_a_global_provider_replaced_while_measuring_stops_it(
    router: ArmRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: router)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: router.meters)
    around = Surroundings(router)
    around.check()  # still the router: nothing to say
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    with pytest.raises(MeasurementStopped, match=r"^the global TracerProvider was replaced while measuring"):
        around.check()


def test_a_private_router_is_never_said_to_be_replaced(router: ArmRouter) -> None:
    # The suite's routers are not the global provider: nothing can replace them.
    Surroundings(router).check()
