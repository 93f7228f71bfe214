"""Session options: read once from the command line and the ini file, the command line winning.

Configurations are parsed in process but never configured, so nothing is measured or installed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_otel_overhead.settings.options import Given, SessionOptions, read_options, session_options

INI = """
[pytest]
otel_overhead = true
otel_overhead_json = reports/out.json
otel_overhead_autosave = true
otel_overhead_storage = runs
otel_overhead_compare = main
otel_overhead_compare_fail = cpu:+1pp,wall:+20%
otel_overhead_markdown = summary.md
otel_overhead_html = report.html
otel_overhead_sweep =
    sample_rate=0.1,1
    batch_size=128,512
otel_overhead_tune = true
otel_overhead_tune_time = 2min
otel_overhead_explain = true
"""


def options_of(pytester: pytest.Pytester, *args: str) -> SessionOptions:
    return read_options(pytester.parseconfig(*args))


def test_without_options_every_default(pytester: pytest.Pytester) -> None:
    assert options_of(pytester) == SessionOptions()
    assert not SessionOptions().measuring


def test_the_ini_file_alone_paths_relative_to_its_folder(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("ci")
    (folder / "pytest.ini").write_text(INI, encoding="utf-8")
    options = options_of(pytester, "-c", "ci/pytest.ini")
    assert options == SessionOptions(
        enabled=True,
        json=folder / "reports" / "out.json",
        autosave=True,
        storage=folder / "runs",
        compare=Given("main", "ini otel_overhead_compare"),
        compare_fail=Given(("cpu:+1pp,wall:+20%",), "ini otel_overhead_compare_fail"),
        markdown=folder / "summary.md",
        html=folder / "report.html",
        sweep=Given(("sample_rate=0.1,1", "batch_size=128,512"), "ini otel_overhead_sweep"),
        tune=True,
        tune_time=Given("2min", "ini otel_overhead_tune_time"),
        explain=True,
    )
    assert not options.compare.on_command_line  # type: ignore[union-attr]


def test_the_command_line_wins_paths_relative_to_where_pytest_started(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("ci")
    (folder / "pytest.ini").write_text(INI, encoding="utf-8")
    here = Path(pytester.path)
    options = options_of(
        pytester, "-c", "ci/pytest.ini", "--otel-overhead-json=cli.json", "--otel-overhead-storage=cli-runs",
        "--otel-overhead-compare", "--otel-overhead-compare-fail=cpu:+2pp", "--otel-overhead-compare-fail=wall:+1pp",
        "--otel-overhead-markdown=m.md", "--otel-overhead-html=h.html", "--otel-overhead-sweep", "sample_rate=0.5,1",
        "--otel-overhead-tune-time=30", "--otel-overhead-sweep-chart=charts/sweep.html", "--otel-overhead-save=pr-1",
    )  # fmt: skip
    assert options.json == here / "cli.json"
    assert options.storage == here / "cli-runs"
    assert options.compare == Given("latest", "--otel-overhead-compare")
    assert options.compare.on_command_line
    assert options.compare_fail == Given(("cpu:+2pp", "wall:+1pp"), "--otel-overhead-compare-fail")
    assert (options.markdown, options.html) == (here / "m.md", here / "h.html")
    assert options.sweep == Given(("sample_rate=0.5,1",), "--otel-overhead-sweep")
    assert options.tune_time == Given("30", "--otel-overhead-tune-time")
    assert options.sweep_chart == here / "charts" / "sweep.html"
    assert options.save == "pr-1"
    assert (options.enabled, options.autosave, options.tune, options.explain) == (True, True, True, True)


def test_an_ini_file_at_the_root_and_a_bare_save(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\notel_overhead_json = out.json\n")
    options = options_of(pytester, "--otel-overhead-save", "--otel-overhead-autosave")
    assert options.json == Path(pytester.path) / "out.json"
    assert (options.save, options.autosave, options.enabled) == ("", True, False)


@pytest.mark.parametrize(
    "args",
    [["--otel-overhead-tune"], ["--otel-overhead-explain"], ["--otel-overhead-sweep", "sample_rate=0.1,1"]],
)
def test_an_advice_mode_implies_measuring(pytester: pytest.Pytester, args: list[str]) -> None:
    options = options_of(pytester, *args)
    assert options.advice and options.measuring and not options.enabled


def test_read_once_per_session(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig("--otel-overhead")
    first = session_options(config)
    assert first.enabled
    assert session_options(config) is first
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.enabled = False  # type: ignore[misc]
