"""How an HTML report of thousands of tests stays usable: what needs a look first, the rest folded in groups.

Above ``LARGE_REPORT`` tests the page opens with a bounded amount: the summary table and the test
sections of the first ``SHOWN`` tests that did not pass, and everything else (the other tests, the
long tables of every test) in ``<details>`` of ``GROUP`` tests each, inside one ``<details>`` per
kind. A browser builds a folded group but lays none of it out until it is opened, and an opened
group's sections are laid out only as they scroll into view (``content-visibility``), so neither the
first paint nor opening a group grows with the run. No scripts: the page stays self-contained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pytest_otel_overhead.reports.html_text import escape_html
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = [
    "GROUP",
    "LARGE_REPORT",
    "LARGE_STYLE",
    "MAX_LARGE_CHARTS",
    "MAX_OVERVIEW_BARS",
    "SHOWN",
    "TABLE_GROUP",
    "attention_first",
    "attention_table",
    "folded",
    "folded_table",
    "grouped_rows",
    "large_chart_rows",
    "rows_drawn",
    "table_of_tests",
]

LARGE_REPORT = 100
"""Above this many tests, the page puts the tests that did not pass first and folds the rest away."""
SHOWN = 100
"""A large report shows this many tests that did not pass unfolded, in its summary and its sections."""
GROUP = 100
"""Test sections per folded group: opening one lays out this many at most."""
TABLE_GROUP = 500
"""Tests per folded group of a table (a row or a few each)."""
MAX_LARGE_CHARTS = 10
"""A large report draws per-test charts for this many tests (the first that did not pass): at about
half a second a chart, 40 of them were most of the time to write a page of 5,000 tests."""
MAX_OVERVIEW_BARS = 200
"""The overview chart of a large report shows at most this many tests that did not pass (all are in the table)."""

LARGE_STYLE = """
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
details details{margin-left:1rem}details details summary{font-weight:400}
details section{content-visibility:auto;contain-intrinsic-size:auto 28rem}
"""
"""Sections in a folded group are laid out as they come into view, so opening a group stays quick."""

Indexed = tuple[int, TestResult]


def attention_first(results: Sequence[TestResult]) -> tuple[list[Indexed], list[Indexed]]:
    """The tests (with their place in the run) that did not pass, and those that passed, each in run order."""
    indexed = list(enumerate(results))
    attention = [(i, r) for i, r in indexed if r.outcome != Verdict.PASS.value]
    passing = [(i, r) for i, r in indexed if r.outcome == Verdict.PASS.value]
    return attention, passing


def rows_drawn(results: Sequence[TestResult]) -> set[str]:
    """The node ids of the tests whose raw rows the page uses: every test of a page of at most
    ``LARGE_REPORT`` (charts for the first ones, a note for the others), else the ``MAX_LARGE_CHARTS``
    charted first. A merge reads only these rows into numbers: the others stay text."""
    if len(results) <= LARGE_REPORT:
        return {result.nodeid for result in results}
    attention, passing = attention_first(results)
    return {result.nodeid for _, result in (attention + passing)[:MAX_LARGE_CHARTS]}


def folded(label: str, pieces: Sequence[str], size: int = GROUP) -> str:
    """``pieces`` (test sections) folded under ``label``; more than ``size`` of them in groups of ``size``."""
    if not pieces:
        return ""
    count = len(pieces)
    body = "".join(pieces)
    if count > size:
        body = "".join(
            f"<details><summary>tests {start + 1:,}–{min(start + size, count):,} of {count:,}</summary>"
            + "".join(pieces[start : start + size])
            + "</details>"
            for start in range(0, count, size)
        )
    return f"<details><summary>{escape_html(label)}</summary>{body}</details>"


def grouped_rows(rows: Sequence[Sequence[str]], size: int) -> list[list[Sequence[str]]]:
    """Rows of a grouped table (a test's first row names it) in chunks of ``size`` tests, a test's rows together."""
    chunks: list[list[Sequence[str]]] = []
    tests = 0
    for row in rows:
        if not chunks or (row[0] and tests == size):
            chunks.append([])
            tests = 0
        tests += 1 if row[0] else 0
        chunks[-1].append(row)
    return chunks


def folded_table(label: str, rows: Sequence[Sequence[str]], make: Callable[[Sequence[Sequence[str]]], str]) -> str:
    """A table of many tests' rows folded under ``label``; more than ``TABLE_GROUP`` tests in tables of that many.

    ``make`` makes a table of some of the rows (``html_text.table``), with the columns those rows fill."""
    if not rows:
        return ""
    chunks = grouped_rows(rows, TABLE_GROUP)
    body = make(rows) if len(chunks) == 1 else ""
    total, first = sum(1 for row in rows if row[0]), 1
    for chunk in chunks if len(chunks) > 1 else []:
        count = sum(1 for row in chunk if row[0])
        body += f"<details><summary>tests {first:,}–{first + count - 1:,} of {total:,}</summary>{make(chunk)}</details>"
        first += count
    return f"<details><summary>{escape_html(label)}</summary>{body}</details>"


def table_of_tests(
    tests: int, label: str, rows: Sequence[Sequence[str]], make: Callable[[Sequence[Sequence[str]]], str]
) -> str:
    """``make(rows)``: in a report of more than ``LARGE_REPORT`` tests, folded under ``label`` (``folded_table``)."""
    return folded_table(label, rows, make) if tests > LARGE_REPORT else make(rows)


def attention_table(
    results: Sequence[TestResult],
    rows_by_test: Mapping[int, Sequence[Sequence[str]]],
    make: Callable[[Sequence[Sequence[str]]], str],
) -> str:
    """The summary table of a large report: the rows of the first ``SHOWN`` tests that did not pass, and
    the rows of the others folded (``rows_by_test``: each test's rows, by its place in the run)."""
    attention, passing = attention_first(results)
    parts = (attention[:SHOWN], attention[SHOWN:], passing)
    rows = [[row for i, _ in tests for row in rows_by_test.get(i, ())] for tests in parts]
    return (
        (make(rows[0]) if rows[0] else "")
        + folded_table(f"the rows of {len(attention) - SHOWN:,} more tests that did not pass", rows[1], make)
        + folded_table(f"the rows of {len(passing):,} tests that passed", rows[2], make)
    )


def large_chart_rows(
    results: Sequence[TestResult], rows: Sequence[tuple[str, MetricResult]]
) -> tuple[list[tuple[str, MetricResult]], str]:
    """A large report's chart: the tests that did not pass, at most ``MAX_OVERVIEW_BARS``; a chart of
    thousands of bars is neither drawn quickly nor read."""
    passing = {r.nodeid for r in results if r.outcome == Verdict.PASS.value}
    shown = [row for row in rows if row[0].split(" · ", 1)[0] not in passing][:MAX_OVERVIEW_BARS]
    line = (
        f"{len(results)} tests: the chart shows {len(shown)} measurements of tests that did not pass "
        f"(at most {MAX_OVERVIEW_BARS}); the table lists every test."
    )
    return shown, line
