"""Without measuring: each marked test's marker checked as it starts, and the test counted.

Registered by the entry point only when collected tests carry the marker or the fixture (or on an
xdist controller, which hears its workers' reports), so that a run without any calls nothing of the
plugin's per test. A typo fails in every run, measuring or not; what a value names is imported only
to measure.
"""

from __future__ import annotations

from collections.abc import Callable, Set

import pytest

__all__ = ["UNMEASURED", "MarkedTests", "fail_on_settings_error"]

UNMEASURED = "otel_overhead_unmeasured"
"""The keyword a test that would have been measured carries in its setup report, under xdist too."""


class MarkedTests:
    """Without measuring, per test: a marked test's marker is checked, and its setup report names it.

    The keyword in the setup report lets an xdist controller count the test too.
    """

    NAME = "otel-overhead-marked"

    def __init__(self, marked: Set[pytest.Item], nodeids: set[str]) -> None:
        self.marked = marked
        self.nodeids = nodeids

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if item not in self.marked:
            return
        from pytest_otel_overhead.settings.sources import marker_layer

        fail_on_settings_error(lambda: marker_layer(item, imports=False))
        item.keywords[UNMEASURED] = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup" and UNMEASURED in report.keywords:
            self.nodeids.add(report.nodeid)


def fail_on_settings_error(check: Callable[[], object]) -> None:
    """Run ``check``; a SettingsError fails the test with its one line (no traceback, no chained error)."""
    from pytest_otel_overhead.units import SettingsError  # loaded by then: the check parses values

    problem: str | None = None
    try:
        check()
    except SettingsError as error:
        problem = str(error)
    if problem is not None:  # failed outside the except, so the report does not chain the SettingsError
        pytest.fail(f"otel-overhead: {problem}", pytrace=False)
