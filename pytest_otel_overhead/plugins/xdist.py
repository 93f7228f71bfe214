"""pytest-xdist: results travel from the workers to the controller; time measurements run alone.

Results: a worker measures, then attaches every :class:`TestResult` made during a test phase to
that phase's report, serialized without loss (``report.otel_overhead_results``). The controller
rebuilds them as reports arrive and keeps them in collection order, so its summary, JSON and junit
output hold what a run without xdist would hold.

Timing: a time measurement must not share the host with other work of the same run, or the
workers' load becomes the measurement's noise. Every test on every worker of a host holds its
worker's lock while it runs; a time measurement takes every worker's lock, so it starts once the
tests running elsewhere have finished and no other test starts until it is done. A "gate" lock,
taken briefly before a test starts and held by a measurement from before it waits, makes a waiting
measurement block new tests, so it cannot be starved. Instruction counts do not depend on
contention, so instructions mode takes no such lock and runs alongside other tests.

The locks are files locked exclusively through ``filelock`` (``flock`` on POSIX, ``msvcrt`` on
Windows): Windows has no shared file lock, hence one lock per worker rather than one shared lock.
An operating-system lock goes with the process that held it, so a crashed worker blocks no one.
"""

from __future__ import annotations

import bisect
import re
import tempfile
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.compat import is_worker
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.wire.transport import from_json, to_json

__all__ = [
    "PLUGIN_NAME",
    "REPORT_ATTRIBUTE",
    "HostLock",
    "XdistPlugin",
    "measuring_alone",
    "result_from_wire",
    "result_to_wire",
    "worker_slot",
]

PLUGIN_NAME = "otel-overhead-xdist"
REPORT_ATTRIBUTE = "otel_overhead_results"
LOCK_PREFIX = "pytest-otel-overhead-"


def result_to_wire(result: TestResult) -> str:
    """Every field of ``result`` as JSON text, without loss."""
    return to_json(result)


def result_from_wire(text: str) -> TestResult:
    return from_json(TestResult, text)


# -- host lock -----------------------------------------------------------------------------------


class HostLock:
    """Readers-writer lock among the workers of one run on one host, built from exclusive file locks.

    ``slot`` is this worker's own lock among ``slots`` (one per worker): a test holds its worker's
    slot; a time measurement holds the gate and every slot.
    """

    def __init__(self, key: str, slot: int, slots: int, directory: Path | None = None) -> None:
        from filelock import FileLock  # only xdist workers take these locks

        base = Path(directory or tempfile.gettempdir())
        self.gate_path = base / f"{LOCK_PREFIX}{key}.gate"
        self.slot_paths = tuple(base / f"{LOCK_PREFIX}{key}.{index}.lock" for index in range(max(1, slots)))
        # thread_local=False: a hold taken on one thread may be released on another.
        self._gate = FileLock(self.gate_path, thread_local=False)
        self._slots = tuple(FileLock(path, thread_local=False) for path in self.slot_paths)
        self._own = self._slots[slot % len(self._slots)]
        self.holding_test = False

    def close(self) -> None:
        """Let go of anything still held (the operating system would on exit anyway)."""
        for lock in (*self._slots, self._gate):
            lock.release(force=True)

    def _enter_test(self) -> None:
        with self._gate:  # a measurement waiting at the gate goes first
            self._own.acquire()

    @contextmanager
    def test(self) -> Iterator[None]:
        """Held while a test runs on this worker."""
        self._enter_test()
        self.holding_test = True
        try:
            yield
        finally:
            self.holding_test = False
            self._own.release()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while a time measurement runs: no test of this run runs elsewhere on the host."""
        was_holding = self.holding_test
        if was_holding:
            # Let go of this test's hold first: two measuring workers would otherwise wait on each
            # other's test for ever.
            self._own.release()
        try:
            with ExitStack() as held:
                held.enter_context(self._gate)  # tests not yet started wait at the gate
                for lock in self._slots:  # tests already running finish first
                    held.enter_context(lock)
                yield
        finally:
            if was_holding:
                self._enter_test()


def worker_slot(workerinput: Mapping[str, Any]) -> tuple[int, int]:
    """(this worker's slot, number of slots) from pytest-xdist's ``workerinput``: gw3 of 4 is slot 3.

    A worker that replaces a crashed one gets a higher number; modulo the count it shares a slot
    with another worker, so at worst their tests take turns.
    """
    slots = max(1, int(workerinput.get("workercount", 1)))
    digits = re.sub(r"\D", "", str(workerinput.get("workerid", "")))
    return (int(digits) % slots if digits else 0), slots


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
            self.lock = HostLock(str(workerinput["testrunuid"]), *worker_slot(workerinput))

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
            for path in Path(tempfile.gettempdir()).glob(f"{LOCK_PREFIX}{key}.*"):
                path.unlink(missing_ok=True)


def measuring_alone(config: pytest.Config) -> AbstractContextManager[None]:
    """Around a time measurement: alone on the host under xdist (:meth:`XdistPlugin.measuring`), else nothing."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin.measuring() if plugin is not None else nullcontext()
