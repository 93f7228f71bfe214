"""``python -m pytest_otel_overhead calibrate``: measure the between-process and load terms, write the calibration file.

The user's marked tests are measured over ``processes`` fresh processes each, once on the quiet
machine and, unless ``load`` is 0, once more beside ``load`` busy processes (``runs``). The quiet
run scales the built-in spread, both runs measure the ``load`` term and its ``load_share``
(``terms``), and each widens the built-in one where it is wider (``_term``); the file
(``settings.calibration``) is checked by reading it back before it is written, so the plugin can
always read what this command wrote. What was measured is printed, and kept in the
file's ``measured``.
"""

from __future__ import annotations

import functools
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_otel_overhead.calibrate import DEFAULT_LOAD, DEFAULT_PROCESSES
from pytest_otel_overhead.calibrate.runs import CalibrationError, MeasuredRun, busy_processes, measure
from pytest_otel_overhead.calibrate.terms import (
    RunFigures,
    load_share,
    load_term,
    moved_figures,
    run_figures,
    spread_scale,
    widened,
)
from pytest_otel_overhead.formatting import NO_FIGURE, signed_percent
from pytest_otel_overhead.history.environment import environment, machine_info
from pytest_otel_overhead.history.run import now_iso, printable
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.reports.terminal import command_width, wrap_lines
from pytest_otel_overhead.settings.calibration import CALIBRATION_FILE, Calibration
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM, ProcessTerm, TermSource
from pytest_otel_overhead.units import SettingsError

__all__ = ["INTERRUPTED", "Request", "calibrate", "report_lines", "run_command"]
INTERRUPTED = 130
"""Exit status after Ctrl-C, as a shell reports a process ended by SIGINT."""

Say = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    """What the command was asked: which tests, over how many processes, beside how many busy ones, into which file."""

    pytest_args: tuple[str, ...]
    processes: int = DEFAULT_PROCESSES
    load: int = DEFAULT_LOAD
    out: Path = Path(CALIBRATION_FILE)
    cwd: Path = field(default_factory=Path.cwd)

    @property
    def target(self) -> Path:
        """The file to write: ``out``, taken from ``cwd`` when relative."""
        return self.cwd / self.out

    def check(self) -> None:
        if self.processes < 2:
            raise CalibrationError(f"--processes {self.processes}: a spread between processes needs 2 or more")
        if self.load < 0:
            raise CalibrationError(f"--load {self.load}: busy processes are 0 (no loaded run) or more")


@dataclass(frozen=True)
class Measured:
    """Both runs' figures, and what they cost."""

    quiet: RunFigures
    loaded: RunFigures | None
    seconds: float

    @functools.cached_property
    def load(self) -> float | None:
        """The load term's floor measured; None without a loaded run, or one that shares no figure near zero
        with the quiet run."""
        return load_term(self.quiet.figures, self.loaded.figures) if self.loaded is not None else None

    @functools.cached_property
    def share(self) -> float | None:
        """The load term's share measured; None without a loaded run, or one that shares no figure beyond
        ``terms.FLOOR_RANGE`` with the quiet run."""
        return load_share(self.quiet.figures, self.loaded.figures) if self.loaded is not None else None

    @functools.cached_property
    def scale(self) -> float:
        """How many times the built-in spread the quiet run's τ are (``terms.spread_scale``)."""
        return spread_scale(self.quiet.figures)

    def moved(self, *, near: bool) -> int:
        """How many figures the floor (``near``) or the share stands on."""
        return moved_figures(self.quiet.figures, self.loaded.figures, near=near) if self.loaded is not None else 0


def calibrate(request: Request, say: Say) -> tuple[Calibration, Measured]:
    """Measure, weigh and write the calibration file; ``CalibrationError`` with one line when it cannot."""
    request.check()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="otel-overhead-calibrate-") as folder:
        work = Path(folder)
        quiet = _figures(_run(request, work, "quiet", say), request)
        loaded = None
        if request.load:
            with busy_processes(request.load):
                loaded = _figures(_run(request, work, "loaded", say), request)
        measured = Measured(quiet, loaded, time.perf_counter() - began)
        calibration = Calibration(_term(measured), _record(request, measured))
        _write(calibration, request.target, work)
    return calibration, measured


def _run(request: Request, work: Path, name: str, say: Say) -> MeasuredRun:
    beside = f" beside {request.load} busy processes" if name == "loaded" else ""
    selected = shlex.join(request.pytest_args)
    say(f"calibrate: {name} run{beside}: python -m pytest {selected}, {request.processes} processes a test")
    run = measure(request.pytest_args, request.processes, work, name, request.cwd)
    failed = " (some tests failed: pytest's exit status 1)" if run.exit_status else ""
    say(f"calibrate: {name} run: {_count(len(run.run.results), 'test')} measured in {run.seconds:.0f} s{failed}")
    return run


def _figures(run: MeasuredRun, request: Request) -> RunFigures:
    if not run.run.results:
        raise CalibrationError(
            f"no marked test was measured among `{shlex.join(request.pytest_args)}` (a test needs the "
            f"otel_overhead marker or fixture); pytest's output ends: {run.output_tail}"
        )
    figures = run_figures(run.run.results)
    if not figures.figures:
        raise CalibrationError(f"no test gives a spread between processes: {figures.left_out[0]}")
    return figures


def _term(measured: Measured) -> ProcessTerm:
    """The built-in prior widened where the runner spreads or moves more (``terms.widened``): its spread scaled,
    its load terms weighed, each against the built-in one by the figures behind it. ``df`` stays the built-in
    one's, so no interval is narrower for the calibration."""
    factor = widened(measured.scale, len(measured.quiet.figures), 1.0)
    load = widened(measured.load, measured.moved(near=True), BUILT_IN_TERM.load)
    share = widened(measured.share, measured.moved(near=False), BUILT_IN_TERM.load_share)
    tau, slope = BUILT_IN_TERM.tau * factor, BUILT_IN_TERM.slope * factor
    return ProcessTerm(tau, slope, BUILT_IN_TERM.df, load, TermSource.CALIBRATED, share)


def _record(request: Request, measured: Measured) -> dict[str, Any]:
    """The file's ``measured``: what ran, where, when, and each test's figures."""
    loaded = {(f.test, f.metric): f for f in measured.loaded.figures} if measured.loaded is not None else {}
    figures = []
    for figure in measured.quiet.figures:
        under_load = loaded.get((figure.test, figure.metric))
        figures.append(
            {
                "test": figure.test,
                "metric": figure.metric,
                "processes": figure.processes,
                "overhead": math.expm1(figure.estimate),
                "log_ratio": figure.estimate,
                "standard_error": figure.standard_error,
                "tau": figure.tau,
                "loaded_log_ratio": None if under_load is None else under_load.estimate,
                "loaded_standard_error": None if under_load is None else under_load.standard_error,
            }
        )
    return {
        "tests": len(measured.quiet.processes),
        "processes_per_test": request.processes,
        "processes": sum(measured.quiet.processes.values()),
        "seconds": round(measured.seconds, 1),
        "load_processes": request.load,
        "load_measured": measured.load is not None,
        "load_share_measured": measured.share is not None,
        # What the runs measured, before each was weighed against the built-in term by its figures.
        "measured_spread_scale": measured.scale,
        "measured_spread_figures": len(measured.quiet.figures),
        "measured_load": measured.load,
        "measured_load_figures": measured.moved(near=True),
        "measured_load_share": measured.share,
        "measured_load_share_figures": measured.moved(near=False),
        "cpu_model": machine_info()["cpu_model"],
        "python": environment()["python"],
        "date": now_iso(),
        "pytest_args": list(request.pytest_args),
        "figures": figures,
        "left_out": list(measured.quiet.left_out),
    }


def _write(calibration: Calibration, out: Path, work: Path) -> None:
    """Write the file only once its text reads back as a calibration: the plugin stops on one it cannot read."""
    text = calibration.to_json()
    check = work / CALIBRATION_FILE
    check.write_text(text, encoding="utf-8")
    try:
        Calibration.read(check, "the calibration measured")
    except SettingsError as error:
        raise CalibrationError(f"{error}; nothing written to {out}") from None
    write_text_file(out, text)


def report_lines(calibration: Calibration, measured: Measured, request: Request) -> tuple[list[str], list[str]]:
    """Two tables, per test its estimate and τ and the terms next to the built-in ones; then sentences: how the
    terms were weighed, over how many processes, in how long."""
    loaded = {(f.test, f.metric): f for f in measured.loaded.figures} if measured.loaded is not None else {}
    rows = [["test", "metric", "processes", "quiet", "τ (log ratio)", "loaded"]]
    for f in measured.quiet.figures:
        under_load = loaded.get((f.test, f.metric))
        shown = NO_FIGURE if under_load is None else signed_percent(math.expm1(under_load.estimate))
        rows.append([f.test, f.metric, str(f.processes), signed_percent(math.expm1(f.estimate)), f"{f.tau:.4f}", shown])
    tests, processes = len(measured.quiet.processes), sum(measured.quiet.processes.values())
    beside = f"quiet and beside {request.load} busy processes" if request.load else "quiet only"
    where = calibration.measured.get("cpu_model") or "this machine"
    tables = [*_table(rows), "", *_table(_term_rows(calibration.term, measured))]
    return tables, [
        "each measured term is weighed with the built-in one by the figures behind it (the built-in's counting as "
        f"{BUILT_IN_TERM.df:g}), and counts where that is wider: a calibration widens the built-in terms on a runner "
        "that spreads or moves more, and never narrows them",
        f"measured {_count(tests, 'test')} over {_count(processes, 'process', 'processes')} in all "
        f"({request.processes} asked a test), {beside}, in {measured.seconds:.0f} s on {where}, "
        f"Python {calibration.measured.get('python')}",
    ]


def _term_rows(term: ProcessTerm, measured: Measured) -> list[list[str]]:
    """Each term calibrated next to the built-in one, with what the runs measured before it was weighed."""
    scaled = f"built-in × {term.tau / BUILT_IN_TERM.tau:.2f}; measured × {measured.scale:.2f}"
    notes = {"tau": f" ({scaled} on {_count(len(measured.quiet.figures), 'figure')})"}
    for name, moved, figures in (
        ("load", measured.load, measured.moved(near=True)),
        ("load_share", measured.share, measured.moved(near=False)),
    ):
        known = moved is not None
        notes[name] = f" (measured {moved:.4f} on {_count(figures, 'figure')})" if known else " (not measured)"
    rows = [["term (log ratio)", "calibrated", "built-in"]]
    for name in ("tau", "slope", "df", "load", "load_share"):
        value, built_in = getattr(term, name), getattr(BUILT_IN_TERM, name)
        mine = f"{value:g}" if name == "df" else f"{value:.4f}"
        rows.append([name, mine + notes.get(name, ""), f"{built_in:g}"])
    return rows


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in rows]


def run_command(request: Request, say: Say = print, width: int | None = None) -> int:
    """The command: 0 when the file was written, 2 when it could not be, ``INTERRUPTED`` after Ctrl-C.

    Its sentences are wrapped to ``width`` (the terminal's, ``$COLUMNS``, else ``DEFAULT_WIDTH``); its tables
    are not, whose rows wrapped would no longer read as rows."""
    fit = command_width() if width is None else width

    def tell(line: str) -> None:
        for part in wrap_lines([printable(line)], fit):
            say(part)

    try:
        calibration, measured = calibrate(request, tell)
    except CalibrationError as error:
        print(f"error: calibrate: {printable(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: calibrate: interrupted; nothing written", file=sys.stderr)
        return INTERRUPTED
    for line in measured.quiet.left_out:
        print(f"note: left out {printable(line)}", file=sys.stderr)
    tables, sentences = report_lines(calibration, measured, request)
    for line in tables:
        say(printable(line))
    for line in [*sentences, _wrote(request.target)]:
        tell(line)
    return 0


def _wrote(target: Path) -> str:
    """Where the file was written, and which pytest sessions will use it."""
    if target.name == CALIBRATION_FILE:
        return f"wrote {target}: sessions whose root folder is {target.parent} use it in place of the built-in terms"
    return f"wrote {target}: sessions given --otel-overhead-calibration={target} use it in place of the built-in terms"
