"""Tests that were to be measured and were not: skipped, errored, or failed before a result.

A session's results hold measured tests only. When a suite is sharded over CI jobs and merged
(docs/sharding.md), a marked test or fixture call that one shard skipped or could not measure would
vanish from the merged run; this plugin lists them, with why, in the JSON report's ``unmeasured``
section. Items are tagged at collection, so that the controller of an xdist run (which has reports,
not items) recognises them; results that arrive from workers are in by the session's end, where the
list is settled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_otel_overhead.settings.flags import to_measure

if TYPE_CHECKING:
    from pytest_otel_overhead.session import OverheadSession

__all__ = ["KEYWORD", "PLUGIN_NAME", "UnmeasuredPlugin", "entry_reason"]

PLUGIN_NAME = "otel-overhead-unmeasured"
KEYWORD = "otel_overhead_to_measure"
"""The keyword a test that was to be measured carries into its reports."""
_REASON_CHARS = 300


def entry_reason(report: pytest.TestReport) -> str:
    """One line saying why: a skip's reason, an exception's first line, or the last line of a failure's report."""
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2]).removeprefix("Skipped: ")
    elif crash is not None:  # an exception: its type and message, as pytest's short summary shows it
        text = str(crash.message).splitlines()[0] if crash.message else ""
    else:
        lines = [line.strip() for line in report.longreprtext.splitlines() if line.strip()]
        text = lines[-1] if lines else ""
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


class UnmeasuredPlugin:
    """Registered with the measuring session: collects the unmeasured, and hands them to the session at its end."""

    def __init__(self, session: OverheadSession) -> None:
        self.session = session
        self.seen: dict[str, dict[str, str]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if to_measure(item):
                item.keywords[KEYWORD] = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if KEYWORD not in report.keywords or report.passed or report.nodeid in self.seen:
            return
        if getattr(report, "wasxfail", None) is not None:
            return  # an expected failure, as the test says
        outcome = "skipped" if report.skipped else "failed" if report.when == "call" else "error"
        self.seen[report.nodeid] = {"nodeid": report.nodeid, "outcome": outcome, "reason": entry_reason(report)}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        measured = {result.nodeid.split("#", 1)[0] for result in self.session.results}
        self.session.unmeasured = [entry for nodeid, entry in self.seen.items() if nodeid not in measured]
