"""The HTML report and the sweep page as a reader sees them: rendered by headless Chromium, measured in its DOM.

The pages are the examples' (docs/report_page.py builds them from the runs recorded in tests/data:
a +333% test beside ~2% ones, a comparison, a sweep). At 1280 and 800 CSS pixels nothing may run
off the side, no two pieces of text may cover each other, and every chart must be drawn. Chromium
and its driver come from Debian (``chromium``, ``chromium-driver``; .ci/run installs them).
Without them the tests are skipped, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_otel_overhead.reports.html import html_report
from pytest_otel_overhead.reports.html_large import GROUP, SHOWN

ROOT = Path(__file__).resolve().parent.parent
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTHS = (1280, 800)

# Every piece of text a reader reads, outside the charts: one box per line of each text node.
TEXT_BOXES = """
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const boxes = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  if (!node.textContent.trim() || node.parentElement.closest('svg, style')) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  for (const r of range.getClientRects()) {
    if (r.width > 0 && r.height > 0) boxes.push([node.parentElement.tagName + ': ' + node.textContent.slice(0, 60),
                                                 r.left, r.top, r.right, r.bottom]);
  }
}
return boxes;
"""

OVERFLOW = """
const page = document.documentElement;
const scrolling = Array.from(document.querySelectorAll('div, pre, table, figure'))
  .filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
  .map(e => (e.previousElementSibling ? e.previousElementSibling.textContent : e.tagName).slice(0, 60));
return [page.scrollWidth, page.clientWidth, scrolling];
"""

CHARTS = """
return Array.from(document.querySelectorAll('figure')).map(f => {
  const svg = f.querySelector('svg');
  const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return [f.getAttribute('aria-label'), r.width, r.height];
});
"""


def _report_page() -> ModuleType:
    spec = importlib.util.spec_from_file_location("report_page", ROOT / "docs" / "report_page.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _missing(reason: str) -> None:
    """Skip on a developer's machine without Chromium; fail under CI, where the browser test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs chromium and chromium-driver)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    report_page = _report_page()
    if report_page.chromium() is None or not Path(DRIVER).exists():
        _missing("Chromium or its driver is not installed (Debian: chromium, chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (the test extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = report_page.chromium()
    for flag in (*report_page.CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    written: dict[str, Path] = _report_page().write_pages(tmp_path_factory.mktemp("pages"))
    return written


def _open(driver: Any, page: Path, width: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}
    )
    driver.get(page.as_uri())


def _overlaps(boxes: list[list[Any]]) -> list[tuple[str, str]]:
    """Pairs of text boxes that cover each other by more than a pixel each way."""
    found = []
    ordered = sorted(boxes, key=lambda box: box[2])
    for index, (name, left, top, right, bottom) in enumerate(ordered):
        for other, o_left, o_top, o_right, o_bottom in ordered[index + 1 :]:
            if o_top >= bottom - 1:
                break
            if min(right, o_right) - max(left, o_left) > 1 and min(bottom, o_bottom) - max(top, o_top) > 1:
                found.append((name, other))
    return found


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["report.html", "sweep.html"])
def test_nothing_runs_off_the_side(browser: Any, pages: dict[str, Path], name: str, width: int) -> None:
    _open(browser, pages[name], width)
    page_width, viewport, scrolling = browser.execute_script(OVERFLOW)
    assert page_width <= viewport, f"{name} is {page_width}px wide in a {viewport}px window"
    assert scrolling == [], f"boxes that scroll sideways at {width}px: {scrolling}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["report.html", "sweep.html"])
def test_no_text_covers_other_text(browser: Any, pages: dict[str, Path], name: str, width: int) -> None:
    _open(browser, pages[name], width)
    boxes = browser.execute_script(TEXT_BOXES)
    assert len(boxes) > (200 if name == "report.html" else 3), "the page's text was found"
    assert _overlaps(boxes) == []


def test_the_overlap_check_sees_text_over_text() -> None:
    assert _overlaps([["a", 0, 0, 100, 20], ["b", 50, 10, 150, 30]]) == [("a", "b")]
    assert _overlaps([["a", 0, 0, 100, 20], ["b", 100, 0, 150, 20], ["c", 0, 20, 100, 40]]) == []


@pytest.mark.parametrize("name", ["report.html", "sweep.html"])
def test_every_chart_is_drawn(browser: Any, pages: dict[str, Path], name: str) -> None:
    _open(browser, pages[name], 1280)
    charts = browser.execute_script(CHARTS)
    expected = pages[name].read_text(encoding="utf-8").count("<figure")
    assert len(charts) == expected and expected >= (13 if name == "report.html" else 1)
    assert [c for c in charts if not (c[1] > 100 and c[2] > 50)] == [], "every chart has a size on the page"
    assert "chart not drawn" not in browser.find_element("tag name", "body").text
    if name == "report.html":
        assert charts[0][0] == "overhead of each test against its budget"


def test_control_characters_and_markup_in_a_test_id_are_text(browser: Any, tmp_path: Path) -> None:
    _, pull = _report_page().runs()
    nasty = 'examples/t.py::test_x[\x1b[2J\x07<script>document.title="owned"</script>]'
    results = (dataclasses.replace(pull.results[0], nodeid=nasty), *pull.results[1:])
    page = tmp_path / "nasty.html"
    page.write_text(html_report(dataclasses.replace(pull, results=results), charts=False), encoding="utf-8")
    _open(browser, page, 1280)
    assert browser.execute_script("return document.querySelectorAll('script').length") == 0
    assert browser.title != "owned"
    text = browser.find_element("tag name", "body").text
    assert '\\x1b[2J\\x07<script>document.title="owned"</script>' in text.replace("\n", "")


def test_a_report_of_many_tests_opens_with_the_summary_and_the_failing_tests_first(
    browser: Any, tmp_path: Path
) -> None:
    _, pull = _report_page().runs()
    copies = -(-1200 // len(pull.results))
    results = tuple(
        dataclasses.replace(result, nodeid=f"{result.nodeid}[{k}]") for k in range(copies) for result in pull.results
    )
    failing = sum(1 for result in results if result.outcome != "PASS")
    assert 0 < failing < len(results)
    page = tmp_path / "many.html"
    page.write_text(html_report(dataclasses.replace(pull, results=results), charts=False), encoding="utf-8")
    _open(browser, page, 1280)
    headings = browser.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
    assert headings[0] == "Overhead against budget" and "Tests" in headings
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('section[id^=test-]')).filter(s => s.checkVisibility())"
        ".map(s => s.querySelector('h3').textContent)"
    )
    # The first tests that did not pass are shown; the other ones and the passing ones are folded.
    assert len(shown) == min(failing, SHOWN) and all("PASS" not in heading for heading in shown)
    page_width, viewport, _ = browser.execute_script(OVERFLOW)
    assert page_width <= viewport
    # Opening the passing tests' fold shows their groups, and opening a group shows its tests (GROUP at most).
    opened = browser.execute_script(OPEN_PASSING)
    assert 0 < len(opened) <= GROUP and all("PASS" in heading for heading in opened)
    assert len(results) - failing > GROUP, "the passing tests fill more than one group"


# Opens the fold of the passing tests and its first group; the headings of the sections then shown.
OPEN_PASSING = """
const fold = Array.from(document.querySelectorAll('details'))
  .find(d => /^[0-9,]+ tests that passed$/.test(d.querySelector(':scope > summary').textContent));
fold.querySelector(':scope > summary').click();
fold.querySelector(':scope > details > summary').click();
return Array.from(document.querySelectorAll('section[id^=test-]')).filter(s => s.checkVisibility())
  .map(s => s.querySelector('h3').textContent).filter(h => h.includes('PASS'));
"""


def test_without_chromium_ci_fails_where_a_developer_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the browser test"):
        _missing("Chromium is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _missing("Chromium is not installed")
