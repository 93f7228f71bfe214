"""The real workloads as instructions mode counts them: each opened again in every process that calls it.

Instructions mode forks one process per memory layout at the measured call, and a fork keeps only
the thread that forked: the ``requests`` workload's HTTP server thread and the event-loop thread
of FastAPI's test client stay behind, and a call would wait for them forever. Here each workload
is opened on its first call in a process (in a fork, during the uncounted warm-up), so the threads
it needs run beside it, as they do in ``test_real.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from apps import REQUESTS, SQLITE3, WORKLOADS


class PerProcess:
    """A workload's call, opened again whenever it is called from another process than the last time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pid = -1
        self.stack = ExitStack()
        self.call: Any = None
        self.left_behind: list[ExitStack] = []

    def __call__(self) -> Any:
        if self.pid != os.getpid():
            # The parent's stack is kept, never closed: dropped, its generators would be closed, and
            # closing the server waits for a thread that the fork did not copy.
            self.left_behind.append(self.stack)
            self.stack = ExitStack()
            self.call = self.stack.enter_context(WORKLOADS[self.name].open())
            self.pid = os.getpid()
        return self.call()


def _opened(name: str) -> Iterator[PerProcess]:
    workload = PerProcess(name)
    yield workload
    if workload.pid == os.getpid():
        workload.stack.close()


@pytest.fixture(scope="module")
def flask_counted() -> Iterator[PerProcess]:
    yield from _opened("flask")


@pytest.fixture(scope="module")
def fastapi_counted() -> Iterator[PerProcess]:
    yield from _opened("fastapi")


@pytest.fixture(scope="module")
def requests_counted() -> Iterator[PerProcess]:
    yield from _opened("requests")


@pytest.fixture(scope="module")
def sqlite3_counted() -> Iterator[PerProcess]:
    yield from _opened("sqlite3")


@pytest.fixture(scope="module")
def manual_counted() -> Iterator[PerProcess]:
    yield from _opened("manual")


@pytest.mark.otel_overhead
def test_flask(otel_overhead: Any, flask_counted: PerProcess) -> None:
    assert otel_overhead(flask_counted)["lines"] > 0


@pytest.mark.otel_overhead
def test_fastapi(otel_overhead: Any, fastapi_counted: PerProcess) -> None:
    assert otel_overhead(fastapi_counted)["lines"] > 0


@pytest.mark.otel_overhead(instrument=[REQUESTS])
def test_requests(otel_overhead: Any, requests_counted: PerProcess) -> None:
    assert otel_overhead(requests_counted)["lines"] > 0


@pytest.mark.otel_overhead(instrument=[SQLITE3])
def test_sqlite3(otel_overhead: Any, sqlite3_counted: PerProcess) -> None:
    assert otel_overhead(sqlite3_counted) > 0


@pytest.mark.otel_overhead
def test_manual(otel_overhead: Any, manual_counted: PerProcess) -> None:
    assert otel_overhead(manual_counted)["lines"] > 0
