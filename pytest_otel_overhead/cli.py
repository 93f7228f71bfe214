"""``python -m pytest_otel_overhead``: list saved runs, compare two, merge shards, turn a run into reports, calibrate.

Without a command (or with ``--help``) it says how the plugin itself is run, under pytest, and lists
the commands; that is a successful exit, since a newcomer typing the package name asked for it. Runs
are named as ``--otel-overhead-compare`` names them: ``latest``, ``latest~N``, a run name, the
start of a file name in the store, or a path to a JSON file (a saved run or an
``--otel-overhead-json`` report). Exit status: 0 done, 1 a regression criterion failed, 2 a run
could not be found or read (one line on stderr naming the file) or the command line was wrong.
``calibrate`` measures the project's marked tests under pytest (``calibrate/``): its own options come
first, and everything from the first other argument (or after ``--``) goes to pytest; it exits 0
when it wrote the calibration file, 2 when it could not, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pytest_otel_overhead.calibrate import DEFAULT_LOAD, DEFAULT_PROCESSES
from pytest_otel_overhead.formatting import NO_FIGURE
from pytest_otel_overhead.history.compare import Comparison, compare_runs, comparison_lines, parse_criteria
from pytest_otel_overhead.history.reader import Shard, load_shard
from pytest_otel_overhead.history.store import DEFAULT_STORAGE, HistoryError, RunRecord, Store, load_run, printable
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.reports.terminal import command_width, summary_lines, wrap_lines
from pytest_otel_overhead.settings.calibration import CALIBRATION_FILE
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import SettingsError

__all__ = ["main"]

ABOUT = """\
pytest-otel-overhead measures what OpenTelemetry instrumentation costs, in your tests. The measuring
itself runs under pytest:

  pytest --otel-overhead                        measure marked tests and fixture calls; fail those over budget
  @pytest.mark.otel_overhead(budget="5%")       on a test: its body is measured, without and with telemetry
  def test_x(otel_overhead): otel_overhead(fn)  the fixture: measure one call inside a test
  pytest --help                                 every --otel-overhead-* option

Without --otel-overhead the marker and the fixture do nothing. The commands below work on runs saved
with --otel-overhead-save or --otel-overhead-autosave, but calibrate, which measures the marked tests
on this machine; 'COMMAND --help' tells more."""

CALIBRATE = "calibrate"
CALIBRATE_OPTIONS = ("--processes", "--load", "--out")
"""The calibrate command's own options, each with a value: the arguments after them go to pytest."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_otel_overhead",
        description=ABOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        metavar="DIR",
        help=f"directory of saved runs (default: {DEFAULT_STORAGE})",
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    listing = commands.add_parser("list", help="list saved runs, oldest first")
    compare = commands.add_parser("compare", help="compare run B with an earlier run A, test by test")
    compare.add_argument("before", metavar="A", help="the earlier run")
    compare.add_argument("after", metavar="B", help="the later run")
    compare.add_argument(
        "--fail",
        action="append",
        metavar="EXPR",
        help="exit 1 when an overhead grew beyond EXPR (cpu:+1pp, cpu:+20%%; comma-separated or repeated)",
    )
    compare.add_argument("--markdown", metavar="PATH", help="also write the comparison as Markdown to PATH")
    compare.add_argument("--html", metavar="PATH", help="also write an HTML report of B with the comparison to PATH")
    report = commands.add_parser("report", help="write the reports of one run")
    report.add_argument("run", metavar="RUN", help="a saved run, or a JSON file written by --otel-overhead-json")
    report.add_argument("--html", metavar="PATH", help="write the HTML report to PATH")
    report.add_argument("--markdown", metavar="PATH", help="write the Markdown summary to PATH")
    report.add_argument("--compare", metavar="RUN", help="compare with this earlier run in the reports")
    merge = _merge_parser(commands)
    for sub in (listing, compare, report, merge):
        sub.add_argument("--storage", default=argparse.SUPPRESS, metavar="DIR", help="directory of saved runs")
    _calibrate_parser(commands)
    return parser


def _calibrate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    calibrate = commands.add_parser(
        CALIBRATE,
        help="measure how far processes and load move your overheads",
        usage="python -m pytest_otel_overhead calibrate [--processes N] [--load K] [--out FILE] [--] PYTEST_ARGS...",
        description=(
            "Measure the marked tests that PYTEST_ARGS select over fresh processes, quiet and beside busy "
            "processes, and write the between-process and load terms the plugin then uses in place of its "
            "built-in ones. Its own options come first; the arguments after them go to pytest."
        ),
    )
    processes, load, out = CALIBRATE_OPTIONS
    calibrate.add_argument(
        processes,
        type=int,
        default=DEFAULT_PROCESSES,
        metavar="N",
        help=f"fresh processes a test is measured over (default {DEFAULT_PROCESSES})",
    )
    calibrate.add_argument(
        load,
        type=int,
        default=DEFAULT_LOAD,
        metavar="K",
        help=f"busy processes beside the second run; 0: no second run, the built-in load term (default {DEFAULT_LOAD})",
    )
    calibrate.add_argument(
        out, default=CALIBRATION_FILE, metavar="FILE", help=f"the file to write (default {CALIBRATION_FILE}, here)"
    )
    calibrate.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARGS", help="what pytest is to run, as for pytest")
    return calibrate


def split_calibrate(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` up to the calibrate command's own options, and pytest's arguments after them (``--`` dropped).

    pytest's options cannot pass through argparse (``-k`` is none of ours), so they are cut off first;
    for any other command, nothing is.
    """
    index = 0
    while index < len(argv) and argv[index].startswith("-"):  # the options before the command
        index += 2 if argv[index] == "--storage" else 1
    if index >= len(argv) or argv[index] != CALIBRATE:
        return list(argv), []
    index += 1
    while index < len(argv):
        arg = argv[index]
        if arg in CALIBRATE_OPTIONS:
            index += 2
        elif arg.partition("=")[0] in CALIBRATE_OPTIONS or arg in ("-h", "--help"):
            index += 1
        else:
            break
    rest = list(argv[index:])
    return list(argv[:index]), rest[1:] if rest[:1] == ["--"] else rest


def _calibrate(args: argparse.Namespace, pytest_args: Sequence[str]) -> int:
    from pytest_otel_overhead.calibrate.command import Request, run_command  # only when calibrating

    return run_command(Request(tuple(pytest_args), args.processes, args.load, Path(args.out)))


def _merge_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    merge = commands.add_parser(
        "merge",
        help="merge the runs of shards (jobs measuring parts of a suite)",
        description="One run with every test of the shards; exit 1 when a budget failed, 2 when they cannot be merged.",
    )
    merge.add_argument("runs", nargs="+", metavar="RUN", help="saved runs or --otel-overhead-json reports")
    merge.add_argument("--expect", type=int, metavar="N", help="fail unless exactly N shards are given")
    merge.add_argument("--json", metavar="PATH", help="write the merged run as a JSON report to PATH")
    merge.add_argument("--markdown", metavar="PATH", help="write the Markdown summary to PATH")
    merge.add_argument("--html", metavar="PATH", help="write the HTML report to PATH")
    merge.add_argument("--save", metavar="NAME", help="save the merged run under NAME in the store")
    return merge


def _merge(store: Store, args: argparse.Namespace) -> int:
    """Merge the shards, print their verdicts, write and save what was asked; 1 when a budget failed.

    Without the cyclic garbage collector: the shards' records are many thousands of objects that live to the end and
    form no cycles, and the collector walked them again and again for nothing."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _merged(store, args)
    finally:
        if collecting:
            gc.enable()


def _merged(store: Store, args: argparse.Namespace) -> int:
    from pytest_otel_overhead.history.merge import (  # only when merging
        UNMEASURED,
        merge_carried,
        run_chunks,
        same_version_documents,
        test_chunks,
        unmeasured_tests,
        with_rows,
    )

    loaded = [_load_carrying(store, spec) for spec in args.runs]
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    shards = [(shard.run, shard.carried) for shard in loaded]
    as_read = [shard.sections for shard in loaded]  # their unmeasured sections, decoded with the rest
    merged, summary, rows = merge_carried(shards, created=created, name=args.save, expect=args.expect, sections=as_read)
    documents = same_version_documents([(shard.run, shard.documents) for shard in loaded], summary.combined)
    del loaded, shards
    tests = test_chunks(merged, rows, documents) if args.save is not None or args.json else []
    if args.save is not None:  # first: a name the store refuses stops the command before anything is written
        text = run_chunks(merged, rows, tests=tests)
        merged = dataclasses.replace(merged, path=store.save(merged, args.save, text=text))
        print(f"saved run {args.save!r} to {merged.path}")
    unmeasured = unmeasured_tests(merged)
    lines = summary_lines(merged.results, verbose=True, width=command_width())
    lines += [f"not measured in any shard: {e['nodeid']} ({e['outcome']}: {e['reason']})" for e in unmeasured]
    lines.append(summary.line())
    sys.stdout.write("".join(printable(line) + "\n" for line in lines))  # one write: thousands of lines
    if args.json:  # laid out as a session's JSON report, a test a line
        sections = {UNMEASURED: unmeasured} if unmeasured else None
        _write(args.json, [*run_chunks(merged, rows, sections, tests=tests, report=True), "\n"])
    if args.html and rows:  # the report draws the raw rows of a few tests: read those, checked as text already
        from pytest_otel_overhead.reports.html_large import rows_drawn

        merged = with_rows(merged, rows, rows_drawn(merged.results))
    _reports(store, args, merged, None)
    return 1 if any(result.verdict is Verdict.FAIL for result in merged.results) else 0


def _load_carrying(store: Store, spec: str) -> Shard:
    """The run ``spec`` names, its raw rows kept as text and its tests' documents as read
    (``history.reader.load_shard``); ``latest`` is read as ``_load`` reads it."""
    if spec == "latest" or spec.startswith("latest~"):
        return Shard(_load(store, spec), {}, {})
    shard = load_shard(store.resolve(spec, base=Path.cwd()))
    run = shard.run
    if run.incomplete is not None:
        print(
            f"note: run {run.label!r} is incomplete ({run.incomplete.describe()}); used since it was named",
            file=sys.stderr,
        )
    return shard


def _load(store: Store, spec: str) -> RunRecord:
    """The run ``spec`` names; ``latest`` passes over incomplete runs, and a line on stderr says so."""
    run, note = store.load(spec, base=Path.cwd())
    if note:
        print(f"note: {note}", file=sys.stderr)
    return run


def _history(store: Store, run: RunRecord) -> tuple[list[RunRecord], list[str]]:
    """Saved runs up to ``run`` (all of them for a run from outside the store), for the trend."""
    runs, errors = store.load_all()
    if run.path is not None and run.path.parent.resolve() == store.root.resolve():
        kept = []
        for past in runs:
            kept.append(past)
            if past.path is not None and past.path.resolve() == run.path.resolve():
                break
        runs = kept
    return runs, [f"left out of the history: {e}" for e in errors]


def _write(path: str, text: str | Iterable[str]) -> None:
    print(f"wrote {write_text_file(path, text)}")


def _list(store: Store) -> int:
    """One row per saved run; a file that is not one is left out and named in one line on stderr."""
    files = store.files()
    if not files:
        print(f"no runs saved in {store.root}")
        return 0
    rows = [["file", "name", "saved", "commit", "tests", "PASS", "FAIL", "INCONCLUSIVE", "Python", "otel-sdk"]]
    errors = []
    for path in files:
        try:
            run = load_run(path)
        except HistoryError as error:
            errors.append(str(error))
            continue
        rows.append([printable(cell) for cell in _row(path, run)])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip())
    for line in errors:
        print(f"error: {printable(line)}", file=sys.stderr)
    return 2 if errors else 0


def _row(path: Path, run: RunRecord) -> list[str]:
    counts = {v: sum(1 for r in run.results if r.verdict is v) for v in Verdict}
    packages = run.environment["packages"] if isinstance(run.environment.get("packages"), dict) else {}
    return [
        path.name,
        run.name or NO_FIGURE,
        run.created or NO_FIGURE,
        run.commit or NO_FIGURE,
        str(len(run.results)),
        str(counts[Verdict.PASS]),
        str(counts[Verdict.FAIL]),
        str(counts[Verdict.INCONCLUSIVE]),
        str(run.environment.get("python") or NO_FIGURE),
        str(packages.get("opentelemetry-sdk") or NO_FIGURE),
    ]


def _compare(store: Store, args: argparse.Namespace) -> int:
    criteria = parse_criteria(args.fail, "--fail") if args.fail else ()
    before, after = _load(store, args.before), _load(store, args.after)
    comparison = compare_runs(before, after, criteria)
    for line in wrap_lines(comparison_lines(comparison), command_width()):
        print(printable(line))
    _reports(store, args, after, comparison)
    return 1 if comparison.regressed else 0


def _report(store: Store, args: argparse.Namespace) -> int:
    run = _load(store, args.run)
    comparison = compare_runs(_load(store, args.compare), run) if args.compare else None
    if not args.html and not args.markdown:
        width = command_width()
        lines = summary_lines(run.results, verbose=True, width=width)
        if comparison is not None:
            lines += wrap_lines(comparison_lines(comparison), width)
        for line in lines:
            print(printable(line))
        return 0
    _reports(store, args, run, comparison)
    return 0


def _reports(store: Store, args: argparse.Namespace, run: RunRecord, comparison: Comparison | None) -> None:
    """The Markdown and HTML reports asked for, warning of metrics the comparison could not use."""
    problems = list(comparison.problems) if comparison is not None else []
    if not args.markdown and not args.html:
        return
    from pytest_otel_overhead.history.merge import run_unmeasured  # only when a report is written

    unmeasured = run_unmeasured(run)
    if args.markdown:
        from pytest_otel_overhead.reports.markdown import markdown_report  # only when asked for

        _write(args.markdown, markdown_report(run, comparison, warnings=problems, unmeasured=unmeasured))
    if args.html:
        from pytest_otel_overhead.reports.html import html_report  # only when asked for

        history, notes = _history(store, run)
        text = html_report(run, comparison, history, warnings=[*problems, *notes], unmeasured=unmeasured)
        _write(args.html, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    own, pytest_args = split_calibrate(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == CALIBRATE:
        return _calibrate(args, pytest_args)
    store = Store(Path(args.storage))
    try:
        if args.command == "list":
            return _list(store)
        if args.command == "compare":
            return _compare(store, args)
        if args.command == "merge":
            return _merge(store, args)
        return _report(store, args)
    except (HistoryError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as failure:
        where = f"{failure.filename}: " if failure.filename else ""
        print(f"error: {where}{failure.strerror or failure}", file=sys.stderr)
        return 2
