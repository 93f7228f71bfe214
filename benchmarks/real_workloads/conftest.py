"""Fixtures of the real-workload project: each workload opened once per module, as a service is started once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apps import WORKLOADS, Call


def _opened(name: str) -> Iterator[Call]:
    with WORKLOADS[name].open() as call:
        yield call


@pytest.fixture(scope="module")
def flask_call() -> Iterator[Call]:
    yield from _opened("flask")


@pytest.fixture(scope="module")
def fastapi_call() -> Iterator[Call]:
    yield from _opened("fastapi")


@pytest.fixture(scope="module")
def requests_call() -> Iterator[Call]:
    yield from _opened("requests")


@pytest.fixture(scope="module")
def sqlite3_call() -> Iterator[Call]:
    yield from _opened("sqlite3")


@pytest.fixture(scope="module")
def manual_call() -> Iterator[Call]:
    yield from _opened("manual")


@pytest.fixture(scope="module")
def checkout_call() -> Iterator[Call]:
    yield from _opened("checkout")
