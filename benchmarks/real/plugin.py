"""The plugin under test: pytest processes under ``--otel-overhead``, A/A comparisons of their saved runs,
and instructions mode as a second opinion.

Everything is read from what a user gets: the JSON report (``--otel-overhead-json``), the saved
runs (``--otel-overhead-save``) and ``python -m pytest_otel_overhead compare``'s output. A
near-budget job gives each test the budget placed for its workload at the job's offset, through
``$REAL_BUDGETS`` (read by ``test_real.py`` into the marker).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.real.budgets import budgets_at
from benchmarks.real.plan import COMPARE_FAIL, Job, Plan, shuffled_workloads
from benchmarks.real.processes import Outcome, Record, Workspace, run_command

DEFAULT_MAX_TIME = 30.0
"""The plugin's default max_time, for time-outs when the plan sets none."""
NO_BUDGET = "no budget placed at this offset (no reference): nothing measured"
INSTRUCTIONS_TIMEOUT_S = 600.0
"""Per workload in instructions mode (start-up under valgrind is 5–15 s; counting, more)."""

# "  test_real.py::test_flask  REGRESSED" in the comparison's lines; the metric lines follow, indented.
COMPARE_LINE = re.compile(r"^  (?P<nodeid>\S+::test_(?P<workload>\w+))(?:  (?P<outcome>REGRESSED|OK|UNDECIDED))?$")


def pytest_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def settings_args(plan: Plan) -> list[str]:
    """The plugin settings the plan gives on the command line; the rest are the plugin's defaults."""
    args = []
    if plan.max_time is not None:
        args.append(f"--otel-overhead-max-time={plan.max_time:g}")
    if plan.budget is not None:
        args.append(f"--otel-overhead-budget={plan.budget}")
    if plan.processes is not None:
        args.append(f"--otel-overhead-processes={plan.processes}")
    if plan.confidence is not None:
        args.append(f"--otel-overhead-confidence={plan.confidence}")
    if plan.calibration is not None:
        args.append(f"--otel-overhead-calibration={plan.calibration}")
    return args


def node_ids(workloads: Sequence[str]) -> list[str]:
    return [f"test_real.py::test_{w}" for w in workloads]


def read_tests(report: Path) -> dict[str, Record]:
    """The JSON report's tests by node id; nothing when the file is missing or unreadable."""
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {test["nodeid"]: test for test in document.get("tests", [])}


def process_term_of(gate: Record) -> Record | None:
    """The between-process term the metric's interval counted: where it came from and its size (on the
    overhead's scale), from ``process_term`` (an object, a number or a name) or the
    ``between_process_source`` and ``between_process_spread`` keys; None when the JSON says nothing."""
    term = gate.get("process_term")
    if isinstance(term, dict):
        source = next((term[k] for k in ("source", "kind", "from") if term.get(k) is not None), None)
        size = next((term[k] for k in ("size", "value", "spread", "tau") if term.get(k) is not None), None)
    elif isinstance(term, (int, float)) and not isinstance(term, bool):
        source, size = None, term
    elif isinstance(term, str):
        source, size = term, None
    else:
        source, size = gate.get("between_process_source"), gate.get("between_process_spread")
    if source is None and size is None:
        return None
    return {"source": None if source is None else str(source), "size": None if size is None else float(size)}


def measured_record(test: Record, metric: str) -> Record:
    """What the harness keeps of one measured test: verdict, time to verdict, estimate and interval."""
    gate: Record = test["metrics"].get(metric) or {}
    wall: Record = test["metrics"].get("wall") or {}
    return {
        "verdict": test["verdict"],
        "mode": test["mode"],
        "duration_s": test["duration_s"],
        "metric": metric,
        "estimate": gate.get("overhead"),
        "ci_low": gate.get("ci_low"),
        "ci_high": gate.get("ci_high"),
        "budget": gate.get("budget"),
        "spread": gate.get("spread"),
        "note": gate.get("note"),
        "wall_estimate": wall.get("overhead"),
        "pairs": test["pairs"],
        "looks": test["looks"],
        "calls_per_block": test["calls_per_block"],
        "stop_reason": test["stop_reason"],
        "max_time": test["settings"]["max_time_s"],
        "spans_per_call": (test.get("pipeline") or {}).get("spans_started_per_call"),
        "processes": test.get("processes", 1),
        "confidence": gate.get("confidence"),
        "process_term": process_term_of(gate),
    }


@dataclass(frozen=True)
class Measured:
    """One pytest process under ``--otel-overhead``: the workloads in the order it ran them, saved under ``name``."""

    name: str
    order: list[str]
    outcome: Outcome
    tests: dict[str, Record]
    """The JSON report's tests by node id (empty when the process wrote none)."""

    def records(self) -> list[tuple[str, Record]]:
        """Per workload, in order, what the harness keeps of it (an ERROR record where the JSON lacks it)."""
        found = []
        for workload, nodeid in zip(self.order, node_ids(self.order), strict=True):
            test = self.tests.get(nodeid)
            error = {"verdict": "ERROR", "error": self.outcome.error or "no result in the JSON report"}
            found.append((workload, error if test is None else measured_record(test, "cpu")))
        return found


def measure_process(
    name: str,
    order: Sequence[str],
    plan: Plan,
    space: Workspace,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    save: bool = True,
) -> Measured:
    """Run the workloads' tests in ``order`` in one pytest process at the plan's settings, saved as ``name`` in the
    workspace's store unless ``save`` is false (a saved run measures each test over at least three processes);
    ``extra_args`` for the plugin, ``env`` for the workload project."""
    report = space.root / f"{name}.json"
    args = [
        "--otel-overhead",
        f"--otel-overhead-json={report}",
        *([f"--otel-overhead-save={name}"] if save else []),
        f"--otel-overhead-storage={space.store}",
        *settings_args(plan),
        *extra_args,
        *node_ids(order),
    ]
    cap = plan.max_time if plan.max_time is not None else DEFAULT_MAX_TIME
    outcome = run_command(
        "pytest",
        pytest_command(args),
        space.root,
        space.env(env),
        space.root / f"{name}.log",
        timeout=120 + len(order) * (cap + 60),
        ok_codes=(0, 1),  # 1: some test failed, i.e. a FAIL verdict (or a regression)
    )
    return Measured(name, list(order), outcome, read_tests(report))


def run_plugin(job: Job, plan: Plan, space: Workspace) -> list[Record]:
    """One pytest process measuring every workload in a shuffled order; one record per workload, one for the run.

    Near the budget, only the workloads with a budget placed at the job's offset, each held to it."""
    order = shuffled_workloads(plan, job)
    budgets = budgets_at(plan.budgets, job.offset) if job.offset is not None else {}
    if job.offset is not None:
        order = [w for w in order if w in budgets]
        if not order:  # pytest given no node id would run every test, at the default budget
            return [{"type": "plugin_run", "run": job.index, "offset": job.offset, "saved": None, "error": NO_BUDGET}]
    digest = space.engine_digest()
    # Saved for the A/A comparisons, but measured as a run that is not saved is (a pull request's job): one process
    # unless a budget or the between-process term asks for more.
    measured = measure_process(
        f"run-{job.index:03d}",
        order,
        plan,
        space,
        ["--otel-overhead-min-processes=1"],
        env={"REAL_BUDGETS": json.dumps(budgets)} if budgets else None,
    )
    outcome = measured.outcome
    records: list[Record] = []
    for position, (workload, found) in enumerate(measured.records()):
        record: Record = {"type": "plugin", "run": job.index, "workload": workload, "position": position}
        if job.offset is not None:
            record.update(offset=job.offset, placed_budget=budgets[workload])
        records.append(record | found | {"load": outcome.load, "engine": digest})
    run: Record = {
        "type": "plugin_run",
        "run": job.index,
        "offset": job.offset,
        "order": order,
        "saved": measured.name if any(r["verdict"] != "ERROR" for r in records) else None,
        "wall_s": outcome.wall_s,
        "returncode": outcome.returncode,
        "error": outcome.error,
        "load": outcome.load,
        "engine": digest,
    }
    if outcome.error:
        run["log_tail"] = outcome.tail()
    return [*records, run]


def parse_comparison(text: str) -> dict[str, Record]:
    """Per workload, the outcome of ``compare --fail`` (REGRESSED, OK, UNDECIDED; None when the test
    was not compared) and the comparison's lines about it, each whole again where the terminal's width
    wrapped it (a break at two spaces reads as one)."""
    found: dict[str, Record] = {}
    current: Record | None = None
    for line in text.splitlines():
        match = COMPARE_LINE.match(line)
        if match:
            current = {"outcome": match["outcome"], "lines": []}
            found[match["workload"]] = current
        elif current is not None and current["lines"] and line.startswith("        "):
            current["lines"][-1] += " " + line.strip()  # a metric's line wrapped to the terminal's width
        elif current is not None and line.startswith("      "):
            current["lines"].append(line.strip())
        else:
            current = None
    return found


def compare_saved(before: int, after: int, plan: Plan, space: Workspace, saved_as: str = "run") -> list[Record]:
    """Run ``after`` against run ``before`` of unchanged code, with the A/A criterion: one record per workload.

    ``saved_as`` is the runs' name before their number: ``run`` for plugin runs, ``before`` for the before runs of
    a regression campaign."""
    command = [
        sys.executable,
        "-m",
        "pytest_otel_overhead",
        f"--storage={space.store}",
        "compare",
        f"{saved_as}-{before:03d}",
        f"{saved_as}-{after:03d}",
        "--fail",
        COMPARE_FAIL,
    ]
    log = space.root / f"compare-{saved_as}{before:03d}-{after:03d}.log"
    outcome = run_command("compare", command, space.root, space.env(), log, timeout=300, ok_codes=(0, 1))
    text = log.read_text(encoding="utf-8", errors="replace")
    found = parse_comparison(text)
    records = []
    for workload in plan.workloads:
        if outcome.error is None and f"::test_{workload}" not in text:
            continue  # in neither run: the saved runs of a campaign over other workloads
        record: Record = {"type": "compare", "workload": workload, "before": before, "after": after}
        if saved_as != "run":
            record["saved_as"] = saved_as
        if workload in found:
            record.update(outcome=found[workload]["outcome"], lines=found[workload]["lines"])
        else:
            record.update(outcome="ERROR", error=outcome.error or "not in the comparison", log_tail=outcome.tail())
        records.append(record)
    return records


def run_instructions(job: Job, plan: Plan, space: Workspace) -> list[Record]:
    """Every workload counted under valgrind (``--otel-overhead-mode=instructions``): a second opinion."""
    report = space.root / "instructions.json"
    order = shuffled_workloads(plan, job)
    args = ["--otel-overhead", "--otel-overhead-mode=instructions", f"--otel-overhead-json={report}"]
    if plan.budget is not None:
        args.append(f"--otel-overhead-budget={plan.budget}")
    outcome = run_command(
        "pytest",
        pytest_command([*args, *node_ids(order)]),
        space.root,
        space.env(),
        space.root / "instructions.log",
        timeout=120 + len(order) * INSTRUCTIONS_TIMEOUT_S,
        ok_codes=(0, 1),
    )
    tests = read_tests(report)
    records = []
    for workload, nodeid in zip(order, node_ids(order), strict=True):
        record: Record = {"type": "instructions", "workload": workload, "load": outcome.load}
        test: Any = tests.get(nodeid)
        if test is None:
            record.update(
                verdict="ERROR", error=outcome.error or "no result in the JSON report", log_tail=outcome.tail()
            )
        else:
            record.update(measured_record(test, "instructions"))
        records.append(record)
    return records
