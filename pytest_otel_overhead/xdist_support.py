"""pytest-xdist: results travel from the workers to the controller; time measurements run alone.

Results: a worker measures, then attaches every :class:`TestResult` made during a test phase to
that phase's report, serialized without loss (``report.otel_overhead_results``). The controller
rebuilds them as reports arrive and keeps them in collection order, so its summary, JSON and junit
output hold what a run without xdist would hold.

Timing: a time measurement must not share the host with other work of the same run, or the
workers' load becomes the measurement's noise. Every test on every worker of a host holds a shared
lock while it runs; a time measurement takes the lock exclusively, so it starts once the tests
running elsewhere have finished and no other test starts until it is done. A second "gate" lock
makes a waiting measurement block new tests, so it cannot be starved. Instruction counts do not
depend on contention, so instructions mode takes no exclusive lock and runs alongside other tests.
"""

from __future__ import annotations

import bisect
import fcntl
import re
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.wire import from_json, to_json

__all__ = [
    "PLUGIN_NAME",
    "REPORT_ATTRIBUTE",
    "HostLock",
    "XdistPlugin",
    "is_worker",
    "result_from_wire",
    "result_to_wire",
]

PLUGIN_NAME = "otel-overhead-xdist"
REPORT_ATTRIBUTE = "otel_overhead_results"
LOCK_PREFIX = "pytest-otel-overhead-"


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker; xdist gives a worker's config ``workerinput``."""
    return hasattr(config, "workerinput")


def result_to_wire(result: TestResult) -> str:
    """Every field of ``result`` as JSON text, without loss."""
    return to_json(result)


def result_from_wire(text: str) -> TestResult:
    return from_json(TestResult, text)


# -- host lock -----------------------------------------------------------------------------------


class HostLock:
    """Readers-writer lock among the workers of one run on one host (``flock``, released on exit)."""

    def __init__(self, key: str, directory: Path | None = None) -> None:
        base = Path(directory or tempfile.gettempdir())
        self.paths = (base / f"{LOCK_PREFIX}{key}.gate", base / f"{LOCK_PREFIX}{key}.lock")
        self._gate: IO[bytes] = self.paths[0].open("ab")
        self._data: IO[bytes] = self.paths[1].open("ab")
        self.holding_test = False

    def close(self) -> None:
        self._gate.close()
        self._data.close()

    def _enter_shared(self) -> None:
        fcntl.flock(self._gate, fcntl.LOCK_SH)
        try:
            fcntl.flock(self._data, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)

    @contextmanager
    def test(self) -> Iterator[None]:
        """Held (shared) while a test runs on this worker."""
        self._enter_shared()
        self.holding_test = True
        try:
            yield
        finally:
            self.holding_test = False
            fcntl.flock(self._data, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while a time measurement runs: no test of this run runs elsewhere on the host."""
        was_holding = self.holding_test
        if was_holding:
            # Let go of this test's shared hold first: two measuring workers would otherwise wait
            # on each other's shared hold for ever.
            fcntl.flock(self._data, fcntl.LOCK_UN)
        fcntl.flock(self._gate, fcntl.LOCK_EX)  # tests not yet started wait at the gate
        try:
            fcntl.flock(self._data, fcntl.LOCK_EX)  # tests already running finish first
            try:
                yield
            finally:
                fcntl.flock(self._data, fcntl.LOCK_UN)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
            if was_holding:
                self._enter_shared()


# -- hooks ---------------------------------------------------------------------------------------

_CALL_SUFFIX = re.compile(r"#call(\d+)$")


def _order_key(order: dict[str, int], nodeid: str) -> tuple[int, int]:
    match = _CALL_SUFFIX.search(nodeid)
    base = nodeid[: match.start()] if match else nodeid
    return (order.get(base, len(order)), int(match.group(1)) if match else 1)


class XdistPlugin:
    """Registered with the measuring session; inert unless the run uses pytest-xdist."""

    def __init__(self, config: pytest.Config, results: list[TestResult]) -> None:
        self.config = config
        self.results = results
        self.sent = 0
        self.order: dict[str, int] = {}
        self.lock_keys: set[str] = set()
        self.lock: HostLock | None = None
        if is_worker(config):
            workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
            self.lock = HostLock(str(workerinput["testrunuid"]))

    # Worker side.

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        if self.lock is None:
            return (yield)
        with self.lock.test():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if self.lock is not None and len(self.results) > self.sent:
            setattr(report, REPORT_ATTRIBUTE, [result_to_wire(r) for r in self.results[self.sent :]])
            self.sent = len(self.results)
        return report

    @contextmanager
    def measuring(self) -> Iterator[None]:
        """Around a time measurement: alone on the host under xdist, as is otherwise."""
        if self.lock is None:
            yield
        else:
            with self.lock.exclusive():
                yield

    # Controller side.

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        self.lock_keys.add(str(node.workerinput["testrunuid"]))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        if not self.order:
            self.order = {nodeid: index for index, nodeid in enumerate(ids)}
            self.results.sort(key=lambda r: _order_key(self.order, r.nodeid))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        texts = getattr(report, REPORT_ATTRIBUTE, None)
        if not texts or is_worker(self.config):
            return
        for text in texts:
            result = result_from_wire(text)
            keys = [_order_key(self.order, r.nodeid) for r in self.results]
            self.results.insert(bisect.bisect_right(keys, _order_key(self.order, result.nodeid)), result)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.lock is not None:
            self.lock.close()
        for key in self.lock_keys:  # the controller removes the lock files once every worker is gone
            for suffix in (".gate", ".lock"):
                path = Path(tempfile.gettempdir()) / f"{LOCK_PREFIX}{key}{suffix}"
                path.unlink(missing_ok=True)
