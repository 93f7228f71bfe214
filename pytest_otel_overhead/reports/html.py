"""The HTML report: one self-contained file that opens offline, with charts when matplotlib is installed.

No scripts, no fonts, no links to anything outside the file: styles are inline, charts are
inline SVG. Without matplotlib (the ``html`` extra) the same figures appear as tables and the
page says which extra adds the charts. Every piece of user text (test ids, parameters, notes)
goes through ``escape_html`` (markup escaped, control characters shown as ``\\x1b``); test ids
wrap only after their separators (``/``, ``::``, ``[``), never inside a word. A table leaves out
the columns that hold nothing, and a comparison shows a relative change only where it means
something. Figures read as in the terminal: intervals ``[low, high]``, a missing
figure ``NO_FIGURE``, relative and per-call overheads in columns of their own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_otel_overhead import __version__
from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    format_bytes,
    interval_heading,
)
from pytest_otel_overhead.history.compare import Comparison
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.reports.columns import OverheadColumns, overhead_columns
from pytest_otel_overhead.reports.drawing import CHARTS_EXTRA, ChartDrawer, charts_available
from pytest_otel_overhead.reports.html_comparison import comparison_section
from pytest_otel_overhead.reports.html_large import (
    GROUP,
    LARGE_REPORT,
    LARGE_STYLE,
    MAX_LARGE_CHARTS,
    SHOWN,
    attention_first,
    attention_table,
    folded,
    large_chart_rows,
    rows_drawn,
    table_of_tests,
)
from pytest_otel_overhead.reports.html_text import escape_html, table, unbroken, verdict_span, wrappable_id
from pytest_otel_overhead.reports.markdown import budget_cell, headline_metrics, run_facts
from pytest_otel_overhead.reports.terminal import outcome_lines, verdict_label
from pytest_otel_overhead.results import AGAINST_ARMS_NOTE, OTHER_OUTCOMES, MetricResult, TestResult
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = [
    "ARMS_HEADING",
    "CHARTS_EXTRA",
    "LARGE_REPORT",
    "NO_PAIRED_ESTIMATE",
    "charts_available",
    "html_report",
]

MAX_DETAILED_CHARTS = 40
MAX_TRENDS = 12

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;max-width:78rem;
padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h3{margin-top:1.6rem;font-size:1.05rem;word-break:normal;overflow-wrap:normal}
table{border-collapse:collapse;margin:.6rem 0;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.2rem .4rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.id{word-break:normal;overflow-wrap:normal;max-width:24rem}
.wide{max-width:100%;overflow-x:auto}
tr.group th{background:#fff;font-weight:600;border-top:2px solid #8c959f;word-break:normal;overflow-wrap:normal}
.PASS{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:600}
.INCONCLUSIVE{color:#9a6700;font-weight:600}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;border-radius:6px;margin:.6rem 0}
.muted{color:#59636e;font-size:.85rem}
figure{margin:.6rem 0}figure svg{max-width:100%;height:auto}
"""


_h = escape_html
_id = wrappable_id
_table = table
_unbroken = unbroken
_verdict = verdict_span


def _test_verdict(result: TestResult) -> str:
    undecided = result.outcome != result.verdict.value  # NO TELEMETRY, FAILED EXPORTS
    return _verdict(Verdict.INCONCLUSIVE if undecided else result.verdict, verdict_label(result))


def _value(metric: MetricResult, value: float) -> str:
    return _h(metric.format_value(value)) if math.isfinite(value) else NO_FIGURE


def _against_arms_note(metrics: Sequence[MetricResult]) -> str:
    return f'<p class="muted">{_h(AGAINST_ARMS_NOTE)}</p>' if any(m.against_arms for m in metrics) else ""


def _header(run: RunRecord) -> str:
    env = run.environment
    packages: dict[str, Any] = env["packages"] if isinstance(env.get("packages"), dict) else {}
    rows = [
        ("run", run.label),
        ("created", run.created or NO_FIGURE),
        ("commit", run.commit or NO_FIGURE),
        ("branch", (run.git or {}).get("branch") or NO_FIGURE),
        ("Python", f"{env.get('implementation', '')} {env.get('python', NO_FIGURE)}".strip()),
        ("platform", env.get("platform") or NO_FIGURE),
        ("CPU", f"{run.machine.get('cpu_model') or NO_FIGURE} ({env.get('cpu_count', NO_FIGURE)} logical)"),
        (
            "memory",
            format_bytes(env["memory_bytes"]) if isinstance(env.get("memory_bytes"), (int, float)) else NO_FIGURE,
        ),
        ("load average", ", ".join(f"{x:.2f}" for x in env.get("load_average") or []) or NO_FIGURE),
    ]
    rows += [(name, version) for name, version in packages.items() if version]
    cells = "".join(f"<tr><th>{_h(k)}</th><td>{_h(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _summary_row(
    index: int, result: TestResult, metric: MetricResult, columns: OverheadColumns, first: bool
) -> list[str]:
    return [
        f'<a href="#test-{index}">{_id(result.nodeid)}</a> {_test_verdict(result)}',
        _h(metric.label),
        *columns.cells(metric, _h),
        _unbroken(_h(budget_cell(result, metric))),
        _verdict(metric.verdict) or NO_FIGURE,
        f"{_value(metric, metric.baseline)} → {_value(metric, metric.instrumented)}",
        str(result.pairs),
    ]


def _summary_header(columns: OverheadColumns) -> list[str]:
    return [
        "test",
        "metric",
        *columns.headers(),
        "budget",
        "budget verdict",
        ARMS_HEADING,
        "pairs",
    ]


def _overview_chart(rows: Sequence[tuple[str, MetricResult]], charts: ChartDrawer) -> str:
    """Each (label, relative metric) as an interval against its budget."""

    def make(module: Any) -> str:
        bars = [
            module.OverheadRow(
                label=label,
                estimate=m.overhead,
                low=m.ci_low,
                high=m.ci_high,
                budget=m.budget.value if m.budget is not None and m.budget.kind == "relative" else None,
                verdict=m.verdict.value if m.verdict is not None else None,
            )
            for label, m in rows
        ]
        return str(module.overhead_chart(bars, interval_heading((m.confidence for _, m in rows), "interval")))

    return charts.draw(make, "overhead of each test against its budget")


def _summary(run: RunRecord, charts: ChartDrawer) -> str:
    results = run.results
    counts = {v: sum(1 for r in results if r.outcome == v.value) for v in Verdict}
    others = [(o.replace("_", " "), sum(1 for r in results if r.outcome == o)) for o in OTHER_OUTCOMES]
    parts = [
        f"<p><strong>{len(results)} measured:</strong> {_verdict(Verdict.PASS, f'{counts[Verdict.PASS]} PASS')}, "
        f"{_verdict(Verdict.FAIL, f'{counts[Verdict.FAIL]} FAIL')}, "
        f"{_verdict(Verdict.INCONCLUSIVE, f'{counts[Verdict.INCONCLUSIVE]} INCONCLUSIVE')}"
        + "".join(f", {_verdict(Verdict.INCONCLUSIVE, f'{n} {o}')}" for o, n in others if n)
        + "</p>"
    ]
    chart_rows = []
    table_rows: dict[int, list[list[str]]] = {}
    columns = overhead_columns([m for result in results for m in headline_metrics(result)])
    for index, result in enumerate(results):
        for position, metric in enumerate(headline_metrics(result)):
            if metric.kind == "relative":
                chart_rows.append((result.nodeid + ("" if metric.metric == "cpu" else f" · {metric.label}"), metric))
            table_rows.setdefault(index, []).append(_summary_row(index, result, metric, columns, position == 0))
    if len(results) > LARGE_REPORT:
        chart_rows, line = large_chart_rows(results, chart_rows)
        parts.append(f'<p class="muted">{_h(line)}</p>')
    if chart_rows:
        parts.append(_overview_chart(chart_rows, charts))
    k = len(columns.kinds)  # overhead columns start at 2; the arms and pairs follow budget and its verdict
    numeric = (*range(2, 2 + k), 4 + k, 5 + k)

    def make(rows: Sequence[Sequence[str]]) -> str:
        return _table(_summary_header(columns), rows, numeric, grouped=True)

    if len(results) <= LARGE_REPORT:
        parts.append(make([row for rows in table_rows.values() for row in rows]))
    else:
        parts.append(attention_table(results, table_rows, make))
    parts.append(_against_arms_note([m for result in results for m in headline_metrics(result)]))
    return "".join(parts)


def _trend(run: RunRecord, history: Sequence[RunRecord], charts: ChartDrawer) -> str:
    runs = [r for r in history if r.path is None or r.path != run.path] + [run]
    parts = []
    shown = 0
    trends: list[tuple[str, str, MetricResult]] = []
    for result in run.results:
        gate = result.metric(result.settings.metric)
        if gate is None or gate.kind != "relative":
            continue
        points = []
        for past in runs:
            old = past.result(result.nodeid)
            metric = old.metric(result.settings.metric) if old is not None else None
            if metric is None or metric.kind != "relative" or not math.isfinite(metric.overhead):
                continue
            label = past.label if past is not run else "this run"
            points.append((label, metric))
        if len(points) < 2:
            continue
        trends += [(result.nodeid, label, metric) for label, metric in points]
        if shown < MAX_TRENDS:
            shown += 1
            budget = gate.budget.value if gate.budget is not None and gate.budget.kind == "relative" else None
            title = f"{result.nodeid} · {gate.label}"

            def make(module: Any, title: str = title, points: Any = points, budget: float | None = budget) -> str:
                trend = [module.TrendPoint(label, m.overhead, m.ci_low, m.ci_high) for label, m in points]
                return str(module.trend_chart(title, trend, budget))

            parts.append(charts.draw(make, f"overhead of {result.nodeid} run after run"))
    if not trends:
        return ""
    columns = overhead_columns([m for _, _, m in trends])
    rows = [[_id(nodeid), _h(label), *columns.cells(m, _h)] for nodeid, label, m in trends]
    header = ["test", "run", *columns.headers()]
    parts.append(_long_table(run, "the overhead of every test, run by run", header, rows, (2,)))
    return "".join(parts)


ARMS_HEADING = "per call: baseline → instrumented"
NO_PAIRED_ESTIMATE = "no figures: no pair of blocks had enough calls for this quantile (n 0)"


def _metric_row(m: MetricResult, columns: OverheadColumns) -> list[str]:
    """A metric's row; one measured in no pair (a p99 of short blocks, n 0) shows no figures, and says why."""
    if m.n == 0:
        empty = [NO_FIGURE] * (1 + len(columns.kinds))
        budget = _h(m.budget.describe(m.metric)) if m.budget else NO_FIGURE
        return [_h(m.label), *empty, budget, _verdict(m.verdict) or NO_FIGURE, "0", _h(m.note or NO_PAIRED_ESTIMATE)]
    return [
        _h(m.label),
        f"{_value(m, m.baseline)} → {_value(m, m.instrumented)}",
        *columns.cells(m, _h),
        _unbroken(_h(m.budget.describe(m.metric))) if m.budget else NO_FIGURE,
        _verdict(m.verdict) or NO_FIGURE,
        str(m.n),
        _h(m.note or ""),
    ]


def _metrics_table(result: TestResult) -> str:
    metrics = [m.for_display() for m in result.metrics]
    columns = overhead_columns([m for m in metrics if m.n])
    rows = [_metric_row(m, columns) for m in metrics]
    header = ["metric", ARMS_HEADING, *columns.headers(), "budget", "verdict", "n", "note"]
    k = len(columns.kinds)
    return _table(header, rows, (1, *range(2, 2 + k), 4 + k)) + _against_arms_note(metrics)


def _health_table(result: TestResult) -> str:
    health = result.health
    if health is None:
        return '<p class="muted">No pipeline diagnostics recorded.</p>'
    dropped = str(health.dropped)
    if health.dropped:
        dropped = f'<span class="FAIL">{dropped}</span>'
    rows = [
        ["calls in the diagnostic round", str(health.calls)],
        ["spans started per call", f"{health.per_call(health.started):.3g}"],
        ["spans sampled per call", f"{health.per_call(health.sampled):.3g}"],
        ["spans exported per call", f"{health.per_call(health.exported):.3g}"],
        ["spans dropped (queue full)", dropped],
        ["export calls", str(health.export_calls)],
    ]
    rows += [[f"span {_h(name)} per call", f"{health.per_call(count):.3g}"] for name, count in health.by_name[:10]]
    return _table(["pipeline", "value"], rows, (1,))


def _process_table(result: TestResult) -> str:
    process = result.process
    heap = result.metric("heap")
    rows = []
    if heap is not None and math.isfinite(heap.baseline):
        rows.append(["peak heap per block", _h(format_bytes(heap.baseline)), _h(format_bytes(heap.instrumented))])
    if process is not None:
        if math.isfinite(process.heap_retained_baseline):
            rows.append(
                [
                    "heap retained per call",
                    _h(format_bytes(process.heap_retained_baseline)),
                    _h(format_bytes(process.heap_retained_instrumented)),
                ]
            )
        rows.append(
            ["resident memory", _h(format_bytes(process.rss_baseline)), _h(format_bytes(process.rss_instrumented))]
        )
        rows.append(["threads", str(process.threads_baseline), str(process.threads_instrumented)])
    if math.isfinite(result.throughput_baseline):
        rows.append(
            [
                "calls per second",
                f"{result.throughput_baseline:,.0f}",
                (
                    f"{result.throughput_instrumented:,.0f}"
                    if math.isfinite(result.throughput_instrumented)
                    else NO_FIGURE
                ),
            ]
        )
    if not rows:
        return ""
    return _table(["process", "baseline", "instrumented"], rows, (1, 2))


def _pairs(module: Any, result: TestResult) -> str:
    return str(module.pairs_chart(result))


def _test_section(index: int, result: TestResult, charts: ChartDrawer, chart: bool, limit: int | None) -> str:
    """A test's section; ``limit``: how many tests have charts, said where this one has none (``None``: said
    once above the sections)."""
    settings = result.settings
    budgets = ", ".join(f"{name} {b.describe(name)}" for name, b in settings.budgets) or "none"
    parts = [f'<section id="test-{index}"><h3>{_id(result.nodeid)} {_test_verdict(result)}</h3>']
    parts.append(
        f'<p class="muted">{_h(settings.pipeline.describe())}; budgets: {_h(budgets)}; '
        f"{result.pairs} pairs of {result.calls_per_block} calls in {result.duration_s:.1f} s, "
        f"{result.looks} looks, stopped: {_h(result.stop_reason)}</p>"
    )
    for metric in result.metrics:
        if metric.note and metric.verdict is not None and metric.verdict is not Verdict.PASS:
            parts.append(f'<p class="note">{_h(metric.label)}: {_h(metric.note)}</p>')
    parts += [f'<p class="note">{_h(line)}</p>' for line in outcome_lines(result)]
    parts.append(_metrics_table(result))
    if result.samples and chart:
        parts.append(charts.draw(functools.partial(_pairs, result=result), f"distributions of {result.nodeid}"))
    elif result.samples and charts.module is not None and limit is not None:
        parts.append(f'<p class="muted">Charts are drawn for the first {limit} tests only.</p>')
    parts.append(_process_table(result))
    parts.append(_health_table(result))
    parts.append("</section>")
    return "".join(parts)


def _details(run: RunRecord, charts: ChartDrawer) -> str:
    """Each test's section, in the run's order; in a large report the tests that did not pass come
    first, with the charts, the first ``SHOWN`` of them unfolded, and the rest folded in groups."""
    indexed = list(enumerate(run.results))
    if len(indexed) <= LARGE_REPORT:
        return "".join(_test_section(i, r, charts, i < MAX_DETAILED_CHARTS, MAX_DETAILED_CHARTS) for i, r in indexed)
    attention, passing = attention_first(run.results)
    drawn = rows_drawn(run.results)  # the line above the sections says which, once
    sections = [_test_section(i, r, charts, r.nodeid in drawn, None) for i, r in attention + passing]
    shown = (
        f" (the first {SHOWN} shown, the other {len(attention) - SHOWN:,} folded in groups of {GROUP})"
        if len(attention) > SHOWN
        else ""
    )
    return "".join(
        [
            f'<p class="muted">{len(attention)} tests that did not pass first{shown}, then {len(passing)} that '
            f"passed, folded; charts for the first {MAX_LARGE_CHARTS} only.</p>",
            *sections[: min(SHOWN, len(attention))],
            folded(f"{len(attention) - SHOWN:,} more tests that did not pass", sections[SHOWN : len(attention)]),
            folded(f"{len(passing)} tests that passed", sections[len(attention) :]),
        ]
    )


def _heap(run: RunRecord, charts: ChartDrawer) -> str:
    measured = [(r, heap.for_display()) for r in run.results if (heap := r.metric("heap")) is not None]
    measured = [(r, heap) for r, heap in measured if math.isfinite(heap.baseline)]
    if not measured:
        return ""
    columns = overhead_columns([heap for _, heap in measured])
    rows = [
        [
            _id(result.nodeid),
            _h(f"{format_bytes(heap.baseline)} → {format_bytes(heap.instrumented)}"),
            *columns.cells(heap, _h),
            _verdict(heap.verdict) or NO_FIGURE,
        ]
        for result, heap in measured
    ]
    chart = charts.draw(lambda module: str(module.heap_chart(run.results)), "peak heap of both arms")
    header = ["test", "peak heap: baseline → instrumented", *columns.headers(), "verdict"]
    table = _long_table(run, "the peak heap of every test", header, rows, (1, *range(2, 2 + len(columns.kinds))))
    return chart + table + _against_arms_note([heap for _, heap in measured])


def _health_overview(run: RunRecord) -> str:
    rows = []
    for result in run.results:
        health = result.health
        if health is None:
            continue
        dropped = str(health.dropped) if not health.dropped else f'<span class="FAIL">{health.dropped}</span>'
        rows.append(
            [
                _id(result.nodeid),
                _h(result.settings.pipeline.describe()),
                f"{health.per_call(health.started):.3g}",
                f"{health.per_call(health.sampled):.3g}",
                f"{health.per_call(health.exported):.3g}",
                dropped,
                str(health.export_calls),
            ]
        )
    if not rows:
        return ""
    header = ["test", "pipeline", "spans/call", "sampled/call", "exported/call", "dropped", "export calls"]
    return _long_table(run, "the pipeline of every test", header, rows, (2, 3, 4, 5, 6))


def _unmeasured(run: RunRecord, unmeasured: Sequence[Mapping[str, str]]) -> str:
    count = f"{len(unmeasured)} test{'s' if len(unmeasured) != 1 else ''}"
    rows = [[_id(e["nodeid"]), _h(e["outcome"]), _h(e["reason"])] for e in unmeasured]
    lead = f"<p>{count} to measure skipped or errored before a result:</p>"
    return lead + _long_table(run, f"the {count} not measured", ["test", "outcome", "reason"], rows, ())


def _long_table(
    run: RunRecord, label: str, header: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int]
) -> str:
    """A table with a row or a few per test: in a large report, folded under ``label``."""
    return table_of_tests(len(run.results), label, rows, lambda part: _table(header, part, numeric, grouped=True))


def html_report(
    run: RunRecord,
    comparison: Comparison | None = None,
    history: Sequence[RunRecord] = (),
    *,
    warnings: Sequence[str] = (),
    charts: bool | None = None,
    title: str = "OpenTelemetry overhead",
    unmeasured: Sequence[Mapping[str, str]] = (),
) -> str:
    """The report as one HTML document. ``charts=None`` draws charts when matplotlib is installed;
    ``unmeasured``: the tests that were to be measured and were not, as the JSON report lists them."""
    drawing = ChartDrawer(charts_available() if charts is None else charts)
    facts = run_facts(run)
    body = [f"<h1>{_h(title)}</h1>", f'<p class="muted">{_h(" · ".join(facts))}</p>' if facts else ""]
    if drawing.module is None:
        body.append(drawing.left_out_note())
    for warning in warnings:
        body.append(f'<p class="note">{_h(warning)}</p>')
    body += ["<h2>Overhead against budget</h2>", _summary(run, drawing)]
    if unmeasured:
        body += ["<h2>Not measured</h2>", _unmeasured(run, unmeasured)]
    if comparison is not None:
        body += ["<h2>Compared with an earlier run</h2>", comparison_section(comparison)]
    trend = _trend(run, history, drawing)
    if trend:
        body += ["<h2>History</h2>", trend]
    heap = _heap(run, drawing)
    if heap:
        body += ["<h2>Heap</h2>", heap]
    health = _health_overview(run)
    if health:
        body += ["<h2>Pipeline health</h2>", health]
    body += ["<h2>Tests</h2>", _details(run, drawing), "<h2>Where it ran</h2>", _header(run)]
    body.append(f'<p class="muted">pytest-otel-overhead {_h(__version__)}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(title)} — {_h(run.label)}</title>"
        f"<style>{_STYLE}{LARGE_STYLE if len(run.results) > LARGE_REPORT else ''}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
