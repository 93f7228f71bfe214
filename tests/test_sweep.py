"""Sweeps: parsing the grid, building each point's settings, the table and the chart."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_otel_overhead.advice.sweep import parse_sweep, point_layers, run_sweep
from pytest_otel_overhead.reports.drawing import CHARTS_EXTRA
from pytest_otel_overhead.reports.sweep import SweepResult, sweep_lines, sweep_page, sweep_svg
from pytest_otel_overhead.results import MetricResult, PipelineHealth, TestResult
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget, SettingsError

SVG = "{http://www.w3.org/2000/svg}"


def marker(**values: object) -> Layer:
    return Layer.parse(values, lambda key: "marker on t.py::test_x")


def fake_measure(settings: MeasureSettings, label: str) -> TestResult:
    rate = settings.pipeline.sample_rate if settings.pipeline.sample_rate is not None else 1.0
    overhead = 0.01 + 0.2 * rate + settings.pipeline.batch_size / 1e5
    verdict = Verdict.PASS if overhead < 0.04 else Verdict.FAIL if overhead > 0.06 else Verdict.INCONCLUSIVE
    cpu = MetricResult(
        "cpu",
        1e-3,
        1e-3 * (1 + overhead),
        overhead,
        overhead - 0.01,
        overhead + 0.01,
        "relative",
        40,
        0.02,
        0.95,
        Budget("relative", 0.05),
        verdict,
    )
    health = PipelineHealth(calls=10, started=40, sampled=int(40 * rate), exported=int(40 * rate), export_calls=1)
    return TestResult(label, settings, (cpu,), health, None, 40, 10, 2, 1.0, "decided", 1e3, 1e3)


def test_parse_sweep_reads_keys_and_values() -> None:
    axes = parse_sweep(["sample_rate=0.01,0.05, 0.1", "batch-size=128,512,512", "load_thresholds=80%:0.1,0.2;50%:0"])
    assert [a.key for a in axes] == ["sample_rate", "batch_size", "load_thresholds"]
    assert axes[0].values == (0.01, 0.05, 0.1) and axes[0].labels == ("0.01", "0.05", "0.1")
    assert axes[1].values == (128, 512)  # repeated values are measured once
    assert len(axes[2].values) == 2  # ';' separates values that contain commas


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("tests/test_x.py", "is not KEY=V1,V2"),
        ("sample_rat=0.1", "unknown setting 'sample_rat'"),
        ("budget=5%,10%", "budget says how a point is judged"),
        ("sample_rate=", "sample_rate= has no values"),
        ("sample_rate=0.1,2", "--otel-overhead-sweep sample_rate: '2' is not a sampling rate"),
    ],
)
def test_bad_sweeps_are_one_line_errors(spec: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_sweep([spec])
    assert str(info.value).startswith("--otel-overhead-sweep") and fragment in str(info.value)


def test_a_key_swept_twice_is_an_error() -> None:
    with pytest.raises(SettingsError, match="queue_size is swept twice"):
        parse_sweep(["queue_size=1024", "queue_size=4096"])


def test_points_override_the_tests_layers_and_a_rate_selects_the_ratio_sampler() -> None:
    layers = (marker(sampler="parentbased_always_on", batch_size=64, queue_size=4096),)
    points = point_layers(
        parse_sweep(["sample_rate=0.1,1", "batch_size=128,2048"]), lambda top: resolve((top, *layers))
    )
    assert len(points) == 4
    labels, settings = points[1]
    assert labels == (("sample_rate", "0.1"), ("batch_size", "2048"))
    assert settings.pipeline.sampler == "parentbased_traceidratio" and settings.pipeline.sample_rate == 0.1
    assert settings.pipeline.batch_size == 2048 and settings.pipeline.queue_size == 4096
    assert settings.source("batch_size") == "--otel-overhead-sweep batch_size"


def test_an_impossible_point_fails_before_anything_is_measured() -> None:
    measured: list[str] = []
    with pytest.raises(SettingsError, match=r"batch_size 4096 \(--otel-overhead-sweep batch_size\) exceeds queue_size"):
        run_sweep(
            "t.py::test_x",
            parse_sweep(["batch_size=512,4096"]),
            lambda top: resolve((top,)),
            lambda settings, label: measured.append(label),  # type: ignore[func-returns-value, arg-type, return-value]
        )
    assert measured == []


def test_profiles_can_be_swept() -> None:
    points = point_layers(parse_sweep(["profile=development,production"]), lambda top: resolve((top, marker())))
    assert [p.pipeline.sample_rate for _, p in points] == [1.0, 0.1]


def make_sweep() -> SweepResult:
    return run_sweep(
        "t.py::test_<x>",
        parse_sweep(["sample_rate=0.01,0.1,1", "batch_size=128,512"]),
        lambda top: resolve((top,)),
        fake_measure,
    )


def test_run_sweep_measures_every_point_in_order() -> None:
    sweep = make_sweep()
    assert [p.label() for p in sweep.points][:2] == [
        "sample_rate=0.01, batch_size=128",
        "sample_rate=0.01, batch_size=512",
    ]
    assert sweep.metric == "cpu" and sweep.budget == Budget("relative", 0.05)
    assert [p.result.verdict for p in sweep.points][-1] is Verdict.FAIL


def test_sweep_table_has_a_row_per_point() -> None:
    lines = sweep_lines(make_sweep())
    assert lines[0] == "t.py::test_<x>  sweep of sample_rate, batch_size (CPU budget 5.0%)"
    assert lines[1].split()[:5] == ["sample_rate", "batch_size", "overhead", "95%", "CI"]
    assert len(lines) == 2 + 6
    assert lines[2].split()[:5] == ["0.01", "128", "+1.3%", "[+0.3%,", "+2.3%]"]


def test_sweep_json_is_serialisable_and_keeps_each_points_values() -> None:
    data = json.loads(json.dumps(make_sweep().as_dict(), allow_nan=False))
    assert data["axes"] == {"sample_rate": ["0.01", "0.1", "1"], "batch_size": ["128", "512"]}
    point = data["points"][0]
    assert point["values"] == {"sample_rate": "0.01", "batch_size": "128"}
    assert point["gate"]["overhead"] == pytest.approx(0.01 + 0.002 + 0.00128)
    assert point["pipeline"]["sample_rate"] == 0.01 and point["verdict"] == "PASS"


def test_sweep_chart_is_valid_svg_with_a_marker_and_interval_per_point() -> None:
    svg = sweep_svg(make_sweep())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    ids = [g.get("id") or "" for g in root.iter(f"{SVG}g")]
    assert sum("-point" in i for i in ids) == 6 and sum("-interval" in i for i in ids) == 6
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "sample_rate (log scale)" in texts and "budget" in texts
    assert "batch_size=128" in texts and "batch_size=512" in texts
    assert "t.py::test_&lt;x&gt;" in svg  # test ids are escaped


def test_categorical_axis_for_non_numeric_values() -> None:
    sweep = run_sweep(
        "t.py::test_x", parse_sweep(["processor=batch,simple"]), lambda top: resolve((top,)), fake_measure
    )
    root = ET.fromstring(sweep_svg(sweep))
    assert {"batch", "simple", "processor"} <= {t.text for t in root.iter(f"{SVG}text")}


def test_sweep_page_is_a_self_contained_html_document(tmp_path: Path) -> None:
    page = sweep_page([make_sweep()])
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and "http" not in page.split("<svg")[0]


def test_without_matplotlib_the_sweep_page_keeps_its_table_and_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "pytest_otel_overhead.reports.charts", raising=False)
    page = sweep_page([make_sweep()])
    assert "<svg" not in page and page.count('class="note"') == 1
    assert f"Install <code>{CHARTS_EXTRA}</code>" in page and "matplotlib is not installed" in page
    assert "sample_rate  batch_size  overhead" in page and "[+0.3%, +2.3%]" in page


DEMO = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("shop")


@pytest.mark.otel_overhead(budget="5%")
def test_span_per_item():
    for _ in range(100):
        with tracer.start_as_current_span("step"):
            pass
"""


def test_sweep_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_demo=DEMO)
    result = pytester.runpytest_subprocess(
        "test_demo.py", "--otel-overhead-sweep", "sample_rate=0.01,1", "-p", "no:cacheprovider",
        "--otel-overhead-max-time=1", "--otel-overhead-json=out.json", "--otel-overhead-sweep-chart=chart.html",
    )  # fmt: skip
    result.assert_outcomes(passed=1)  # a sweep explores; it does not gate
    result.stdout.fnmatch_lines(
        [
            "*otel-overhead advice*",
            "test_demo.py::test_span_per_item  sweep of sample_rate (CPU budget 5.0%)",
            "    sample_rate  overhead  95% CI*",
            "    0.01 *",
            "    1 *",
            "sweep charts: *chart.html",
        ]
    )
    data = json.loads((pytester.path / "out.json").read_text())
    assert data["tests"] == []
    (sweep,) = data["sweeps"]
    assert [p["pipeline"]["sample_rate"] for p in sweep["points"]] == [0.01, 1.0]
    assert [p["pipeline"]["sampler"] for p in sweep["points"]] == ["parentbased_traceidratio"] * 2
    assert sweep["points"][1]["spans_sampled_per_call"] == 100
    chart = (pytester.path / "chart.html").read_text()
    assert chart.count("<svg") == 1 and "test_demo.py::test_span_per_item" in chart


def test_a_bad_sweep_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_demo=DEMO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--otel-overhead-sweep", "sample_rate=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*otel-overhead: --otel-overhead-sweep sample_rate: 'fast' is not a sampling rate*"])
