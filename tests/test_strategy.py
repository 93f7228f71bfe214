"""The measuring strategies' one interface: which strategy measures each mode, and how each ends."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import build_result

from pytest_otel_overhead.engine import strategy
from pytest_otel_overhead.engine.replicas import ADDED_SHARE_S, STARTUP_GUESS_S, kept_back_s
from pytest_otel_overhead.engine.runner import Share
from pytest_otel_overhead.engine.strategy import Measurement, OneProcess, ReplicaShare, Strategies, TimeMode
from pytest_otel_overhead.instructions.strategy import CountedInstructions
from pytest_otel_overhead.instructions.valgrind import ValgrindUnavailable
from pytest_otel_overhead.results import StopReason, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.wire.transport import from_json, to_json


class Recording:
    """A strategy that records what it was asked and returns a fixed result."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def check(self, settings: MeasureSettings) -> None:
        self.log.append(f"check {self.name}")

    def measure(self, measurement: Measurement) -> TestResult:
        self.log.append(f"measure {self.name} {measurement.label}")
        return build_result(measurement.label)


def measurement(**settings: Any) -> Measurement:
    return Measurement(
        item=SimpleNamespace(),  # type: ignore[arg-type]
        settings=dataclasses.replace(MeasureSettings(), **settings),
        workload=lambda: None,
        label="t.py::t",
        router=SimpleNamespace(),  # type: ignore[arg-type]
    )


def test_each_mode_is_measured_and_checked_by_its_own_strategy() -> None:
    log: list[str] = []
    strategies = Strategies({"time": Recording("time", log), "instructions": Recording("counts", log)})
    strategies.check(MeasureSettings(mode="instructions"))
    strategies.measure(measurement(mode="time"))
    strategies.measure(measurement(mode="instructions"))
    assert log == ["check counts", "measure time t.py::t", "measure counts t.py::t"]


def test_a_table_without_a_strategy_for_some_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="no measuring strategy for mode instructions"):
        Strategies({"time": Recording("time", [])})


def test_time_mode_measures_here_or_over_processes_while_holding_the_host() -> None:
    log: list[str] = []

    @contextlib.contextmanager
    def alone() -> Iterator[None]:
        log.append("alone")
        yield
        log.append("shared")

    time_mode = TimeMode(alone=alone, one=Recording("here", log), several=Recording("processes", log))
    time_mode.measure(measurement(processes=1))
    time_mode.measure(measurement(processes=3))
    assert log == ["alone", "measure here t.py::t", "shared", "alone", "measure processes t.py::t", "shared"]


def _first_share(monkeypatch: pytest.MonkeyPatch, asked: Measurement) -> Share:
    """The share the first process of ``asked`` measures with, in this process."""
    shares: list[Share] = []

    def first(*args: object, share: Share, **kwargs: object) -> TestResult:
        shares.append(share)
        return build_result(asked.label)

    monkeypatch.setattr(strategy, "measure", first)
    monkeypatch.setattr(strategy, "add_processes", lambda item, settings, result, **kwargs: result)
    OneProcess().measure(asked)
    (share,) = shares
    return share


def test_the_first_process_keeps_back_time_for_the_processes_a_gate_wants_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A saved run's three processes: two more after the first, each a share of timed pairs and a start-up.
    share = _first_share(monkeypatch, dataclasses.replace(measurement(max_time=30.0), min_processes=3))
    assert share.adds_processes
    assert share.keep_back_s == pytest.approx(2 * (ADDED_SHARE_S + STARTUP_GUESS_S))
    # Nothing wanted after it, or a fixed single process: the first has all of max_time.
    assert _first_share(monkeypatch, measurement(max_time=30.0)).keep_back_s == 0
    fixed = dataclasses.replace(measurement(max_time=30.0, processes=1), min_processes=3)
    assert _first_share(monkeypatch, fixed).keep_back_s == 0


def test_at_most_half_of_max_time_is_kept_back() -> None:
    assert kept_back_s(MeasureSettings(max_time=6.0), 8) == 3.0
    assert kept_back_s(MeasureSettings(max_time=60.0), 1) == 0.0


def test_a_replica_measures_its_share_whatever_the_mode() -> None:
    asked: list[str] = []
    replica = SimpleNamespace(measure=lambda item, label, workload, router: asked.append(label) or build_result(label))
    strategies = Strategies.each(ReplicaShare(replica))  # type: ignore[arg-type]
    strategies.check(MeasureSettings(mode="instructions"))  # the parent process checked the settings
    assert strategies.measure(measurement(mode="instructions")).nodeid == "t.py::t"
    assert asked == ["t.py::t"]


def test_instructions_mode_fails_up_front_without_valgrind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("platform.system", lambda: "Linux")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    CountedInstructions().check(MeasureSettings(mode="time"))  # time mode needs no valgrind
    with pytest.raises(ValgrindUnavailable):
        CountedInstructions().check(MeasureSettings(mode="instructions"))


@pytest.mark.parametrize("reason", list(StopReason))
def test_a_stop_reason_is_saved_and_shown_as_the_text_it_always_was(reason: StopReason) -> None:
    result = dataclasses.replace(build_result(), stop_reason=reason)
    assert json.loads(json.dumps(result.as_dict()))["stop_reason"] == reason.value
    assert str(reason) == f"{reason}" == reason.value
    assert from_json(TestResult, to_json(result)).stop_reason is reason


def test_the_stop_reasons_keep_their_saved_values() -> None:
    assert [reason.value for reason in StopReason] == [
        "decided",
        "max_time",
        "all processes",
        "counted",
        "process term",
        "no time budget",
        "measured by another process",
        "counted in child",
        "combined over shards",
    ]
