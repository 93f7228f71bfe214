"""The examples' HTML report and sweep page, built from recorded runs, and docs/report.png taken of it.

The two runs in tests/data are real runs of ``pytest examples --otel-overhead``: one saved on main
(``--otel-overhead-save=main``), one compared with it (``--otel-overhead-compare=main
--otel-overhead-compare-fail=cpu:+1pp``). To show how the report reads when tests lie far apart,
one test is added at +333% CPU next to the examples' ~2% ones, and a sweep of ``sample_rate`` is
made from the recorded ``test_import_feed``. Everything is deterministic: the same pages every time.

    python docs/report_page.py            # rewrites docs/report.png (needs Chromium)
    python docs/report_page.py --html DIR # writes report.html and sweep.html to DIR only

tests/test_report_browser.py renders the same pages in headless Chromium and checks them.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pytest_otel_overhead.history.compare import compare_runs, parse_criteria
from pytest_otel_overhead.history.reader import load_run
from pytest_otel_overhead.history.run import RunRecord
from pytest_otel_overhead.reports.html import html_report
from pytest_otel_overhead.reports.sweep import SweepAxis, SweepPoint, SweepResult, sweep_page
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.stats.verdict import Verdict

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PICTURE = ROOT / "docs" / "report.png"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
FAR_TEST = "examples/test_orders.py::test_export_every_line[otlp-gzip]"
SWEPT_TEST = "examples/test_orders.py::test_import_feed"


def chromium() -> str | None:
    """Debian's Chromium, where it is installed."""
    return next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


def _scaled(metric: MetricResult, factor: float, verdict: Verdict | None) -> MetricResult:
    return dataclasses.replace(
        metric,
        overhead=metric.overhead * factor,
        ci_low=metric.ci_low * factor,
        ci_high=metric.ci_high * factor,
        instrumented=metric.baseline * (1 + metric.overhead * factor),
        verdict=verdict if metric.verdict is not None else None,
    )


def _far_test(template: TestResult) -> TestResult:
    """A test at about +333% CPU against its 5% budget, made from a recorded one."""
    cpu = template.metric("cpu")
    assert cpu is not None
    factor = 3.33 / cpu.overhead
    metrics = tuple(_scaled(m, factor, Verdict.FAIL) if m.metric == "cpu" else m for m in template.metrics)
    return dataclasses.replace(template, nodeid=FAR_TEST, metrics=metrics)


def _verdict(low: float, high: float, budget: float) -> Verdict:
    """As the engine decides: PASS below the budget, FAIL above it, INCONCLUSIVE across it."""
    return Verdict.PASS if high < budget else Verdict.FAIL if low > budget else Verdict.INCONCLUSIVE


def runs() -> tuple[RunRecord, RunRecord]:
    """The run saved on main and the pull request's run, with the far test added to the latter."""
    main = load_run(DATA / "examples-main.json")
    pull = load_run(DATA / "examples-pr.json")
    template = pull.result("examples/test_orders.py::test_span_per_line_exceeds_budget")
    assert template is not None
    return main, dataclasses.replace(pull, results=(*pull.results, _far_test(template)), name="pull-request")


def sweep(run: RunRecord) -> SweepResult:
    """``sample_rate`` swept over four values for the recorded ``test_import_feed``: overhead grows with the rate."""
    recorded = run.result(SWEPT_TEST)
    assert recorded is not None
    cpu = recorded.metric("cpu")
    assert cpu is not None and cpu.budget is not None
    labels = ("0.01", "0.1", "0.5", "1.0")
    points = []
    for label, factor in zip(labels, (0.2, 1.0, 4.0, 7.5), strict=True):
        scaled = _scaled(cpu, factor, _verdict(cpu.ci_low * factor, cpu.ci_high * factor, cpu.budget.value))
        metrics = tuple(scaled if m.metric == "cpu" else m for m in recorded.metrics)
        point = dataclasses.replace(recorded, metrics=metrics)
        points.append(SweepPoint((("sample_rate", label),), point))
    axis = SweepAxis("sample_rate", tuple(float(v) for v in labels), labels)
    return SweepResult(SWEPT_TEST, (axis,), "cpu", cpu.budget, tuple(points))


def pages() -> dict[str, str]:
    """``report.html`` (with the comparison and the history of one earlier run) and ``sweep.html``."""
    main, pull = runs()
    comparison = compare_runs(main, pull, parse_criteria("cpu:+1pp", "--otel-overhead-compare-fail"))
    return {
        "report.html": html_report(pull, comparison, [main], title="OpenTelemetry overhead — examples"),
        "sweep.html": sweep_page([sweep(pull)]),
    }


def write_pages(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in pages().items():
        written[name] = directory / name
        written[name].write_text(text, encoding="utf-8")
    return written


def screenshot(page: Path, picture: Path, width: int = 1280, height: int = 1500) -> None:
    """The top of ``page`` as Chromium shows it in a window ``width`` by ``height``."""
    browser = chromium()
    if browser is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        subprocess.run(
            [*command, f"--screenshot={picture}", page.as_uri()], capture_output=True, check=True, timeout=120
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, help="write the pages to this directory and take no picture")
    args = parser.parse_args(argv)
    if args.html is not None:
        for path in write_pages(args.html).values():
            print(f"wrote {path}")
        return 0
    with tempfile.TemporaryDirectory() as directory:
        written = write_pages(Path(directory))
        screenshot(written["report.html"], Path(directory) / "report.png")
        shutil.copyfile(Path(directory) / "report.png", PICTURE)
    print(f"wrote {PICTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
