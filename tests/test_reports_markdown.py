"""The Markdown summary: escaping of user text, the results table and the comparison section."""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

from pytest_otel_overhead.formatting import visible
from pytest_otel_overhead.history.compare import Comparison, MetricChange, TestChange, compare_runs, parse_criteria
from pytest_otel_overhead.history.reader import load_run
from pytest_otel_overhead.history.store import RunRecord, Store
from pytest_otel_overhead.reports.html import html_report
from pytest_otel_overhead.reports.markdown import escape, markdown_report
from pytest_otel_overhead.results import AGAINST_ARMS_NOTE, PipelineHealth, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

NASTY = "tests/t.py::test_x[a|b-<script>alert(1)</script>-*bold*-$x$-`code`-[link](http://e.invalid)]"


def _run(*results: TestResult, **fields: object) -> RunRecord:
    env = {"python": "3.11.7", "implementation": "CPython", "cpu_count": 2, "packages": {"opentelemetry-sdk": "1.45"}}
    return RunRecord(results=results, environment=env, created="2025-01-01T00:00:00+00:00", **fields)  # type: ignore[arg-type]


def _cells(line: str) -> list[str]:
    """Table cells split on unescaped pipes, as GitHub splits them."""
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


def test_escape_shows_text_as_written() -> None:
    assert escape("a|b") == "a\\|b"
    assert escape("<script>") == "&lt;script&gt;"
    assert escape("*x* _y_ [z] `c` $m$ ~s~ #h !i") == "\\*x\\* \\_y\\_ \\[z\\] \\`c\\` \\$m\\$ \\~s\\~ \\#h \\!i"
    assert escape("two\nlines") == "two\\\\nlines"  # one line in a table cell, the newline shown as \n


def test_results_table_escapes_ids_and_keeps_its_shape(make_result: Callable[..., TestResult]) -> None:
    text = markdown_report(_run(make_result(NASTY), make_result("tests/t.py::test_plain")))
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = _cells(rows[0])
    assert header[0].strip() == "Test" and len(header) == 10
    assert all(len(_cells(row)) == len(header) for row in rows), "an id's pipe must not add a column"
    assert "✅ PASS" in text and "**2 measured: 2 PASS, 0 FAIL, 0 INCONCLUSIVE**" in text
    assert "CPython 3.11.7, opentelemetry-sdk 1.45, 2 CPUs" in text


def test_every_budgeted_metric_gets_a_row_and_notes_explain_undecided_ones(
    make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    budget = Budget("relative", 0.05)
    result = make_result(
        "t.py::t",
        metrics=(
            make_metric("cpu", overhead=0.08, ci_low=0.06, ci_high=0.1, budget=budget, verdict=Verdict.FAIL),
            make_metric("latency_p99", overhead=0.04, budget=budget, verdict=Verdict.INCONCLUSIVE, note="too noisy"),
        ),
    )
    text = markdown_report(_run(result))
    assert "❌ FAIL" in text and "| CPU |" in text and "| latency p99 |" in text
    assert "+8.0% \\[+6.0%, +10.0%\\]" in text
    assert "<details><summary>Notes</summary>" in text and "t.py::t, latency p99: too noisy" in text


def test_comparison_section_with_differences(make_result: Callable[..., TestResult]) -> None:
    def samples(overhead: float) -> tuple[tuple[float, float, float, float], ...]:
        return tuple(
            (1e-3, 1e-3 * (1 + overhead) * (1 + 0.001 * (i % 7 - 3)), 1e-3, 1e-3 * (1 + overhead)) for i in range(60)
        )

    before = _run(dataclasses.replace(make_result(NASTY), samples=samples(0.05)), name="base")
    after = _run(dataclasses.replace(make_result(NASTY), samples=samples(0.40)))
    after = dataclasses.replace(after, environment={**after.environment, "python": "3.12.0"})
    comparison = compare_runs(before, after, parse_criteria("cpu:+5pp", "t"))
    text = markdown_report(after, comparison, warnings=["a warning with <b>markup</b>"])
    assert "### Compared with run 'base'" in text
    assert "Fails on growth beyond `cpu:+5pp`." in text
    assert "> [!WARNING]" in text and "Python 3.11.7 → 3.12.0" in text
    assert "a warning with &lt;b&gt;markup&lt;/b&gt;" in text
    assert "❌ regressed" in text and "+5.0% | +40.0% |" in text
    assert "<script>" not in text


def test_comparison_cells_in_percent_and_percentage_points(make_result: Callable[..., TestResult]) -> None:
    run = _run(make_result("t.py::t"), name="base")
    change = MetricChange("cpu", 0.031, 0.098, (0.06, 0.067, math.inf), None, (0, 0.05, 0.1), 40, 40, 0.95)
    text = markdown_report(run, Comparison(run, run, (TestChange("t.py::t", (change,)),)))
    assert "| t.py::t | CPU | +3.1% | +9.8% | +6.7pp \\[+6.0pp, ∞\\] |  |" in text


def test_relative_and_per_call_overheads_have_a_column_each_and_the_verdict_names_its_reason(
    make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    absolute = Budget("absolute", 500e-6)
    relative = Budget("relative", 0.25)
    result = dataclasses.replace(
        make_result(
            "t.py::t",
            metrics=(
                make_metric("cpu", overhead=60e-6, ci_low=55e-6, ci_high=70e-6, budget=absolute, verdict=Verdict.PASS),
                make_metric("latency_p95", overhead=0.1, ci_low=0.05, ci_high=0.2, budget=relative,
                            verdict=Verdict.PASS),
            ),
            settings=MeasureSettings(
                budgets=(("cpu", absolute), ("latency_p95", relative)),
                sources=(("cpu", "marker on t.py::t"), ("latency_p95", "--otel-overhead-latency-p95")),
            ),
        ),
        health=PipelineHealth(calls=10, started=30, sampled=30, exported=0, export_calls=1, max_dropped=0),
    )  # fmt: skip
    rows = [_cells(line) for line in markdown_report(_run(result)).splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    assert header[3:5] == ["Overhead % (95% CI)", "Overhead/call (95% CI)"]
    cpu, latency = ({h: c.strip() for h, c in zip(header, row, strict=True)} for row in rows[2:])
    assert cpu["Verdict"] == "❌ FAIL (max\\_dropped 0)"
    assert (cpu["Overhead % (95% CI)"], cpu["Overhead/call (95% CI)"]) == ("—", "+60.0 µs \\[+55.0 µs, +70.0 µs\\]")
    assert cpu["Budget"] == "+500.0 µs (marker)"
    assert (latency["Overhead % (95% CI)"], latency["Overhead/call (95% CI)"]) == ("+10.0% \\[+5.0%, +20.0%\\]", "—")
    assert latency["Budget"] == "25.0% (--otel-overhead-latency-p95)"


def test_an_estimate_against_the_arms_figures_is_marked_and_explained(
    make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    budget = Budget("relative", 0.05)
    against = dataclasses.replace(
        make_metric("cpu", overhead=0.012, budget=budget, verdict=Verdict.PASS), instrumented=0.9e-3
    )
    text = markdown_report(_run(make_result("t.py::t", metrics=(against,))))
    assert "+1.2%\\*" in text and escape(AGAINST_ARMS_NOTE) in text


CONTROLS = "t.py::test_x[\x1b]0;owned\x07\x1b[2J-\x9b31m-\x7f-tab\there]"


def test_control_characters_from_a_saved_run_are_shown_not_obeyed(
    tmp_path: Path, make_result: Callable[..., TestResult]
) -> None:
    """ESC, BEL, C1 and DEL in a test id read back from a saved run reach neither report raw (issue 21)."""
    path = Store(tmp_path).save(_run(make_result(CONTROLS)), "controls")
    run = load_run(path)
    assert run.results[0].nodeid == CONTROLS
    shown = "\\x1b]0;owned\\x07\\x1b[2J-\\x9b31m-\\x7f-tab\\there"
    for text in (markdown_report(run, compare_runs(run, run)), html_report(run, charts=False)):
        raw = [c for c in text if unicodedata.category(c) == "Cc" and c != "\n"]
        assert raw == [], f"control characters reach the report: {raw!r}"
    assert visible(CONTROLS) == "t.py::test_x[" + shown + "]"
    assert escape(CONTROLS).startswith(r"t.py::test\_x\[\\x1b\]0;owned\\x07"), r"GitHub shows \x1b]0;owned\x07"
    assert escape(CONTROLS) in markdown_report(run)
    assert shown in html_report(run, charts=False).replace("<wbr>", "")


def test_visible_keeps_printable_text_as_it_is() -> None:
    text = "tests/t.py::test_ü[é-中-<b>-\\-  spaces]"
    assert visible(text) is text
    assert visible("a\nb\x00c\ud800") == "a\\nb\\x00c\\ud800"


def test_tests_not_measured_are_listed_with_why_and_folded_when_many(make_result: Callable[..., TestResult]) -> None:
    run = RunRecord(results=(make_result("t.py::test_a"),), environment={}, created="now")
    entry = {"nodeid": "t.py::test_[x|y]", "outcome": "skipped", "reason": "no *collector*\x1b"}
    few = markdown_report(run, unmeasured=[entry])
    assert "**Not measured:** 1 test to measure skipped or errored before a result." in few
    assert "| t.py::test\\_\\[x\\|y\\] | skipped | no \\*collector\\*\\\\x1b |" in few  # one cell each, escaped
    assert "<details><summary>Not measured</summary>" not in few
    many = markdown_report(run, unmeasured=[{**entry, "nodeid": f"t.py::test_{k}"} for k in range(11)])
    assert "**Not measured:** 11 tests to measure" in many and "<details><summary>Not measured</summary>" in many
    assert "Not measured" not in markdown_report(run)


def test_tests_not_measured_have_a_section_of_the_html_report(make_result: Callable[..., TestResult]) -> None:
    run = RunRecord(results=(make_result("t.py::test_a"),), environment={}, created="now")
    entry = {"nodeid": "t.py::test_b", "outcome": "error", "reason": "RuntimeError: <no database>"}
    page = html_report(run, charts=False, unmeasured=[entry])
    section = page.split("<h2>Not measured</h2>", 1)[1].split("<h2>", 1)[0]
    assert "1 test to measure skipped or errored before a result" in section
    assert "test_b" in section and "RuntimeError: &lt;no database&gt;" in section and ">error<" in section
    assert page.index("<h2>Not measured</h2>") < page.index("<h2>Tests</h2>")
    assert "Not measured" not in html_report(run, charts=False)
