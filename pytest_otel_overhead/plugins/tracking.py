"""Regression tracking and CI outputs within a pytest session: save the run, compare it with a
saved one, and write the Markdown and HTML reports.

``flags.py`` declares the options; while measuring, ``plugin.py`` registers the
:class:`TrackingPlugin` that :func:`tracking_plugin` builds, and its own hooks do the rest: fail a
test whose overhead regressed, save and report at the session's end, print what was done. The run
to compare with is found and read when the plugin is built, in ``pytest_configure``, so a wrong
name or a damaged file stops the session before any measuring, with one line saying which file
and why.

A session that ends before running all its tests (interrupted, ``-x``/``--maxfail``, an internal
error, an xdist worker lost) saves its run marked incomplete (``history.run.Incomplete``), which
``latest`` then passes over.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.compat import is_worker
from pytest_otel_overhead.engine.replicas import MAX_PROCESSES
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
from pytest_otel_overhead.history.machines import machine_differences, machine_term
from pytest_otel_overhead.history.run import EndCause, Incomplete
from pytest_otel_overhead.history.store import (
    DEFAULT_STORAGE,
    HistoryError,
    NoCompleteRun,
    RunRecord,
    Store,
    git_info,
    machine_info,
    now_iso,
    valid_name,
)
from pytest_otel_overhead.outputs import append_text_file, write_text_file
from pytest_otel_overhead.reports.terminal import wrap_lines
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.session import OverheadSession, terminal_width
from pytest_otel_overhead.settings.flags import SAVED_PROCESSES
from pytest_otel_overhead.settings.options import SessionOptions
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import SettingsError, parse_count
from pytest_otel_overhead.warning_types import OverheadCompareWarning

__all__ = ["PLUGIN_NAME", "TrackingPlugin", "tracking_plugin"]

PLUGIN_NAME = "otel-overhead-tracking"


def _check_swallowed(config: pytest.Config, option: str, value: str) -> None:
    """``--opt tests/`` makes argparse take ``tests/`` as the optional value; refuse that guess."""
    args = list(config.invocation_params.args)
    for index, arg in enumerate(args[:-1]):
        if arg == option and args[index + 1] == value and (Path(config.invocation_params.dir) / value).exists():
            raise pytest.UsageError(
                f"otel-overhead: {option} took {value!r} as its value, but {value!r} is also a path; "
                f"write {option}={value} to mean the name, or put the option after the test paths"
            )


def _save_name(config: pytest.Config, options: SessionOptions) -> str | None:
    named = options.save
    if named is None and not options.autosave:
        return None
    if named:
        _check_swallowed(config, "--otel-overhead-save", named)
        if not valid_name(named):
            raise pytest.UsageError(
                f"otel-overhead: --otel-overhead-save={named}: a run name has letters, digits, '.', '_' and '-' "
                "only (at most 64)"
            )
        return named
    git = git_info(config.rootpath)
    if git is None:
        return "run"
    return str(git["commit"])[:10] + ("-dirty" if git.get("dirty") else "")


def _criteria(options: SessionOptions) -> tuple[Criterion, ...]:
    given = options.compare_fail
    if given is None:
        return ()
    try:
        return parse_criteria(given.value, given.source)
    except SettingsError as error:
        raise pytest.UsageError(f"otel-overhead: {error}") from None


def _min_processes(options: SessionOptions) -> int:
    """How many processes measure each test at least: as given, else ``SAVED_PROCESSES`` in a run that is saved."""
    given = options.min_processes
    if given is None:
        return SAVED_PROCESSES if options.save is not None or options.autosave else 1
    try:
        count = parse_count(given.value, given.source)
    except SettingsError as error:
        raise pytest.UsageError(f"otel-overhead: {error}") from None
    if count > MAX_PROCESSES:
        raise pytest.UsageError(
            f"otel-overhead: {given.source}: {count} is more than the {MAX_PROCESSES} processes that "
            "processes auto adds at most"
        )
    return count


def _compare_spec(config: pytest.Config, options: SessionOptions, criteria: Sequence[Criterion]) -> str | None:
    """Which saved run to compare with: as named, else the latest one when there are criteria to check."""
    given = options.compare
    if given is not None:
        if given.on_command_line:
            _check_swallowed(config, "--otel-overhead-compare", given.value)
        return given.value
    return "latest" if criteria else None


@dataclass(eq=False)  # eq=False: a plugin object is hashed by identity
class TrackingPlugin:
    """What this session saves, compares and writes, what it has found so far, and the hooks doing it."""

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
    ended_early: Incomplete | None = None
    finished: int = 0
    """Tests torn down so far: fewer than collected after ``-x`` means the run is incomplete."""
    machine_term: float = 0.0
    """The machine term of the comparisons, judged as the session starts: the gate and the end use the same."""
    machines: tuple[str, ...] = ()
    """What set the machines apart as the session started (``machines.machine_differences``)."""
    min_processes: int = 1
    """At least this many processes measure each test (``--otel-overhead-min-processes``; more in a saved run)."""

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.config.issue_config_time_warning(OverheadCompareWarning(message), stacklevel=2)

    # -- while the tests run -------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        self.check_report(report)
        return report

    def check_report(self, report: pytest.TestReport) -> None:
        """After a measured test's call: compare its new results, and fail it if they regressed."""
        if self.baseline is None or report.when != "call":
            return
        fresh = self.session.results[self.compared :]
        self.compared = len(self.session.results)
        regressed = []
        for result in fresh:
            change = compare_results(
                self.baseline.result(result.nodeid), result, self.criteria, machine=self.machine_term
            )
            self.changes[result.nodeid] = change
            if change.verdict is Verdict.FAIL:
                regressed.append(change)
        if regressed and report.passed:
            after = RunRecord(tuple(fresh), {}, now_iso())
            messages = [
                f"otel-overhead: {regression_message(change, self._comparison_for([change], after))}"
                for change in regressed
            ]
            report.outcome = "failed"
            report.longrepr = "\n".join(messages)

    def still_open(self, result: TestResult) -> str | None:
        """Why ``result`` wants more processes for this session's saving or comparing (``engine.OpenGate``)."""
        if result.processes < self.min_processes:
            run = "a saved run" if self.save_name is not None else "this run"
            return f"{run} measures each test over at least {self.min_processes} processes"
        baseline = self.baseline
        earlier = baseline.result(result.nodeid) if baseline is not None and self.criteria else None
        if baseline is None or earlier is None:
            return None
        change = compare_results(earlier, result, self.criteria, machine=self.machine_term)
        if change.verdict is not Verdict.INCONCLUSIVE:
            return None
        return f"its comparison with run {baseline.label!r} is undecided"

    def _comparison_for(self, changes: Sequence[TestChange], after: RunRecord) -> Comparison:
        assert self.baseline is not None
        return Comparison(
            before=self.baseline,
            after=after,
            tests=tuple(changes),
            criteria=self.criteria,
            differences=self.differences,
        )

    # -- how the session ends ----------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            self.finished += 1

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C, SIGINT, ``pytest.exit()``, or xdist stopping its workers (``-x`` under ``-n``)."""
        detail = str(getattr(excinfo.value, "msg", "") or excinfo.value) or excinfo.typename
        self.ended_early = self.ended_early or Incomplete(EndCause.INTERRUPTED, detail.splitlines()[0])

    def pytest_internalerror(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        detail = f"{excinfo.typename}: {excinfo.value}".splitlines()[0][:200]
        self.ended_early = self.ended_early or Incomplete(EndCause.INTERNAL_ERROR, detail)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        """An xdist worker went down; with an error it died (and its test with it), not finished."""
        if error is not None:
            worker = getattr(getattr(node, "gateway", None), "id", "?")
            detail = f"worker {worker}: {str(error).splitlines()[0] if str(error) else 'crashed'}"[:200]
            cause = EndCause.INTERRUPTED if error == "keyboard-interrupt" else EndCause.WORKER_LOST
            self.ended_early = self.ended_early or Incomplete(cause, detail)

    def _incomplete(self, session: pytest.Session, exitstatus: int) -> Incomplete | None:
        """Why this session did not run all its tests, or None when it did."""
        if self.ended_early is not None:
            return self.ended_early
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return Incomplete(EndCause.INTERRUPTED)
        if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            return Incomplete(EndCause.INTERNAL_ERROR)
        stopped = session.shouldfail or session.shouldstop
        # -x with its failure on the last test ran everything; under xdist the count is unknown (0).
        if stopped and (session.testscollected == 0 or self.finished < session.testscollected):
            return Incomplete(EndCause.STOPPED, str(stopped))
        return None

    # -- at the session's end (before the terminal summary) --------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Save the run (marked incomplete when the session ended early), then write the reports."""
        if is_worker(self.config):
            return  # an xdist worker holds only its share: the controller saves and reports the whole run
        results = tuple(self.session.results)
        if not results:
            return  # nothing measured: nothing to save or report
        current = RunRecord(
            results=results,
            environment=environment(),
            created=now_iso(),
            name=self.save_name,
            git=git_info(self.config.rootpath),
            machine=machine_info(),
            settings=self.session.base.as_dict(),
            incomplete=self._incomplete(session, int(exitstatus)),
        )
        self.current = current = self._save(current)
        comparison = None
        if self.baseline is not None:
            machine = (self.machine_term, self.machines)
            comparison = compare_runs(self.baseline, current, self.criteria, machine=machine)
            comparison = dataclasses.replace(comparison, differences=self.differences or comparison.differences)
            self.lines += comparison_lines(comparison)
            for problem in comparison.problems:  # a metric that could not be compared is said so, not skipped
                self.warnings.append(problem)
                warnings.warn(OverheadCompareWarning(problem), stacklevel=1)
        self._write_reports(current, comparison)

    def _save(self, current: RunRecord) -> RunRecord:
        if self.save_name is None:
            return current
        try:
            path = self.store.save(current, self.save_name)
        except HistoryError as error:
            # One line, no warning: under -W error a warning here would turn into an internal error.
            self.lines.append(f"ERROR could not save run {self.save_name!r}: {error}")
            return current
        if current.incomplete is None:
            self.lines.append(f"saved run {self.save_name!r} to {path}")
        else:
            self.lines.append(
                f"saved run {self.save_name!r} to {path} as INCOMPLETE ({current.incomplete.describe()}, "
                f"{len(current.results)} measured): 'latest' and comparisons leave it out unless it is named"
            )
        return dataclasses.replace(current, path=path)

    def _write_reports(self, current: RunRecord, comparison: Comparison | None) -> None:
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.markdown or step_summary:
            from pytest_otel_overhead.reports.markdown import markdown_report  # only when asked for

            text = markdown_report(current, comparison, warnings=self.warnings, unmeasured=self.session.unmeasured)
            if self.markdown:
                self._write(self.markdown, text, f"wrote Markdown summary to {self.markdown}")
            if step_summary:
                self._write(Path(step_summary), text, None, append=True)
        if self.html:
            from pytest_otel_overhead.reports.html import html_report  # matplotlib is imported only when asked for

            history, errors = self.store.load_all()
            notes = [*self.warnings, *(f"left out of the history: {e}" for e in errors)]
            text = html_report(current, comparison, history, warnings=notes, unmeasured=self.session.unmeasured)
            self._write(self.html, text, f"wrote HTML report to {self.html}")

    def _write(self, target: Path, text: str, done: str | None, *, append: bool = False) -> None:
        try:
            if append:
                append_text_file(target, text)
            else:
                write_text_file(target, text)
        except OSError as error:  # outputs.OutputError: the file and the cause, in one line
            self.lines.append(f"ERROR {error}")
            return
        except UnicodeError as error:  # text from a saved run that no encoding holds
            self.lines.append(f"ERROR could not write {target}: {error}")
            return
        if done is not None:
            self.lines.append(done)

    # -- in the terminal summary, after the verdict table ----------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        width = terminal_width(self.config)
        for line in self.lines:
            red = line.startswith("ERROR") or "REGRESSED" in line
            for part in wrap_lines([line], width):
                terminalreporter.write_line(part, red=red)


def tracking_plugin(config: pytest.Config, session: OverheadSession, options: SessionOptions) -> TrackingPlugin:
    """The plugin for this session: its options checked, and the run to compare with found and read."""
    storage = options.storage or config.rootpath / DEFAULT_STORAGE
    store = Store(storage)
    criteria = _criteria(options)
    spec = _compare_spec(config, options, criteria)
    baseline = None
    pending_warning = note = None
    if spec is not None:
        try:
            if spec.startswith("latest") and not store.files():
                pending_warning = f"no saved run in {storage} to compare with; this run is not compared"
            else:
                baseline, note = store.load(spec, base=Path(config.invocation_params.dir))
        except NoCompleteRun as error:
            if spec != "latest":
                raise pytest.UsageError(f"otel-overhead: {error}") from None
            pending_warning = f"{error}; this run is not compared"
        except HistoryError as error:
            raise pytest.UsageError(f"otel-overhead: {error}") from None
    plugin = TrackingPlugin(
        config=config,
        session=session,
        store=store,
        save_name=_save_name(config, options),
        baseline=baseline,
        criteria=criteria,
        markdown=options.markdown,
        html=options.html,
        min_processes=_min_processes(options),
    )
    if pending_warning:
        plugin.warn(pending_warning)
    if note:  # which incomplete runs `latest` passed over, or that the named one is incomplete
        plugin.lines.append(note)
        plugin.warnings.append(note)
    if plugin.min_processes > 1 or (baseline is not None and criteria):
        session.still_open = plugin.still_open
        session.min_processes = plugin.min_processes
    if baseline is not None:
        here = RunRecord((), environment(), now_iso(), machine=machine_info())
        plugin.differences = tuple(environment_differences(baseline, here))
        plugin.machine_term = machine_term(baseline, here)
        plugin.machines = machine_differences(baseline, here)
        if plugin.differences:
            plugin.warn(f"comparing with run {baseline.label!r}, measured elsewhere: " + "; ".join(plugin.differences))
    return plugin
