"""The README and docs/ stay true: generated tables match the code, links lead somewhere, advice works."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from conftest import docs_script

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target), not images
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _options_table() -> ModuleType:
    return docs_script("options_table")


def test_the_committed_options_page_matches_what_the_code_generates() -> None:
    options_table = _options_table()
    page = options_table.PAGE.read_text(encoding="utf-8")
    assert options_table.page_with_tables(page) == page, "run: python docs/options_table.py"


def test_every_setting_and_option_has_a_row_in_the_options_page() -> None:
    from pytest_otel_overhead.settings.keys import KEYS
    from pytest_otel_overhead.settings.sources import option_name

    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    for key in KEYS:
        assert f"| `{key}` | `{option_name(key)}` |" in page, key
    assert "| `--otel-overhead` | `otel_overhead` |" in page


def test_the_options_check_fails_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options_table = _options_table()
    stale = tmp_path / "options.md"
    stale.write_text(f"# Options\n\n{options_table.BEGIN}\n| old |\n{options_table.END}\n", encoding="utf-8")
    monkeypatch.setattr(options_table, "PAGE", stale)
    assert options_table.main(["--check"]) == 1
    assert options_table.main([]) == 0  # rewrites it
    assert options_table.main(["--check"]) == 0
    assert "| old |" not in stale.read_text(encoding="utf-8")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces as dashes."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6} +(.+?) *$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower().replace("`", "")).replace(" ", "-") for h in headings}


def _links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_to_an_existing_file(page: Path) -> None:
    for target in _links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        assert destination.exists(), f"{page.name}: {target} leads nowhere"
        if anchor and destination.suffix == ".md":
            assert anchor in _anchors(destination), f"{page.name}: {target}: no such heading"


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[a](missing.md) [b](#title) [c](https://example.invalid/x)\n", encoding="utf-8")
    assert _links(page) == ["missing.md", "#title"]
    assert not (tmp_path / "missing.md").exists() and "title" in _anchors(page)


# --- the README's conftest advice ---------------------------------------------------------------

MEASURED = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("app")


@pytest.mark.otel_overhead(budget="100000%", max_time=10)  # room for a starved, busy machine
def test_measured():
    with tracer.start_as_current_span("work"):
        sum(range(200))


def test_provider():
    provider = trace.get_tracer_provider()
    print(f"PROVIDER={type(provider).__module__}.{type(provider).__name__}")
"""


def _readme_conftest() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    (conftest,) = (b for b in blocks if "def pytest_configure(config):" in b)
    return conftest


@pytest.mark.parametrize(
    ("flag", "provider"),
    [
        ((), "opentelemetry.sdk.trace.TracerProvider"),
        (("--otel-overhead",), "pytest_otel_overhead."),
    ],
    ids=["without the flag", "with the flag"],
)
def test_the_readme_conftest_sets_its_provider_only_when_not_measuring(
    pytester: pytest.Pytester, flag: tuple[str, ...], provider: str
) -> None:
    pytester.makeconftest(_readme_conftest())
    pytester.makepyfile(test_app=MEASURED)
    # A fresh interpreter: the global provider can be set only once per process.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-s", *flag)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
    (line,) = [line for line in result.stdout.lines if "PROVIDER=" in line]
    assert line.split("PROVIDER=", 1)[1].startswith(provider), line
    measured = "1 measured: 1 PASS, 0 FAIL, 0 INCONCLUSIVE" in result.stdout.str()
    assert measured is bool(flag)


def test_a_provider_set_unconditionally_stops_a_measuring_session(pytester: pytest.Pytester) -> None:
    """Why the README's advice is needed: without the check, --otel-overhead cannot run."""
    pytester.makeconftest(_readme_conftest().replace('if not config.getoption("otel_overhead"):', "if True:"))
    pytester.makepyfile(test_app=MEASURED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "--otel-overhead")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if "otel-overhead" in line]
    # The error names the line that set it: the conftest's call, found among the project's loaded modules.
    call = next(n for n, text in enumerate(_readme_conftest().splitlines(), 1) if "set_tracer_provider(" in text)
    assert f"was set (at conftest.py:{call}) before --otel-overhead" in line, line


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) < 250
