"""The workloads as a user of the plugin measures them: one test per workload, through the fixture.

Under ``--otel-overhead`` each call given to ``otel_overhead`` is measured in both arms; the budget
and ``max_time`` come from the command line (the plugin's defaults otherwise). ``requests`` and
``sqlite3`` are instrumented in the instrumented arm only, by the plugin's ``instrument=`` setting;
Flask and FastAPI were instrumented at import (``apps.py``), their tracers following the plugin's arms.

Near-budget runs give each test a budget of its own, placed around its workload's reference: the
harness sets ``$REAL_BUDGETS`` to a JSON object of budgets by workload (``{"flask": "6.512%"}``),
and those go into the marker's ``budget=``, as a team writes the budget it holds a test to.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from apps import REQUESTS, SQLITE3, Call

BUDGETS: dict[str, str] = json.loads(os.environ.get("REAL_BUDGETS") or "{}")


def gate(workload: str, **settings: Any) -> pytest.MarkDecorator:
    """The marker of a workload's test, with the budget the harness placed for it, if any."""
    if workload in BUDGETS:
        settings["budget"] = BUDGETS[workload]
    return pytest.mark.otel_overhead(**settings)


@gate("flask")
def test_flask(otel_overhead: Any, flask_call: Call) -> None:
    assert otel_overhead(flask_call)["lines"] > 0


@gate("fastapi")
def test_fastapi(otel_overhead: Any, fastapi_call: Call) -> None:
    assert otel_overhead(fastapi_call)["lines"] > 0


@gate("requests", instrument=[REQUESTS])
def test_requests(otel_overhead: Any, requests_call: Call) -> None:
    assert otel_overhead(requests_call)["lines"] > 0


@gate("sqlite3", instrument=[SQLITE3])
def test_sqlite3(otel_overhead: Any, sqlite3_call: Call) -> None:
    assert otel_overhead(sqlite3_call) > 0


@gate("manual")
def test_manual(otel_overhead: Any, manual_call: Call) -> None:
    assert otel_overhead(manual_call)["lines"] > 0


@gate("checkout")
def test_checkout(otel_overhead: Any, checkout_call: Call) -> None:
    assert otel_overhead(checkout_call)["lines"] > 0
