"""A regression campaign: is a real change of about +5 points near 5% REGRESSED at ``cpu:+1pp``, and unchanged
code never, when the comparison gate runs at the default settings in the session that measures?

One round (one ``regression`` job) is three fresh pytest processes over the campaign's workloads, each in an
order of its own, at the plugin's defaults (``processes`` and ``max_time`` as the user gets them):

1. *before*: the workloads as they are, saved as ``before-NNN``, as the main branch's job saves its run (each
   test measured over at least three processes, ``settings.flags.SAVED_PROCESSES``);
2. *after*: the regression variant (``$REAL_EXTRA_SPANS`` of ``real_workloads/apps.py``: child spans added per
   call), with ``--otel-overhead-compare=before-NNN --otel-overhead-compare-fail=cpu:+1pp``, so that the plugin
   adds processes while that comparison is undecided, as a pull request's job does, and not saved, as such a
   job does not save (its JSON report is ``after-NNN.json``);
3. *A/A*: the workloads as they are again, compared the same way with the same before run (``aa-NNN``).

Steps 2 and 3 run in an order drawn per round, so the machine's drift hits both alike. Each compared test gives
one ``regression`` record: its kind (``after`` or ``aa``), the comparison's outcome as the session printed it
(REGRESSED / OK / UNDECIDED), the shift in points with its interval, what the before and the compared process
measured (estimate, verdict, spans per call, processes, time), and the load.

The session says its comparison twice: each test is compared as it ends (a regression fails the test, with its
change in the failure's message, unless the test already failed on its budget), and the whole run again at the
session's end (the lines the outcome is read from). The two can differ (the end compares the machines' loads
again and may add a machine term, said in its line), so the record keeps both: ``failed_on_change`` holds the
message's shift.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path

from benchmarks.real.plan import COMPARE_FAIL, Job, Plan, shuffled_workloads
from benchmarks.real.plugin import Measured, measure_process, parse_comparison
from benchmarks.real.processes import Record, Workspace

AFTER = "after"
AA = "aa"
KINDS = (AFTER, AA)
"""The compared processes of a round: the regression variant, and the unchanged code measured again."""
OUTCOMES = ("REGRESSED", "OK", "UNDECIDED")

# "CPU +5.0% → +10.2%: +5.2pp (95% CI [+3.1pp, +7.4pp])  [..]": the comparison's CPU line (history/compare.py);
# older output wrote the interval as "+3.1pp…+7.4pp", and an unbounded end is "∞" or "-∞".
NUMBER = r"[+-]?(?:\d+(?:\.\d+)?|∞)"
CPU_LINE = re.compile(
    rf"^CPU (?P<before>\S+) → (?P<after>\S+): (?P<shift>{NUMBER})pp \(95% CI \[?(?P<low>{NUMBER})pp(?:, |…)"
    rf"(?P<high>{NUMBER})pp\]?\)"
)


def points(text: str) -> float:
    """A figure of the comparison's line (``+5.2``, ``-∞``) as a fraction."""
    return math.copysign(math.inf, -1.0 if text.startswith("-") else 1.0) if "∞" in text else float(text) / 100


# "____ test_flask ____" opens a failed test's section of pytest's output; the regression message follows.
FAILURE = re.compile(r"^_{3,} test_(?P<workload>\w+) _{3,}$")
CHANGE_FAILED = "otel-overhead: "


def failed_on_change(text: str) -> dict[str, Record]:
    """The tests that the comparison failed as they ended, by workload: the change their message gives."""
    found: dict[str, Record] = {}
    current = None
    for line in text.splitlines():
        match = FAILURE.match(line)
        if match:
            current = match["workload"]
        elif current is not None and line.startswith(CHANGE_FAILED) and "grew by more than" in line:
            found[current] = shift_of([line.removeprefix(CHANGE_FAILED)])
            current = None
    return found


def with_session_logs(records: Sequence[Record], logs: Path) -> list[Record]:
    """The campaign's records, ``failed_on_change`` read from the sessions' kept output (``<kind>-<round>.log`` in
    ``logs``) where a record lacks it (written before the harness read it)."""
    texts: dict[Path, str] = {}
    filled = []
    for record in records:
        log = logs / f"{record.get('kind')}-{record.get('round', 0):03d}.log"
        if record.get("type") == "regression" and "failed_on_change" not in record and log.is_file():
            text = texts.setdefault(log, log.read_text(encoding="utf-8", errors="replace"))
            record = record | {"failed_on_change": failed_on_change(text).get(record["workload"])}
        filled.append(record)
    return filled


def shift_of(lines: Sequence[str]) -> Record:
    """The CPU shift of one compared test, in fractions (``shift``, ``shift_low``, ``shift_high``; None each when
    the comparison's lines hold no CPU change)."""
    for line in lines:
        match = CPU_LINE.match(line)
        if match:
            low, high = points(match["low"]), points(match["high"])
            return {
                "shift": points(match["shift"]),
                "shift_low": low if math.isfinite(low) else None,
                "shift_high": high if math.isfinite(high) else None,
            }
    return {"shift": None, "shift_low": None, "shift_high": None}


def order_of(plan: Plan, job: Job, step: str) -> list[str]:
    """The workloads of one process of the round, in an order of their own (fixed by the plan's seed)."""
    return shuffled_workloads(plan, Job(f"{job.kind}-{step}", job.index))


def compare_args(before: str) -> list[str]:
    return [f"--otel-overhead-compare={before}", f"--otel-overhead-compare-fail={COMPARE_FAIL}"]


def compared(kind: str, before: Measured, measured: Measured, plan: Plan, job: Job) -> list[Record]:
    """One record per workload of a compared process: the session's comparison and both measurements."""
    text = measured.outcome.log.read_text(encoding="utf-8", errors="replace")
    found, failed = parse_comparison(text), failed_on_change(text)
    earlier = dict(before.records())
    records = []
    for workload, after in measured.records():
        record: Record = {"type": "regression", "round": job.index, "workload": workload, "kind": kind}
        record["extra_spans"] = dict(plan.extra_spans).get(workload, 0) if kind == AFTER else 0
        comparison = found.get(workload)
        if comparison is None or comparison["outcome"] not in OUTCOMES:
            error = measured.outcome.error or "no comparison of this test in the session's output"
            record.update(outcome="ERROR", error=error, log_tail=measured.outcome.tail())
            comparison = {"lines": []}
        else:
            record["outcome"] = comparison["outcome"]
        record.update(shift_of(comparison["lines"]), lines=comparison["lines"])
        record["failed_on_change"] = failed.get(workload)
        record.update(before=earlier.get(workload), after=after, wall_s=measured.outcome.wall_s)
        records.append(record | {"load": measured.outcome.load})
    return records


def run_round(job: Job, plan: Plan, space: Workspace) -> list[Record]:
    """Before, then after and A/A in an order drawn for the round: one record per workload and compared process,
    and one for the round."""
    before = measure_process(f"before-{job.index:03d}", order_of(plan, job, "before"), plan, space)
    records: list[Record] = []
    kinds = list(KINDS)
    random.Random(f"{plan.seed}-round-{job.index}").shuffle(kinds)
    walls = {"before": before.outcome.wall_s}
    if before.outcome.error is None or before.tests:
        extra = {AFTER: {"REAL_EXTRA_SPANS": json.dumps(dict(plan.extra_spans))}, AA: None}
        for kind in kinds:
            order = order_of(plan, job, kind)
            name = f"{kind}-{job.index:03d}"
            measured = measure_process(name, order, plan, space, compare_args(before.name), extra[kind], save=False)
            records += compared(kind, before, measured, plan, job)
            walls[kind] = measured.outcome.wall_s
    round_record: Record = {
        "type": "regression_round",
        "round": job.index,
        "order": ["before", *kinds],
        "wall_s": walls,
        "error": before.outcome.error,
        "load": before.outcome.load,
        "engine": space.engine_digest(),
    }
    if before.outcome.error:
        round_record["log_tail"] = before.outcome.tail()
    return [*records, round_record]
