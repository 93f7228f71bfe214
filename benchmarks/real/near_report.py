"""The report of near-budget runs: one row per cell (workload × offset × load), over one or more results files.

Per cell: the budget, the reference it is judged against, the verdict counts, whether one test got
PASS in one run and FAIL in another under one budget (in the cell, and over every load of the files
given: a busy runner must not flip a quiet verdict), the false verdicts, how many intervals hold the
reference, time to verdict, the processes each test used and the between-process term its interval
counted (``–`` where the JSON does not say).

False verdicts and coverage are judged against the reference in the engine's regime
(``budgets.engine_reference``: the frozen-heap reference of the quiet machine, else the plain one,
marked so): PASS where that reference lies above the budget, FAIL where it lies below. Its median is
the truth; a budget inside the reference's own interval is marked ``*``, since there which side is
right is itself uncertain.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence

from benchmarks.real.budgets import engine_reference
from benchmarks.real.processes import Record
from benchmarks.real.report import (
    VERDICTS,
    Reference,
    compare_column,
    conflicts,
    covers,
    describe_key,
    render,
    verdict_counts,
)

HEADER = [
    "workload",
    "offset",
    "load",
    "budget",
    "reference (frozen heap: median, interval, processes)",
    "runs",
    "PASS / FAIL / INCONCL.",
    "PASS and FAIL",
    "... over all loads",
    "false verdicts",
    "interval holds the reference",
    "time to verdict (median)",
    "processes (median, max)",
    "process term",
]

Cell = tuple[str, float, int, int]
"""Workload, offset (points at 5%), busy processes of the load generator, the plugin's ``processes`` setting."""


def near_records(records: Sequence[Record]) -> list[Record]:
    """The decided or undecided verdicts of near-budget plugin runs (errors left out)."""
    return [
        r for r in records if r.get("type") == "plugin" and r.get("offset") is not None and r.get("verdict") in VERDICTS
    ]


def cells(records: Sequence[Record]) -> dict[Cell, list[Record]]:
    found: dict[Cell, list[Record]] = defaultdict(list)
    for r in near_records(records):
        found[(r["workload"], r["offset"], r.get("load_generator", 0), r.get("plugin_processes", 1))].append(r)
    return dict(sorted(found.items(), key=lambda item: (item[0][0], item[0][3], item[0][2], item[0][1])))


def budget_of(record: Record) -> float | None:
    """The relative budget the test was held to, as the plugin's JSON says (a fraction)."""
    budget = record.get("budget")
    if isinstance(budget, dict) and budget.get("kind") == "relative":
        return float(budget["value"])
    return None


def is_false(record: Record, truth: float) -> bool:
    """PASS where the truth lies above the budget, FAIL where it lies below."""
    budget = budget_of(record)
    if budget is None:
        return False
    return (record["verdict"] == "PASS" and truth > budget) or (record["verdict"] == "FAIL" and truth < budget)


def contradicted(records: Sequence[Record]) -> bool:
    return conflicts(records) == "YES"


def budget_column(records: Sequence[Record], reference: Reference | None) -> str:
    budgets = sorted({b for r in records if (b := budget_of(r)) is not None})
    if not budgets:
        return "–"
    text = f"{budgets[0] * 100:.2f}%" + (f"–{budgets[-1] * 100:.2f}%" if len(budgets) > 1 else "")
    inside = reference is not None and any(reference.low <= b <= reference.high for b in budgets)
    return text + ("*" if inside else "")


def false_column(records: Sequence[Record], reference: Reference | None) -> str:
    if reference is None:
        return "no reference"
    decided = [r for r in records if r["verdict"] in ("PASS", "FAIL")]
    return f"{sum(is_false(r, reference.median) for r in decided)}/{len(decided)}"


def processes_column(records: Sequence[Record]) -> str:
    used = [int(r.get("processes") or 1) for r in records]
    return f"{statistics.median(used):g}, {max(used)}" if used else "–"


def process_term_column(records: Sequence[Record]) -> str:
    """The between-process terms the intervals counted: their sources (how many each) and median size."""
    terms = [t for r in records if isinstance(t := r.get("process_term"), dict)]
    if not terms:
        return "–"
    sources = Counter(str(t.get("source") or "?") for t in terms)
    named = ", ".join(f"{source} {count}/{len(records)}" for source, count in sources.most_common())
    sizes = [float(t["size"]) for t in terms if t.get("size") is not None]
    return named + (f", ±{statistics.median(sizes) * 100:.2f} pts" if sizes else "")


def over_loads(records: Sequence[Record]) -> dict[tuple[str, str], bool]:
    """For each workload and budget, whether PASS and FAIL both occur over every load and file."""
    by_budget: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in near_records(records):
        by_budget[(r["workload"], json.dumps(r.get("budget"), sort_keys=True))].append(r)
    return {key: contradicted(rs) for key, rs in by_budget.items()}


def budget_text(key: str) -> str:
    """A budget as ``over_loads`` keys it (its JSON), for a reader."""
    budget = json.loads(key)
    return f"{budget['value'] * 100:.2f}%" if isinstance(budget, dict) and "value" in budget else str(budget)


def yes_never(flag: bool) -> str:
    return "YES" if flag else "never"


def references(records: Sequence[Record], workloads: Sequence[str]) -> dict[str, tuple[str, Reference] | None]:
    return {w: engine_reference(records, w) for w in workloads}


def describe_reference(found: tuple[str, Reference] | None) -> str:
    if found is None:
        return "–"
    kind, reference = found
    return reference.describe() + ("" if kind == "reference_frozen" else " (plain: no frozen-heap reference)")


def near_rows(records: Sequence[Record]) -> list[list[str]]:
    grouped = cells(records)
    refs = references(records, sorted({cell[0] for cell in grouped}))
    across = over_loads(records)
    rows = []
    for (workload, offset, load, processes), rs in grouped.items():
        found = refs[workload]
        reference = found[1] if found else None
        times = [r["duration_s"] for r in rs]
        budgets = {json.dumps(r.get("budget"), sort_keys=True) for r in rs}
        rows.append(
            [
                workload,
                f"{offset:+g}",
                describe_key((workload, load, processes)),
                budget_column(rs, reference),
                describe_reference(found),
                str(len(rs)),
                verdict_counts(rs),
                yes_never(contradicted(rs)),
                yes_never(any(across[(workload, b)] for b in budgets)),
                false_column(rs, reference),
                f"{sum(covers(r, reference.median) for r in rs)}/{len(rs)}" if reference else "no reference",
                f"{statistics.median(times):.1f} s" if times else "–",
                processes_column(rs),
                process_term_column(rs),
            ]
        )
    return rows


def totals(records: Sequence[Record]) -> list[str]:
    """The figures the targets name, over every cell: contradictions, false verdicts, coverage, by load."""
    grouped = cells(records)
    refs = references(records, sorted({cell[0] for cell in grouped}))
    across = over_loads(records)
    flipped = [f"{workload} at {budget_text(budget)}" for (workload, budget), flag in across.items() if flag]
    lines = [
        f"Near the budget, {len(grouped)} cells: PASS and FAIL for one test and budget over all loads in "
        f"{len(flipped)} of {len(across)} (workload, budget) pairs" + (f": {', '.join(flipped)}" if flipped else "")
    ]
    for load in sorted({cell[2] for cell in grouped}):
        judged = [
            (r, found[1])
            for cell, rs in grouped.items()
            if cell[2] == load and (found := refs[cell[0]]) is not None
            for r in rs
        ]
        decided = [(r, ref) for r, ref in judged if r["verdict"] in ("PASS", "FAIL")]
        false = sum(is_false(r, ref.median) for r, ref in decided)
        held = sum(covers(r, ref.median) for r, ref in judged)
        share = f" ({false / len(decided) * 100:.1f}%)" if decided else ""
        lines.append(
            f"  {describe_key(('', load, 1))}: false verdicts {false} of {len(decided)} decided{share}; "
            f"intervals holding the reference {held} of {len(judged)}"
        )
    compared = [r for r in records if r.get("type") == "compare"]
    if compared:
        lines.append(f"  A/A comparisons of the saved runs, REGRESSED: {compare_column(compared)}")
    lines.append(
        "  (against the frozen-heap reference of the quiet machine, the engine's regime; * marks a budget "
        "inside that reference's own interval)"
    )
    return lines


def format_near(records: Sequence[Record], markdown: bool = False) -> str:
    """The cell table and its totals; empty when the records hold no near-budget run."""
    rows = near_rows(records)
    if not rows:
        return ""
    return "\n".join([render(HEADER, rows, markdown), "", *totals(records)])
