"""Regression tracking and CI outputs within a pytest session: save the run, compare it with a
saved one, and write the Markdown and HTML reports.

``plugin.py`` declares nothing of this itself: it calls :func:`add_options`, then
:func:`configure`, :func:`check_report`, :func:`finish` and :func:`terminal_summary` from its hooks.
The run to compare with is found and read at configure time, so a wrong name or a damaged file
stops the session before any measuring, with one line saying which file and why.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.history.compare import (
    Comparison,
    Criterion,
    TestChange,
    compare_results,
    compare_runs,
    comparison_lines,
    environment_differences,
    parse_criteria,
    regression_message,
)
from pytest_otel_overhead.history.document import environment
from pytest_otel_overhead.history.store import (
    DEFAULT_STORAGE,
    HistoryError,
    RunRecord,
    Store,
    git_info,
    load_run,
    machine_info,
    now_iso,
    valid_name,
)
from pytest_otel_overhead.session import OverheadSession
from pytest_otel_overhead.units import SettingsError
from pytest_otel_overhead.verdict import Verdict

__all__ = [
    "OverheadCompareWarning",
    "add_options",
    "check_report",
    "configure",
    "finish",
    "terminal_summary",
]

_key = pytest.StashKey["Tracking"]()


class OverheadCompareWarning(pytest.PytestWarning):
    """The compared runs were measured on different machines or versions, or there was nothing to compare."""


def add_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--otel-overhead-save",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="save this run (with raw samples) to the run store, named NAME (default: the git commit)",
    )
    group.addoption(
        "--otel-overhead-autosave",
        action="store_true",
        default=None,
        help="save every run to the run store, named after the git commit",
    )
    parser.addini(
        "otel_overhead_autosave", "save every run, as --otel-overhead-autosave does", type="bool", default=False
    )
    group.addoption(
        "--otel-overhead-storage",
        metavar="PATH",
        default=None,
        help=f"directory of saved runs (default: {DEFAULT_STORAGE} in the root directory)",
    )
    parser.addini(
        "otel_overhead_storage", f"directory of saved runs (default {DEFAULT_STORAGE}), relative to the ini file"
    )
    group.addoption(
        "--otel-overhead-compare",
        nargs="?",
        const="latest",
        default=None,
        metavar="NAME|latest",
        help="compare each test's overhead with a saved run: latest (default), latest~N, a run name or a file",
    )
    parser.addini("otel_overhead_compare", "saved run to compare with, as --otel-overhead-compare does")
    group.addoption(
        "--otel-overhead-compare-fail",
        action="append",
        default=None,
        metavar="EXPR",
        help="fail a test whose overhead grew beyond EXPR since the compared run, decided on an interval: "
        "cpu:+1pp (percentage points) or cpu:+20%% (relatively); comma-separated or repeated; "
        "compares with the latest saved run unless --otel-overhead-compare names another",
    )
    parser.addini("otel_overhead_compare_fail", "regression criteria, as --otel-overhead-compare-fail takes them")
    group.addoption("--otel-overhead-markdown", metavar="PATH", default=None, help="write a Markdown summary to PATH")
    parser.addini("otel_overhead_markdown", "write a Markdown summary to this path, as --otel-overhead-markdown does")
    group.addoption(
        "--otel-overhead-html",
        metavar="PATH",
        default=None,
        help="write a self-contained HTML report to PATH (charts with pytest-otel-overhead[html])",
    )
    parser.addini("otel_overhead_html", "write an HTML report to this path, as --otel-overhead-html does")


@dataclass
class Tracking:
    """What this session saves, compares and writes, and what it has found so far."""

    config: pytest.Config
    session: OverheadSession
    store: Store
    save_name: str | None
    baseline: RunRecord | None
    criteria: tuple[Criterion, ...]
    markdown: Path | None
    html: Path | None
    differences: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    changes: dict[str, TestChange] = field(default_factory=dict)
    compared: int = 0
    current: RunRecord | None = None


def _ini_base(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath else config.rootpath


def _path_option(config: pytest.Config, name: str) -> Path | None:
    """A path from the command line (relative to where pytest was started) or the ini file (relative to it)."""
    value = config.getoption("otel_overhead_" + name)
    if value:
        return Path(config.invocation_params.dir) / str(value)
    value = config.getini("otel_overhead_" + name)
    if value:
        return _ini_base(config) / str(value)
    return None


def _check_swallowed(config: pytest.Config, option: str, value: str) -> None:
    """``--opt tests/`` makes argparse take ``tests/`` as the optional value; refuse that guess."""
    args = list(config.invocation_params.args)
    for index, arg in enumerate(args[:-1]):
        if arg == option and args[index + 1] == value and (Path(config.invocation_params.dir) / value).exists():
            raise pytest.UsageError(
                f"otel-overhead: {option} took {value!r} as its value, but {value!r} is also a path; "
                f"write {option}={value} to mean the name, or put the option after the test paths"
            )


def _save_name(config: pytest.Config, root: Path) -> str | None:
    named = config.getoption("otel_overhead_save")
    autosave = config.getoption("otel_overhead_autosave")
    if autosave is None:
        autosave = config.getini("otel_overhead_autosave")
    if named is None and not autosave:
        return None
    if named:
        _check_swallowed(config, "--otel-overhead-save", named)
        if not valid_name(named):
            raise pytest.UsageError(
                f"otel-overhead: --otel-overhead-save={named}: a run name has letters, digits, '.', '_' and '-' "
                "only (at most 64)"
            )
        return str(named)
    git = git_info(root)
    if git is None:
        return "run"
    return str(git["commit"])[:10] + ("-dirty" if git.get("dirty") else "")


def _criteria(config: pytest.Config) -> tuple[Criterion, ...]:
    values = config.getoption("otel_overhead_compare_fail")
    try:
        if values:
            return parse_criteria(values, "--otel-overhead-compare-fail")
        ini = config.getini("otel_overhead_compare_fail")
        if ini:
            return parse_criteria(str(ini), "ini otel_overhead_compare_fail")
    except SettingsError as error:
        raise pytest.UsageError(f"otel-overhead: {error}") from None
    return ()


def _warn(config: pytest.Config, tracking: Tracking, message: str) -> None:
    tracking.warnings.append(message)
    config.issue_config_time_warning(OverheadCompareWarning(message), stacklevel=2)


def configure(config: pytest.Config, session: OverheadSession) -> None:
    """Read the options, find the run to compare with, and keep it all for the session's end."""
    storage = _path_option(config, "storage") or config.rootpath / DEFAULT_STORAGE
    store = Store(storage)
    criteria = _criteria(config)
    spec = config.getoption("otel_overhead_compare")
    if spec is not None:
        _check_swallowed(config, "--otel-overhead-compare", spec)
    elif config.getini("otel_overhead_compare"):
        spec = str(config.getini("otel_overhead_compare"))
    elif criteria:
        spec = "latest"
    baseline = None
    pending_warning = None
    if spec is not None:
        try:
            if spec.startswith("latest") and not store.files():
                pending_warning = f"no saved run in {storage} to compare with; this run is not compared"
            else:
                baseline = load_run(store.resolve(spec, base=Path(config.invocation_params.dir)))
        except HistoryError as error:
            raise pytest.UsageError(f"otel-overhead: {error}") from None
    tracking = Tracking(
        config=config,
        session=session,
        store=store,
        save_name=_save_name(config, config.rootpath),
        baseline=baseline,
        criteria=criteria,
        markdown=_path_option(config, "markdown"),
        html=_path_option(config, "html"),
    )
    config.stash[_key] = tracking
    if pending_warning:
        _warn(config, tracking, pending_warning)
    if baseline is not None:
        here = RunRecord((), environment(), now_iso(), machine=machine_info())
        tracking.differences = tuple(environment_differences(baseline, here))
        if tracking.differences:
            _warn(
                config,
                tracking,
                f"comparing with run {baseline.label!r}, measured elsewhere: " + "; ".join(tracking.differences),
            )


def _comparison_for(tracking: Tracking, changes: Sequence[TestChange], after: RunRecord) -> Comparison:
    assert tracking.baseline is not None
    return Comparison(
        before=tracking.baseline,
        after=after,
        tests=tuple(changes),
        criteria=tracking.criteria,
        differences=tracking.differences,
    )


def check_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a measured test's call: compare its new results, and fail it if they regressed."""
    tracking = item.config.stash.get(_key, None)
    if tracking is None or tracking.baseline is None or report.when != "call":
        return
    fresh = tracking.session.results[tracking.compared :]
    tracking.compared = len(tracking.session.results)
    regressed = []
    for result in fresh:
        change = compare_results(tracking.baseline.result(result.nodeid), result, tracking.criteria)
        tracking.changes[result.nodeid] = change
        if change.verdict is Verdict.FAIL:
            regressed.append(change)
    if regressed and report.passed:
        after = RunRecord(tuple(fresh), {}, now_iso())
        messages = [
            f"otel-overhead: {regression_message(change, _comparison_for(tracking, [change], after))}"
            for change in regressed
        ]
        report.outcome = "failed"
        report.longrepr = "\n".join(messages)


def _write(path: Path, text: str, append: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as stream:
        stream.write(text)


def finish(config: pytest.Config) -> None:
    """At the session's end: save the run, then write the reports (before the terminal summary)."""
    tracking = config.stash.get(_key, None)
    if tracking is None or hasattr(config, "workerinput"):
        return  # an xdist worker holds only its share: the controller saves and reports the whole run
    results = tuple(tracking.session.results)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not results:
        return  # nothing measured: nothing to save or report
    current = RunRecord(
        results=results,
        environment=environment(),
        created=now_iso(),
        name=tracking.save_name,
        git=git_info(config.rootpath),
        machine=machine_info(),
        settings=tracking.session.base.as_dict(),
    )
    if tracking.save_name is not None:
        try:
            path = tracking.store.save(current, tracking.save_name)
            current = dataclasses.replace(current, path=path)
            tracking.lines.append(f"saved run {tracking.save_name!r} to {path}")
        except HistoryError as error:
            tracking.lines.append(f"ERROR could not save the run: {error}")
            warnings.warn(OverheadCompareWarning(f"could not save the run: {error}"), stacklevel=1)
    tracking.current = current
    comparison = None
    if tracking.baseline is not None:
        comparison = compare_runs(tracking.baseline, current, tracking.criteria)
        comparison = dataclasses.replace(comparison, differences=tracking.differences or comparison.differences)
        tracking.lines += comparison_lines(comparison)
        for problem in comparison.problems:  # a metric that could not be compared is said so, not skipped
            tracking.warnings.append(problem)
            warnings.warn(OverheadCompareWarning(problem), stacklevel=1)
    if tracking.markdown or step_summary:
        from pytest_otel_overhead.reports.markdown import markdown_report  # only when asked for

        text = markdown_report(current, comparison, warnings=tracking.warnings)
        for target, append in ((tracking.markdown, False), (Path(step_summary) if step_summary else None, True)):
            if target is None:
                continue
            try:
                _write(target, text, append=append)
                if not append:
                    tracking.lines.append(f"wrote Markdown summary to {target}")
            except OSError as error:
                tracking.lines.append(f"ERROR could not write {target}: {error.strerror or error}")
    if tracking.html:
        from pytest_otel_overhead.reports.html import html_report  # matplotlib is imported only when asked for

        history, errors = tracking.store.load_all()
        notes = [*tracking.warnings, *(f"left out of the history: {e}" for e in errors)]
        try:
            _write(tracking.html, html_report(current, comparison, history, warnings=notes))
            tracking.lines.append(f"wrote HTML report to {tracking.html}")
        except OSError as error:
            tracking.lines.append(f"ERROR could not write {tracking.html}: {error.strerror or error}")


def terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    tracking = config.stash.get(_key, None)
    if tracking is None or not tracking.lines:
        return
    for line in tracking.lines:
        terminalreporter.write_line(line, red=line.startswith("ERROR") or "REGRESSED" in line)
