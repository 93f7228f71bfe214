"""The workloads as pytest-benchmark measures them, for its two-run gate.

``REAL_ARM=baseline`` runs the API's no-op providers and the libraries untouched;
``REAL_ARM=instrumented`` installs the SDK pipeline globally for the whole session and applies the
``instrument=`` instrumentors (``arms.fixed_arm``). The harness saves a baseline run, then compares
an instrumented run with it (``--benchmark-compare-fail=median:5%``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from apps import WORKLOADS, Call
from arms import fixed_arm

ARM = os.environ.get("REAL_ARM", "baseline")
if ARM not in ("baseline", "instrumented"):
    raise pytest.UsageError(f"$REAL_ARM: {ARM!r} is not 'baseline' or 'instrumented'")


@pytest.fixture(scope="session", autouse=True)
def arm() -> Iterator[None]:
    instrument = sorted({spec for workload in WORKLOADS.values() for spec in workload.instrument})
    with fixed_arm(ARM == "instrumented", instrument):
        yield


def test_flask(benchmark: Any, flask_call: Call) -> None:
    benchmark(flask_call)


def test_fastapi(benchmark: Any, fastapi_call: Call) -> None:
    benchmark(fastapi_call)


def test_requests(benchmark: Any, requests_call: Call) -> None:
    benchmark(requests_call)


def test_sqlite3(benchmark: Any, sqlite3_call: Call) -> None:
    benchmark(sqlite3_call)


def test_manual(benchmark: Any, manual_call: Call) -> None:
    benchmark(manual_call)


def test_checkout(benchmark: Any, checkout_call: Call) -> None:
    benchmark(checkout_call)
