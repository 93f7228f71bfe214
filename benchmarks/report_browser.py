"""How the HTML report of a merged run opens in a browser: ``python -m benchmarks.report_browser``.

Writes the shards of ``benchmarks.merge_scale`` (50 shards of 100 tests by default), merges them with
``--html``, and opens the page in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
through selenium) three times, printing for each load: the page's size, when DOMContentLoaded and
the load event came (from the navigation's start), the first contentful paint, how many test
sections a reader sees unfolded, and how long opening folded parts takes, each laid out at once:
the fold of the passing tests, its first group, and every group of it. Pass ``--page`` to open a
page written already. This is a benchmark, not part of the test suite; figures mean most on a quiet
machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.merge_scale import write_shards

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
from report_page import CHROMIUM_FLAGS, chromium  # noqa: E402  (docs/report_page.py: the browser the tests use)

TIMINGS = """
const nav = performance.getEntriesByType('navigation')[0];
const paint = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
const shown = Array.from(document.querySelectorAll('section[id^=test-]')).filter(s => s.checkVisibility()).length;
return {dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd,
        first_contentful_paint_ms: paint ? paint.startTime : null, sections_shown: shown,
        sections: document.querySelectorAll('section[id^=test-]').length};
"""

# Opens the fold of the passing tests, then its first group, then all its groups, each laid out at once.
UNFOLD = """
const fold = Array.from(document.querySelectorAll('details'))
  .find(d => /^[0-9,]+ tests that passed$/.test(d.querySelector(':scope > summary').textContent));
if (!fold) return null;
function timed(open) {
  const began = performance.now();
  open();
  document.body.getBoundingClientRect();  // lay the page out now
  void document.body.offsetHeight;
  return performance.now() - began;
}
const groups = Array.from(fold.querySelectorAll(':scope > details'));
return {open_fold_ms: timed(() => { fold.open = true; }),
        open_first_group_ms: groups.length ? timed(() => { groups[0].open = true; }) : null,
        open_every_group_ms: timed(() => { groups.forEach(g => { g.open = true; }); }),
        groups: groups.length};
"""


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = chromium()
    if browser is None:
        raise SystemExit("Chromium is not installed (Debian: chromium, chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def measure(page: Path, loads: int = 3) -> list[dict[str, Any]]:
    """Each load's timings of ``page`` in a fresh headless Chromium."""
    figures = []
    for _ in range(loads):
        driver = _driver()
        try:
            driver.set_page_load_timeout(300)
            driver.get(page.as_uri())
            figures.append({**driver.execute_script(TIMINGS), **(driver.execute_script(UNFOLD) or {})})
        finally:
            driver.quit()
    return figures


def _merged_page(folder: Path, shards: int, tests: int, pairs: int) -> Path:
    paths = write_shards(folder, shards, tests, pairs)
    page = folder / "merged.html"
    command = [sys.executable, "-m", "pytest_otel_overhead", "merge", *map(str, paths), "--html", str(page)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr)
    return page


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, help="open this page instead of writing one")
    parser.add_argument("--shards", type=int, default=50)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="otel-overhead-report-") as tmp:
        page = args.page or _merged_page(Path(tmp), args.shards, args.tests, args.pairs)
        figures = measure(page, args.loads)
        print(f"page {page.stat().st_size / 2**20:.1f} MiB")
    for figure in figures:
        print(json.dumps(figure))
    for key in figures[0]:
        values = [f[key] for f in figures if isinstance(f.get(key), (int, float))]
        if values:
            print(f"{key}: median {statistics.median(values):.0f} ({', '.join(f'{v:.0f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
