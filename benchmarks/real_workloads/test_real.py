"""The workloads as a user of the plugin measures them: one test per workload, through the fixture.

Under ``--otel-overhead`` each call given to ``otel_overhead`` is measured in both arms; the budget
and ``max_time`` come from the command line (the plugin's defaults otherwise). ``requests`` and
``sqlite3`` are instrumented in the instrumented arm only, by the plugin's ``instrument=`` setting;
Flask and FastAPI were instrumented at import (``apps.py``), their tracers following the plugin's arms.
"""

from __future__ import annotations

from typing import Any

import pytest
from apps import REQUESTS, SQLITE3, Call


@pytest.mark.otel_overhead
def test_flask(otel_overhead: Any, flask_call: Call) -> None:
    assert otel_overhead(flask_call)["lines"] > 0


@pytest.mark.otel_overhead
def test_fastapi(otel_overhead: Any, fastapi_call: Call) -> None:
    assert otel_overhead(fastapi_call)["lines"] > 0


@pytest.mark.otel_overhead(instrument=[REQUESTS])
def test_requests(otel_overhead: Any, requests_call: Call) -> None:
    assert otel_overhead(requests_call)["lines"] > 0


@pytest.mark.otel_overhead(instrument=[SQLITE3])
def test_sqlite3(otel_overhead: Any, sqlite3_call: Call) -> None:
    assert otel_overhead(sqlite3_call) > 0


@pytest.mark.otel_overhead
def test_manual(otel_overhead: Any, manual_call: Call) -> None:
    assert otel_overhead(manual_call)["lines"] > 0
