"""Tests that were to be measured and were not: the JSON report lists them, serial and under xdist."""

from __future__ import annotations

import json

import pytest
from instant_engine import INSTANT_ENGINE

SUITE = """
import pytest


@pytest.fixture
def broken():
    raise RuntimeError("no database here")


@pytest.mark.otel_overhead(budget="5%")
def test_measured():
    pass


@pytest.mark.otel_overhead(budget="5%")
@pytest.mark.skip(reason="needs a collector")
def test_skipped():
    pass


@pytest.mark.otel_overhead(budget="5%")
def test_errored(broken):
    pass


def test_fixture_call_never_made(otel_overhead):
    assert False, "failed before measuring"


@pytest.mark.otel_overhead(budget="5%")
@pytest.mark.xfail(reason="known", strict=True)
def test_expected_to_fail():
    assert False


def test_plain_skip():
    pytest.skip("not a measured test")
"""

EXPECTED = [
    {"nodeid": "test_suite.py::test_skipped", "outcome": "skipped", "reason": "needs a collector"},
    {"nodeid": "test_suite.py::test_errored", "outcome": "error", "reason": "RuntimeError: no database here"},
    {
        "nodeid": "test_suite.py::test_fixture_call_never_made",
        "outcome": "failed",
        "reason": "AssertionError: failed before measuring",
    },
]


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_unmeasured_tests_are_listed_with_why(pytester: pytest.Pytester, xdist: tuple[str, ...]) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_suite=SUITE)
    done = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-json=r.json", *xdist
    )
    done.assert_outcomes(passed=1, skipped=2, errors=1, failed=1, xfailed=1)
    document = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert [test["nodeid"] for test in document["tests"]] == ["test_suite.py::test_measured"]
    assert sorted(document["unmeasured"], key=lambda e: e["nodeid"]) == sorted(EXPECTED, key=lambda e: e["nodeid"])


def test_a_run_with_everything_measured_has_no_section(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_suite="import pytest\n\n@pytest.mark.otel_overhead\ndef test_measured():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-json=r.json")
    assert "unmeasured" not in json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))


def test_the_session_reports_list_the_tests_not_measured(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-markdown=r.md", "--otel-overhead-html=r.html"
    )
    markdown = (pytester.path / "r.md").read_text(encoding="utf-8")
    assert "**Not measured:** 3 tests to measure skipped or errored before a result." in markdown
    assert "| test\\_suite.py::test\\_errored | error | RuntimeError: no database here |" in markdown
    page = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "needs a collector" in page.split("<h2>Not measured</h2>", 1)[1].split("<h2>", 1)[0]
