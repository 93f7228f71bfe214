"""Command line of the real-workload accuracy harness: ``python -m benchmarks.real``.

Runs the jobs of a plan (see ``plan.py``) one after another, writes each record to a JSON-lines
file as soon as its process ends (so an interrupted run keeps what it measured) and a progress log
beside it, compares the saved plugin runs pairwise (A/A), and prints the report.
``--report FILE...`` prints the report of results files again, over several files at once (a quiet
and a loaded run together, for the contradictions between them).

``--budget-offsets`` makes it a near-budget run (``budgets.py``): the references first (its own,
or those of earlier files given with ``--reference-from``), then the budgets placed around them,
then one plugin process per offset and run. ``--regression`` makes it a regression campaign
(``regression.py``): rounds of a saved before run, and the regression variant and the unchanged code
each compared with it in the session that measures them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import random
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from benchmarks.real.budgets import (
    OffsetScale,
    placed_budgets,
    referenced_workloads,
    unique_references,
    without_copied_references,
)
from benchmarks.real.near_report import format_near
from benchmarks.real.plan import (
    EXTRA_SPANS,
    FULL,
    QUICK,
    QUICK_MAX_TIME,
    REGRESSION_WORKLOADS,
    WORKLOADS,
    Counts,
    Job,
    Plan,
    phases,
    schedule,
)
from benchmarks.real.plugin import compare_saved, run_instructions, run_plugin
from benchmarks.real.processes import Record, Workspace, environment, load_average, prepare_workdir
from benchmarks.real.regression import run_round, with_session_logs
from benchmarks.real.regression_report import format_regression
from benchmarks.real.report import plain_budget, read_records, report_text
from benchmarks.real.tools import run_benchmark, run_pyperf, run_reference
from benchmarks.real.values import (
    count,
    existing_file,
    offset_scale,
    offsets,
    percentage,
    positive,
    spans_by_workload,
    workload_list,
)
from pytest_otel_overhead.calibrate.runs import busy_processes

RESULTS = Path(__file__).resolve().parent.parent / "results"
AT_ONE_BUDGET = ("plugin", "pyperf", "benchmark", "instructions")
"""Records that give the table at one budget something to show; a near-budget run alone has the cell table."""
RUNNERS: dict[str, Callable[[Job, Plan, Workspace], list[Record]]] = {
    "plugin": run_plugin,
    "reference": run_reference,
    "reference_frozen": run_reference,
    "pyperf": run_pyperf,
    "benchmark": run_benchmark,
    "instructions": run_instructions,
    "regression": run_round,
}


def add_regression(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("regression campaign")
    group.add_argument(
        "--regression",
        action="store_true",
        help="rounds (--runs) of a saved before run, then the regression variant and the unchanged code each "
        f"compared with it in their own session at cpu:+1pp (workloads: {','.join(REGRESSION_WORKLOADS)})",
    )
    group.add_argument(
        "--extra-spans",
        type=spans_by_workload,
        metavar="WORKLOAD=N,...",
        help="child spans the regression variant adds per call "
        f"({','.join(f'{w}={n}' for w, n in EXTRA_SPANS.items())})",
    )


def add_near_budget(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("near the budget")
    group.add_argument(
        "--budget-offsets",
        type=offsets,
        metavar="POINTS",
        help="hold each workload to budgets placed at its reference plus these offsets, in points at 5%% "
        "(e.g. -1.5,-0.5,0.5,1.5; write --budget-offsets=-1.5,... ): one plugin process per offset and run",
    )
    group.add_argument(
        "--offset-scale",
        type=offset_scale,
        default=OffsetScale.RATIO,
        help="how an offset applies far from 5%%: ratio (the same step in ln(1 + overhead), default), reference "
        "(offset x reference / 5%% above 30%%), points (as given)",
    )
    group.add_argument(
        "--reference-from",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="place the budgets around the references recorded in these results files; the run measures "
        "references of its own only for the workloads they lack",
    )


def arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.real",
        description="Accuracy of pytest-otel-overhead on real instrumented workloads, against a plain A/B "
        "reference, pyperf and pytest-benchmark.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: 2 plugin runs, 2 reference processes, one round of each tool")
    add("--runs", type=count(1), help=f"plugin runs (pytest processes), each over every workload ({FULL.runs})")
    add("--reference-processes", type=count(0), help=f"reference processes per workload ({FULL.reference_processes})")
    add(
        "--frozen-reference-processes",
        type=count(0),
        help="reference processes per workload with the heap frozen, the plugin's GC regime "
        f"({FULL.frozen_reference_processes})",
    )
    add("--reference-seconds", type=positive, help=f"measuring time per reference process ({FULL.reference_seconds:g})")
    add("--block-ms", type=positive, default=20.0, help="reference block length in baseline CPU ms (20)")
    add("--pyperf-rounds", type=count(0), help=f"pyperf rounds per workload ({FULL.pyperf_rounds})")
    add("--benchmark-rounds", type=count(0), help=f"pytest-benchmark two-run rounds ({FULL.benchmark_rounds})")
    add("--workloads", type=workload_list, help=f"comma-separated, from {','.join(WORKLOADS)} (all)")
    add("--load", type=count(0), default=0, help="busy processes kept running during the run (0: quiet)")
    add("--max-time", type=positive, help="the plugin's max_time in s (default: the plugin's, 30 s; --quick: 10 s)")
    add("--processes", type=count(1), help="the plugin's processes setting (default: the plugin's, 1)")
    add("--confidence", help="the plugin's confidence setting, e.g. 99%% (default: the plugin's, 95%%)")
    add(
        "--calibration",
        type=existing_file,
        help="a calibration file the plugin runs use (default: none, built-in terms)",
    )
    add("--budget", type=percentage, help="relative budget for every method, e.g. 5%% (default: the plugin's, 5%%)")
    add("--instructions", action="store_true", help="also one plugin run in instructions mode (needs valgrind)")
    add("--seed", type=int, help="seed of the job order (default: random, recorded)")
    add("--deadline", type=positive, metavar="MINUTES", help="start no new job after MINUTES")
    add("--freeze", action="store_true", help="measure a copy of the package taken at the start")
    add("--out", type=Path, help="results file (default benchmarks/results/real-<date>[-loadN].jsonl)")
    add(
        "--compare-saved",
        type=Path,
        metavar="DIR",
        help="only compare the saved plugin runs kept in DIR (a run's <out>-saved directory) pairwise, with the "
        "package as it is now, and report",
    )
    add("--report", nargs="+", type=Path, metavar="FILE", help="print the report of results files and exit")
    add("--markdown", action="store_true", help="print the table as Markdown")
    add(
        "--logs",
        type=Path,
        metavar="DIR",
        help="with --report: a regression campaign's kept session output (<kind>-<round>.log), for the tests its "
        "gate failed as they ended, where the records predate that field",
    )
    add_near_budget(parser)
    add_regression(parser)
    args = parser.parse_args(argv)
    if args.regression and args.budget_offsets:
        parser.error("--regression and --budget-offsets: a campaign compares runs at the user's default budget")
    if args.extra_spans and not args.regression:
        parser.error("--extra-spans is the regression variant's: give --regression too")
    if args.regression:
        args.workloads = args.workloads or REGRESSION_WORKLOADS
        spans = dict(EXTRA_SPANS) | dict(args.extra_spans or ())
        if lacking := [w for w in args.workloads if w not in spans]:
            parser.error(f"no regression variant for {', '.join(lacking)}: give --extra-spans {lacking[0]}=N")
        args.extra_spans = tuple((w, spans[w]) for w in args.workloads)
    args.workloads = args.workloads or WORKLOADS
    if args.budget_offsets and args.budget:
        parser.error("--budget and --budget-offsets: a near-budget run places its own budgets")
    if args.reference_from and not args.budget_offsets:
        parser.error("--reference-from places budgets: give --budget-offsets too")
    return args


def imported_references(paths: Sequence[Path] | None) -> list[Record]:
    """The reference records of earlier results files, each process once, marked with their file."""
    records: list[Record] = []
    for path in paths or ():
        records += [r | {"imported_from": str(path)} for r in unique_references(read_records([path]))]
    return unique_references(records)


def build_plan(args: argparse.Namespace, imported: Sequence[Record] = ()) -> Plan:
    base = QUICK if args.quick else FULL
    near = bool(args.budget_offsets)
    if near:  # the other tools know one budget for all: a near-budget run leaves them out unless asked
        base = replace(base, pyperf_rounds=0, benchmark_rounds=0)
    if args.regression:  # a campaign is rounds of plugin processes only
        base = Counts(runs=base.runs, reference_processes=0, reference_seconds=0.0, pyperf_rounds=0, benchmark_rounds=0)
    counts = Counts(
        runs=args.runs if args.runs is not None else base.runs,
        reference_processes=base.reference_processes if args.reference_processes is None else args.reference_processes,
        reference_seconds=args.reference_seconds or base.reference_seconds,
        pyperf_rounds=base.pyperf_rounds if args.pyperf_rounds is None else args.pyperf_rounds,
        benchmark_rounds=base.benchmark_rounds if args.benchmark_rounds is None else args.benchmark_rounds,
        frozen_reference_processes=(
            base.frozen_reference_processes
            if args.frozen_reference_processes is None
            else args.frozen_reference_processes
        ),
    )
    return Plan(
        workloads=args.workloads,
        counts=counts,
        block_ms=args.block_ms,
        load=args.load,
        max_time=args.max_time if args.max_time is not None else (QUICK_MAX_TIME if args.quick else None),
        budget=args.budget,
        processes=args.processes,
        confidence=args.confidence,
        calibration=args.calibration,
        instructions=args.instructions,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(2**32),
        quick=args.quick,
        deadline_min=args.deadline,
        freeze=args.freeze,
        budget_offsets=args.budget_offsets or (),
        offset_scale=args.offset_scale,
        reference_from=tuple(str(p) for p in args.reference_from or ()),
        referenced=tuple(w for w in args.workloads if w in referenced_workloads(imported)),
        extra_spans=args.extra_spans or (),
    )


class Output:
    """The results file (one JSON record a line, flushed as written) and the progress log beside it."""

    def __init__(self, results: TextIO, log: TextIO, plan: Plan) -> None:
        self.results, self.log, self.plan = results, log, plan
        self.written: list[Record] = []

    def write(self, record: Record) -> None:
        self.copy({**record, "load_generator": self.plan.load, "plugin_processes": self.plan.processes or 1})

    def copy(self, record: Record) -> None:
        """A record as it is (one taken from an earlier results file keeps its own load)."""
        self.results.write(json.dumps(record, allow_nan=False) + "\n")
        self.results.flush()
        self.written.append(record)

    def say(self, message: str) -> None:
        line = f"[{dt.datetime.now():%H:%M:%S}] {message}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()


def describe(records: Sequence[Record]) -> str:
    parts = []
    for r in records:
        if r.get("type") in ("plugin_run", "end", "regression_round"):
            continue
        what = " ".join(filter(None, [r.get("kind"), r.get("verdict") or r.get("outcome")]))
        if r.get("shift") is not None:
            what += f" {r['shift'] * 100:+.1f}pp"
        estimate = r.get("estimate")
        parts.append(
            f"{r.get('workload', '')} {what}".strip() + (f" {estimate * 100:+.1f}%" if estimate is not None else "")
        )
    return ", ".join(parts)


@dataclass
class Progress:
    """Where the run is: its start, its jobs, how many are done (over both phases of a near-budget run)."""

    total: int
    started: float
    done: int = 0


def run_jobs(
    jobs: Sequence[Job], plan: Plan, space: Workspace, output: Output, saved: list[int], progress: Progress
) -> str | None:
    """Every job in order, each record written as it comes, the plugin runs that were saved noted in
    ``saved``; returns why it stopped early, if it did."""
    started = progress.started
    for job in jobs:
        number = progress.done = progress.done + 1
        if plan.deadline_min is not None and time.perf_counter() - started >= plan.deadline_min * 60:
            return f"deadline of {plan.deadline_min:g} min: stopped after {number - 1}/{progress.total} jobs"
        job_started = time.perf_counter()
        records = RUNNERS[job.kind](job, plan, space)
        for record in records:
            output.write(record)
            if record["type"] == "plugin_run" and record["saved"]:
                saved.append(record["run"])
        load = load_average()
        output.say(
            f"{number}/{progress.total} {job.describe()} in {time.perf_counter() - job_started:.0f} s: "
            f"{describe(records)}; "
            f"elapsed {(time.perf_counter() - started) / 60:.1f} min; load {load[0] if load else float('nan'):.2f}"
        )
    return None


def compare_runs(plan: Plan, space: Workspace, output: Output, saved: Sequence[int], saved_as: str = "run") -> None:
    """A/A: each saved plugin run (``saved_as``: or a campaign's before run) against the next one (same code, same
    machine)."""
    for before, after in itertools.pairwise(saved):
        records = compare_saved(before, after, plan, space, saved_as)
        for record in records:
            output.write(record)
        output.say(f"compare {saved_as} {before} → {saved_as} {after}: {describe(records)}")


def run_record(plan: Plan, space: Workspace, argv: Sequence[str]) -> Record:
    """The first record of a results file: command, plan, engine and machine."""
    return {
        "type": "run",
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.real", shlex.join(argv)]).strip(),
        "plan": plan.as_dict(),
        "engine": space.engine_digest(),
        "environment": environment(),
    }


def with_budgets(plan: Plan, output: Output) -> Plan:
    """Near the budget: the budgets placed around the references written so far (copied and measured),
    each written as a record; the plan that holds them."""
    placed, problems = placed_budgets(output.written, plan.workloads, plan.budget_offsets, plan.offset_scale)
    for budget in placed:
        output.write(budget.record())
    for problem in problems:
        output.say(problem)
    described = ", ".join(f"{b.workload} {b.offset:+g}: {b.budget}" for b in placed)
    output.say(f"budgets around the {plan.offset_scale} references: {described or 'none'}")
    return replace(plan, budgets=tuple(placed))


def measure(plan: Plan, space: Workspace, output: Output, imported: Sequence[Record]) -> str | None:
    """The jobs (near the budget: references, budgets, then the rest) and the A/A comparison; why it stopped
    early, if it did."""
    first, then = phases(plan, schedule(plan))
    for record in imported:
        if record["workload"] in plan.workloads:
            output.copy(record)
    progress = Progress(len(first) + len(then), time.perf_counter())
    saved: list[int] = []
    stopped = run_jobs(first, plan, space, output, saved, progress)
    if plan.near_budget and stopped is None:
        plan = with_budgets(plan, output)
    stopped = stopped or run_jobs(then, plan, space, output, saved, progress)
    compare_runs(plan, space, output, sorted(saved))
    return stopped


def run(plan: Plan, out: Path, argv: Sequence[str], imported: Sequence[Record] = ()) -> None:
    jobs = schedule(plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    interrupted, stopped = False, None
    with (
        out.open("w", encoding="utf-8") as results,
        out.with_suffix(".log").open("w", encoding="utf-8") as log,
        tempfile.TemporaryDirectory(prefix="otel-real-") as tmp,
    ):
        output = Output(results, log, plan)
        space = Workspace(Path(tmp), prepare_workdir(Path(tmp), plan.freeze))
        output.write(run_record(plan, space, argv))
        output.say(f"{len(jobs)} jobs, busy processes of the load generator: {plan.load}; results → {out}")
        try:
            with busy_processes(plan.load):  # the calibrate command's busy processes, the same load
                stopped = measure(plan, space, output, imported)
        except KeyboardInterrupt:
            interrupted = True
            output.say("interrupted: the report covers the jobs finished so far")
        if stopped:
            output.say(stopped)
        if space.store.is_dir():  # kept, so the A/A comparison can be made again (--compare-saved)
            shutil.copytree(space.store, saved_dir(out), dirs_exist_ok=True)
        output.write(
            {
                "type": "end",
                "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "wall_s": time.perf_counter() - started,
                "interrupted": interrupted,
                "stopped": stopped,
                "load_average": load_average(),
            }
        )


def saved_dir(out: Path) -> Path:
    return out.with_name(out.stem + "-saved")


SAVED_RUN = re.compile(r"_(run|before)-(\d{3})_[0-9a-f]+\.json$")
"""A saved plugin run's file name, or a regression campaign's before run's: its name and number."""


def compare_again(plan: Plan, store: Path, out: Path, argv: Sequence[str]) -> None:
    """The A/A comparison of an earlier run's saved plugin runs (a campaign's: its before runs), with the package
    as it is now."""
    found = [(m.group(1), int(m.group(2))) for p in store.iterdir() if (m := SAVED_RUN.search(p.name))]
    runs = {name: sorted({n for kind, n in found if kind == name}) for name in ("run", "before")}
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        out.open("w", encoding="utf-8") as results,
        out.with_suffix(".log").open("w", encoding="utf-8") as log,
        tempfile.TemporaryDirectory(prefix="otel-real-") as tmp,
    ):
        output = Output(results, log, plan)
        space = Workspace(Path(tmp), None, saved=store.resolve())  # the comparisons run in tmp
        output.write(run_record(plan, space, argv))
        output.say(f"{sum(map(len, runs.values()))} saved runs in {store}; results → {out}")
        for saved_as, numbers in runs.items():
            compare_runs(plan, space, output, numbers, saved_as)


def report_of(paths: Sequence[Path], markdown: bool, logs: Path | None = None) -> str:
    """The report of results files: the run at one budget, then the near-budget cells, then a regression
    campaign, if any (``logs``: its kept session output)."""
    records = without_copied_references(read_records(paths))
    if logs is not None:
        records = with_session_logs(records, logs)
    table = any(r.get("type") in AT_ONE_BUDGET for r in plain_budget(records))
    parts = (
        report_text(records, markdown, table=table),
        format_near(records, markdown),
        format_regression(records, markdown),
    )
    return "\n\n".join(part for part in parts if part)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = arguments(argv)
    if args.report:
        print(report_of(args.report, args.markdown, args.logs))
        return 0
    imported = imported_references(args.reference_from)
    plan = build_plan(args, imported)
    if args.compare_saved:
        out = args.out or RESULTS / f"real-compare-{dt.datetime.now():%Y%m%d-%H%M}.jsonl"
        compare_again(plan, args.compare_saved, out, argv)
        print(report_of([out], args.markdown))
        return 0
    suffix = ("-near" if plan.near_budget else "") + ("-regression" if plan.regression else "")
    suffix += f"-load{plan.load}" if plan.load else ""
    out = args.out or RESULTS / f"real-{dt.datetime.now():%Y%m%d-%H%M}{suffix}.jsonl"
    run(plan, out, argv, imported)
    print()
    print(report_of([out], args.markdown))
    return 0
