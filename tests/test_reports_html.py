"""The HTML report: self-contained, escaped, charts with matplotlib and tables without (tests in Chromium elsewhere)."""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from collections.abc import Callable

import pytest

from pytest_otel_overhead.history.compare import Comparison, MetricChange, TestChange, compare_runs, parse_criteria
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.reports import html as html_module
from pytest_otel_overhead.reports.html import CHARTS_EXTRA, NO_PAIRED_ESTIMATE, html_report
from pytest_otel_overhead.reports.html_comparison import RELATIVE_LEFT_OUT, relative_is_telling
from pytest_otel_overhead.reports.html_text import wrappable_id
from pytest_otel_overhead.results import PipelineHealth, TestResult
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

NASTY = 'tests/t.py::test_x[<script>alert("x")</script>-$a$-&amp;-\\n]'


def _samples(overhead: float, seed: int) -> tuple[tuple[float, float, float, float], ...]:
    rng = random.Random(seed)
    rows = []
    for _ in range(80):
        b = 1e-3 * math.exp(rng.gauss(0, 0.1))
        i = b * (1 + overhead) * math.exp(rng.gauss(0, 0.05))
        rows.append((b, i, b * 1.2, i * 1.2))
    return tuple(rows)


@pytest.fixture
def runs(make_result: Callable[..., TestResult], make_metric: Callable) -> list[RunRecord]:
    """Three runs of two tests, oldest first; the nasty id grows from 2% to 8% overhead."""
    budget = Budget("relative", 0.05)

    def result(nodeid: str, overhead: float, seed: int) -> TestResult:
        verdict = Verdict.FAIL if overhead > 0.06 else Verdict.PASS
        metrics = (
            make_metric("cpu", overhead=overhead, ci_low=overhead - 0.01, ci_high=overhead + 0.01, budget=budget,
                        verdict=verdict),
            make_metric("wall", overhead=overhead),
            make_metric("latency_p50", overhead=overhead),
            make_metric("latency_p95", overhead=overhead * 2),
            make_metric("latency_p99", overhead=overhead * 3),
            make_metric("heap", baseline=4096.0, overhead=0.5),
        )  # fmt: skip
        return dataclasses.replace(make_result(nodeid, metrics=metrics), samples=_samples(overhead, seed))

    made = []
    for index, overhead in enumerate((0.02, 0.03, 0.08)):
        made.append(
            RunRecord(
                results=(result(NASTY, overhead, index), result("tests/t.py::test_plain", 0.01, index + 10)),
                environment={"python": "3.11.7", "implementation": "CPython", "cpu_count": 2, "packages": {}},
                created=f"2025-01-0{index + 1}T00:00:00+00:00",
                name=f"run{index}",
                git={"commit": "abcdef0123456789", "dirty": index == 2},
            )
        )
    return made


def _check_self_contained(text: str) -> None:
    lowered = text.lower()
    assert "<script" not in lowered, "no scripts, and the id's <script> is escaped"
    assert "<link" not in lowered and "<iframe" not in lowered and "@import" not in lowered
    assert " src=" not in lowered and 'href="http' not in lowered and "url(http" not in lowered


def test_report_escapes_user_text(runs: list[RunRecord]) -> None:
    text = html_report(runs[-1], charts=False, warnings=["<b>warned</b>"])
    _check_self_contained(text)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/<wbr>script&gt;" in text  # may wrap after its "/", nowhere else
    assert "&lt;b&gt;warned&lt;/b&gt;" in text
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_without_matplotlib_the_tables_stay_and_the_extra_is_named(
    runs: list[RunRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "pytest_otel_overhead.reports.charts", raising=False)
    assert not html_module.charts_available()
    text = html_report(runs[-1], compare_runs(runs[0], runs[-1]), runs[:-1])
    assert "<svg" not in text
    assert f"Install <code>{CHARTS_EXTRA}</code>" in text and "matplotlib is not installed" in text
    for heading in ("Overhead against budget", "Compared with an earlier run", "History", "Heap", "Pipeline health"):
        assert f"<h2>{heading}</h2>" in text
    forced = html_report(runs[-1], charts=True)
    assert "matplotlib could not be imported" in forced and "<svg" not in forced


def test_charts_with_matplotlib(runs: list[RunRecord]) -> None:
    pytest.importorskip("matplotlib")
    comparison = compare_runs(runs[0], runs[-1], parse_criteria("cpu:+1pp", "t"))
    text = html_report(runs[-1], comparison, runs[:-1], charts=True)
    _check_self_contained(text)
    assert "Charts are left out" not in text
    # overview, heap, one trend per test, one set of distributions per test
    assert text.count("<svg") == 1 + 1 + 2 + 2
    assert 'aria-label="overhead of each test against its budget"' in text
    overview = text.split("<svg")[1]
    assert "&lt;script&gt;" in overview and "-$a$-" in overview, "ids in charts are literal text, not markup or math"


def test_a_chart_that_fails_does_not_cost_the_report(runs: list[RunRecord], monkeypatch: pytest.MonkeyPatch) -> None:
    charts = pytest.importorskip("pytest_otel_overhead.reports.charts")

    def broken(result: TestResult) -> str:
        raise RuntimeError("no luck")

    monkeypatch.setattr(charts, "pairs_chart", broken)
    text = html_report(runs[-1], charts=True)
    assert "chart not drawn (RuntimeError: no luck)" in text
    assert "<h2>Pipeline health</h2>" in text


def test_trend_needs_two_runs(runs: list[RunRecord]) -> None:
    assert "<h2>History</h2>" not in html_report(runs[0], charts=False)
    text = html_report(runs[-1], history=runs[:-1], charts=False)
    assert "<h2>History</h2>" in text and "this run" in text and "run0" in text


def test_comparison_cells_in_percent_and_percentage_points(runs: list[RunRecord]) -> None:
    run = runs[0]
    change = MetricChange(
        "cpu", 0.031, 0.098, (0.06, 0.067, math.inf), (1.5, 2.16, math.inf), (0, 0.05, 0.1), 40, 40, 0.95
    )
    text = html_report(run, Comparison(run, run, (TestChange("t.py::t", (change,)),)), charts=False)
    assert (
        '<td class="num">+3.1%</td><td class="num">+9.8%</td><td class="num">+6.7pp [+6.0pp, ∞]</td>'
        '<td class="num">+216% [+150.0%, ∞]</td>'
    ) in text


def test_tables_keep_relative_and_per_call_overheads_apart_and_name_the_verdicts_reason(
    runs: list[RunRecord], make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    absolute = Budget("absolute", 500e-6)
    lossy = dataclasses.replace(
        make_result(
            "t.py::lossy",
            metrics=(
                make_metric("cpu", overhead=60e-6, ci_low=55e-6, ci_high=70e-6, budget=absolute, verdict=Verdict.PASS),
                make_metric("wall", overhead=0.8, ci_low=0.7, ci_high=0.9),
            ),
        ),
        health=PipelineHealth(calls=10, started=30, sampled=30, exported=0, export_calls=1, max_dropped=0),
    )
    run = dataclasses.replace(runs[-1], results=(*runs[-1].results, lossy))
    text = html_report(run, charts=False)
    summary = text.split("<h2>Overhead against budget</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<th>overhead % (95% CI)</th><th>overhead/call (95% CI)</th>" in summary
    assert '<span class="FAIL">FAIL (max_dropped 0)</span>' in summary
    assert '<td class="num">+60.0\xa0µs [+55.0\xa0µs, +70.0\xa0µs]</td>' in summary  # breaks only before "["
    assert "+500.0\xa0µs (default)" in summary  # the budget, and where it came from
    details = text.split("<h2>Tests</h2>", 1)[1]
    assert 't.py::<wbr>lossy <span class="FAIL">FAIL (max_dropped 0)</span></h3>' in details
    heap = text.split("<h2>Heap</h2>", 1)[1].split("<h2>", 1)[0]
    # 4 KiB baselines: below HEAP_BYTES_BELOW, so the unbudgeted heap rows read in bytes, not +50.0%.
    assert "<th>overhead/call (95% CI)</th>" in heap and "<th>overhead % (95% CI)</th>" not in heap
    assert '<td class="num">+2.0\xa0KiB</td>' in heap and "+50.0%" not in heap
    assert " - " not in text and ">-<" not in text and "n/a" not in text


def test_test_ids_wrap_after_their_separators_and_nowhere_else(runs: list[RunRecord]) -> None:
    assert wrappable_id("examples/test_service.py::test_process_order[a-b]") == (
        "examples/<wbr>test_service.py::<wbr>test_process_order[<wbr>a-<wbr>b]"
    )
    text = html_report(runs[-1], charts=False)
    style = text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "break-all" not in style and "anywhere" not in style, "the browser must not break inside a word"
    assert "tests/<wbr>t.py::<wbr>test_plain" in text and "tests/t.py::test_plain<" not in text


def _change(before: float, relative: tuple[float, float, float]) -> MetricChange:
    return MetricChange("cpu", before, before + 0.001, (-0.05, 0.001, 0.05), relative, (0, 0.0, 0.1), 40, 40, 0.95)


def test_a_relative_change_is_shown_only_where_it_means_something(runs: list[RunRecord]) -> None:
    run = runs[0]
    near_zero = _change(0.002, (-3.31, -0.10, 3.29))  # relative to +0.2%: anything goes
    uncertain = _change(0.04, (-1.5, 0.03, 1.4))
    telling = _change(0.40, (-0.12, 0.0025, 0.13))
    assert not relative_is_telling(near_zero) and not relative_is_telling(uncertain) and relative_is_telling(telling)
    tests = (TestChange("t.py::a", (near_zero,)), TestChange("t.py::b", (uncertain,)))
    hidden = html_report(run, Comparison(run, run, tests), charts=False)
    section = hidden.split("<h2>Compared with an earlier run</h2>", 1)[1].split("<h2>", 1)[0]
    assert "331" not in section and "<th>relative change</th>" not in section, "no column of dashes"
    assert "+0.1pp" in section and RELATIVE_LEFT_OUT in section.replace("&#x27;", "'")
    shown = html_report(run, Comparison(run, run, (TestChange("t.py::c", (telling,)),)), charts=False)
    section = shown.split("<h2>Compared with an earlier run</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<th>relative change</th>" in section and "+0% [-12.0%, +13.0%]" in section.replace("\xa0", " ")
    assert "is left out where" not in section


def test_the_comparison_has_a_verdict_column_only_with_a_criterion(runs: list[RunRecord]) -> None:
    def section(comparison: Comparison) -> str:
        text = html_report(runs[-1], comparison, charts=False)
        return text.split("<h2>Compared with an earlier run</h2>", 1)[1].split("<h2>", 1)[0]

    assert "<th>verdict</th>" not in section(compare_runs(runs[0], runs[-1]))
    assert "<th>verdict</th>" in section(compare_runs(runs[0], runs[-1], parse_criteria("cpu:+1pp", "t")))
    assert "<th>note</th>" not in section(compare_runs(runs[0], runs[-1]))


def test_a_metric_measured_in_no_pair_shows_no_figures(
    make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    p99 = dataclasses.replace(make_metric("latency_p99", baseline=0.0173, overhead=math.nan), n=0)
    result = make_result("t.py::short_blocks", metrics=(make_result().metrics[0], p99))
    text = html_report(RunRecord(results=(result,), environment={}, created=""), charts=False)
    details = text.split("<h2>Tests</h2>", 1)[1]
    row = details.split("latency p99</td>", 1)[1].split("</tr>", 1)[0]
    assert "17.30" not in row and "ms" not in row and NO_PAIRED_ESTIMATE in row


def test_the_overview_turns_logarithmic_when_tests_lie_far_apart(make_metric: Callable) -> None:
    charts = pytest.importorskip("pytest_otel_overhead.reports.charts")
    rows = [
        charts.OverheadRow(f"t.py::t{i}", overhead, overhead - 0.01, overhead + 0.01, 0.05, "PASS")
        for i, overhead in enumerate((0.02, 0.021, 0.019))
    ]
    near = charts.overhead_chart(rows)
    assert "logarithmic" not in near and "+2.0% / 5.0% PASS" in near
    far = charts.overhead_chart([*rows, charts.OverheadRow("t.py::far", 3.33, 2.9, 3.6, 0.05, "FAIL")])
    assert "linear to ±10%, logarithmic beyond" in far and "+333.0% / 5.0% FAIL" in far


def test_legends_stand_outside_the_plotted_area() -> None:
    charts = pytest.importorskip("pytest_otel_overhead.reports.charts")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    canvas = FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.bar([0, 1], [5, 9], label="baseline")
    charts.legend_below(ax)
    renderer = canvas.get_renderer()
    legend = ax.get_legend()
    assert legend is not None
    assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0
    empty = Figure().add_subplot()
    charts.legend_below(empty)
    assert empty.get_legend() is None, "no legend that names nothing"


def test_a_large_report_puts_tests_that_did_not_pass_first_and_folds_the_rest(
    make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    budget = Budget("relative", 0.05)
    results = []
    for index in range(html_module.LARGE_REPORT + 50):
        overhead = 0.08 if index % 10 == 7 else 0.01
        verdict = Verdict.FAIL if overhead > 0.05 else Verdict.PASS
        metric = make_metric("cpu", overhead=overhead, ci_low=overhead - 0.005, ci_high=overhead + 0.005,
                             budget=budget, verdict=verdict)  # fmt: skip
        results.append(make_result(f"tests/t.py::test_{index}", metrics=(metric,)))
    run = RunRecord(results=tuple(results), environment={}, created="2025-01-01T00:00:00+00:00")
    page = html_report(run, charts=False)
    failing = [f'id="test-{i}"' for i in range(len(results)) if i % 10 == 7]
    folded = page.index("<details><summary>135 tests that passed</summary>")
    assert all(page.index(section) < folded for section in failing)
    assert page.index('id="test-0"') > folded  # the first test passed: folded, after the failing ones
    assert "15 tests that did not pass first, then 135 that passed, folded; charts for the first 10 only" in page
    assert "the chart shows 15 measurements of tests that did not pass (at most 200)" in page


def test_a_small_report_keeps_the_run_order_unfolded(runs: list[RunRecord]) -> None:
    page = html_report(runs[-1], charts=False)
    assert "<details>" not in page and page.index('id="test-0"') < page.index('id="test-1"')


def test_a_report_of_many_failing_tests_shows_the_first_and_folds_the_rest_in_groups(
    make_result: Callable[..., TestResult], make_metric: Callable
) -> None:
    from pytest_otel_overhead.reports.html_large import GROUP, SHOWN, TABLE_GROUP

    budget = Budget("relative", 0.05)
    failing_count = SHOWN + 2 * GROUP + 5
    results = []
    for index in range(failing_count + TABLE_GROUP + 7):
        overhead = 0.08 if index < failing_count else 0.01
        verdict = Verdict.FAIL if overhead > 0.05 else Verdict.PASS
        metric = make_metric("cpu", overhead=overhead, ci_low=overhead - 0.005, ci_high=overhead + 0.005,
                             budget=budget, verdict=verdict)  # fmt: skip
        results.append(make_result(f"tests/t.py::test_{index}", metrics=(metric,)))
    page = html_report(RunRecord(results=tuple(results), environment={}, created="now"), charts=False)
    details = page.split("<h2>Tests</h2>", 1)[1]
    more = details.index(f"<details><summary>{2 * GROUP + 5:,} more tests that did not pass</summary>")
    assert details.count('<section id="test-', 0, more) == SHOWN  # unfolded: the first that did not pass
    groups = details[more:].split("<details><summary>tests ")[1:]
    assert [g.split("</summary>", 1)[0] for g in groups[:3]] == [
        f"1–{GROUP} of {2 * GROUP + 5}",
        f"{GROUP + 1}–{2 * GROUP} of {2 * GROUP + 5}",
        f"{2 * GROUP + 1}–{2 * GROUP + 5} of {2 * GROUP + 5}",
    ]
    assert all(g.count("<section ") <= GROUP for g in groups)
    summary = page.split("<h2>Tests</h2>", 1)[0].split("<h2>Overhead against budget</h2>", 1)[1]
    shown_rows = summary.split("<details>", 1)[0]
    assert shown_rows.count('href="#test-') == SHOWN  # the summary table: the same first tests
    assert f"<details><summary>the rows of {TABLE_GROUP + 7:,} tests that passed</summary>" in summary
    health = page.split("<h2>Pipeline health</h2>", 1)[1].split("<h2>", 1)[0].strip()
    assert health.startswith("<details><summary>the pipeline of every test</summary><details><summary>tests 1–500")
    assert "content-visibility:auto" in page
