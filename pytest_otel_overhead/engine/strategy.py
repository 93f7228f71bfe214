"""One interface for the ways of measuring a workload, and the table that says which one measures each mode.

A strategy measures one :class:`Measurement` and ends with a :class:`~pytest_otel_overhead.results.TestResult`
whose ``stop_reason`` says why it stopped. The engine's own strategies are here: in this process
(:func:`.runner.measure`), over several fresh processes (:func:`.replicas.measure_replicated`), and one
share of such a measurement in a process started for it (:class:`.replica_child.ReplicaChild`).
Instruction counts come from ``instructions/``. The session does not choose among them: the
pytest integration builds :class:`Strategies` and hands it over, so the session knows only this interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from pytest_otel_overhead.engine.replica_child import ReplicaChild
from pytest_otel_overhead.engine.replicas import OpenGate, add_processes, kept_back_s, measure_replicated
from pytest_otel_overhead.engine.runner import Share, measure
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.records import MeasureSettings, Mode

__all__ = [
    "Measurement",
    "Measurer",
    "MeasuringStrategy",
    "OneProcess",
    "OpenGate",
    "ReplicaShare",
    "SeveralProcesses",
    "Strategies",
    "TimeMode",
]

Measurer = Callable[[pytest.Item, MeasureSettings, Callable[[], Any], str], TestResult]
"""One ungated measurement of a test's workload at given settings, labelled: what the session offers advice."""


@dataclass(frozen=True)
class Measurement:
    """One workload to measure: the test it belongs to, its settings and label, the arms' router."""

    item: pytest.Item
    settings: MeasureSettings
    workload: Callable[[], object]
    label: str
    router: ArmRouter
    progress: Callable[[str], None] | None = None
    """Where progress lines go while it measures (the terminal, past capturing), or nowhere."""
    still_open: OpenGate | None = None
    """Another gate on the result that it leaves open (:data:`OpenGate`)."""
    min_processes: int = 1
    """Processes that gate wants whatever the first one shows: with ``processes`` auto, the first keeps
    back time for the others (:func:`.replicas.kept_back_s`); with ``processes=N``, up to N run however
    soon the budgets are decided."""


class MeasuringStrategy(Protocol):
    """A way of measuring: checked once against the session's settings, then asked for each measurement."""

    def check(self, settings: MeasureSettings) -> None:
        """Raise a ``SettingsError`` saying why this strategy cannot run here, before any test runs."""

    def measure(self, asked: Measurement) -> TestResult:
        """Measure both arms of the workload and decide its budgets."""


class OneProcess:
    """Time mode in this process: paired blocks of both arms with sequential looks, each interval counting the
    between-process term; with ``processes`` auto, fresh processes follow where that term alone keeps a
    budget open (:func:`.replicas.add_processes`)."""

    def check(self, settings: MeasureSettings) -> None:
        pass

    def measure(self, asked: Measurement) -> TestResult:
        settings = asked.settings
        adds = settings.processes is None
        share = Share(adds_processes=adds, keep_back_s=kept_back_s(settings, asked.min_processes) if adds else 0.0)
        first = measure(
            asked.workload, settings, asked.router, nodeid=asked.label, progress=asked.progress, share=share
        )
        still_open = asked.still_open if share.adds_processes else None
        return add_processes(
            asked.item, settings, first, label=asked.label, progress=asked.progress, still_open=still_open
        )


class SeveralProcesses:
    """Time mode over ``processes`` fresh processes, one after another, combined into one result."""

    def check(self, settings: MeasureSettings) -> None:
        pass

    def measure(self, asked: Measurement) -> TestResult:
        return measure_replicated(
            asked.item, asked.settings, label=asked.label, progress=asked.progress, least=asked.min_processes
        )


@dataclass(frozen=True)
class TimeMode:
    """Time mode: in this process or over several, as ``processes`` says, each while ``alone`` is held.

    ``alone`` keeps other work of the same run off the host while a time measurement runs (the
    pytest-xdist integration provides it); by default nothing is held.
    """

    alone: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    one: MeasuringStrategy = field(default_factory=OneProcess)
    several: MeasuringStrategy = field(default_factory=SeveralProcesses)

    def check(self, settings: MeasureSettings) -> None:
        (self.several if (settings.processes or 1) > 1 else self.one).check(settings)

    def measure(self, asked: Measurement) -> TestResult:
        with self.alone():
            strategy = self.several if (asked.settings.processes or 1) > 1 else self.one
            return strategy.measure(asked)


@dataclass(frozen=True)
class ReplicaShare:
    """In a process started to measure one share of a measurement over processes: that share, whatever the mode."""

    replica: ReplicaChild

    def check(self, settings: MeasureSettings) -> None:
        pass  # the process that started this one checked the settings

    def measure(self, asked: Measurement) -> TestResult:
        return self.replica.measure(asked.item, asked.label, asked.workload, asked.router)


@dataclass(frozen=True)
class Strategies:
    """Which strategy measures each mode (``settings.mode``): one entry per mode."""

    by_mode: Mapping[str, MeasuringStrategy]

    def __post_init__(self) -> None:
        missing = [mode for mode in Mode if mode not in self.by_mode]
        if missing:
            raise ValueError(f"no measuring strategy for mode {', '.join(missing)}")

    @classmethod
    def each(cls, strategy: MeasuringStrategy) -> Strategies:
        """The same strategy for every mode."""
        return cls(dict.fromkeys((mode.value for mode in Mode), strategy))

    def choose(self, settings: MeasureSettings) -> MeasuringStrategy:
        return self.by_mode[settings.mode]

    def check(self, settings: MeasureSettings) -> None:
        """Fail fast when the strategy of these settings' mode cannot run (instructions mode without valgrind)."""
        self.choose(settings).check(settings)

    def measure(self, asked: Measurement) -> TestResult:
        return self.choose(asked.settings).measure(asked)
