"""One process's share of a time measurement spread over fresh processes (``processes`` > 1).

The parent (:mod:`.replicas`) re-runs the test node in a child pytest process whose environment
names a spec file (``REPLICA_ENV``). Collection, fixtures and the test body run as usual; when the
test reaches the measured call, the child measures it with the time engine, at the parent's
settings and for its share of ``max_time``, and writes the result where the parent reads it
(``wire``). It leaves once that test is torn down: the session's end (reports, saved runs) belongs
to the parent's session, not to this one.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.engine.combined import child_plan
from pytest_otel_overhead.engine.runner import Share, measure
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import StopReason, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.wire.transport import from_json, to_json

__all__ = ["PAD_ENV", "REPLICA_ENV", "ReplicaChild", "ReplicaSpec", "call_number", "replica_child"]

REPLICA_ENV = "PYTEST_OTEL_OVERHEAD_REPLICA"
"""Set by the parent on each child: the path of its :class:`ReplicaSpec`."""
PAD_ENV = "PYTEST_OTEL_OVERHEAD_PAD"
"""Padding of a random length in each child's environment (see ``replicas``)."""
_CALL = re.compile(r"#call(\d+)")


@dataclass(frozen=True)
class ReplicaSpec:
    """What the parent asks of one child process."""

    settings: MeasureSettings
    """The parent's settings, with ``processes`` 1 and ``max_time`` this child's share."""
    call: int
    """Which measured call of the test to measure: N for a label with ``#callN``, else 1."""
    result_path: Path
    parent_pid: int
    timed_only: bool = False
    """Run the timed pairs only: a process added to decide a budget, whose diagnostic and heap rounds the
    first process's stand for."""

    def to_json(self) -> str:
        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> ReplicaSpec:
        return from_json(cls, text)


def call_number(label: str) -> int:
    """Which measured call of its test ``label`` names: the fixture's second call is ``nodeid#call2``."""
    match = _CALL.search(label)
    return int(match.group(1)) if match else 1


class ReplicaChild:
    """This process's part in a measurement spread over processes: measure the asked call, once."""

    def __init__(self, spec: ReplicaSpec) -> None:
        self.spec = spec
        self.measured = False

    def measure(self, item: pytest.Item, label: str, workload: Callable[[], Any], router: ArmRouter) -> TestResult:
        """Measure ``workload`` if it is the call the parent asked for; otherwise return an empty result."""
        if self.measured or call_number(label) != self.spec.call:
            return TestResult.unmeasured(label, self.spec.settings, StopReason.MEASURED_ELSEWHERE)
        self.measured = True
        share = Share(counts_term=False, timed_only=self.spec.timed_only)
        result = measure(
            workload,
            self.spec.settings,
            router,
            nodeid=label,
            plan=child_plan(self.spec.settings.confidence),
            share=share,
        )
        written = self.spec.result_path.with_suffix(".partial")
        written.write_text(to_json(result), encoding="utf-8")
        written.replace(self.spec.result_path)  # the parent never reads half a result
        item.config.pluginmanager.register(_LeaveAfterTest(item.nodeid))
        return result


_key = pytest.StashKey["ReplicaChild | None"]()


def replica_child(config: pytest.Config) -> ReplicaChild | None:
    """This process's part in a measurement spread over processes, or None when no parent started it for one."""
    if _key not in config.stash:
        config.stash[_key] = _from_environment()
    return config.stash[_key]


def _from_environment() -> ReplicaChild | None:
    path = os.environ.get(REPLICA_ENV)
    if not path:
        return None
    try:
        spec = ReplicaSpec.from_json(Path(path).read_text(encoding="utf-8"))
    except OSError:  # a process that outlived its parent's measurement
        return None
    # Processes that the measured test starts inherit the variable: only the parent's own child measures.
    return ReplicaChild(spec) if spec.parent_pid == os.getppid() else None


class _LeaveAfterTest:
    """Ends the child once the measured test is torn down: nothing after it concerns the parent."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if nodeid == self.nodeid:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
