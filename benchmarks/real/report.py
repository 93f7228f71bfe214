"""The report of one or more results files: per workload (and load), the reference, the plugin's
coverage of it, agreement across runs, time to verdict, the other tools' verdicts, and the A/A
comparison of saved runs.

The reference of a workload is the median of its per-process estimates, with a distribution-free
interval for that median from order statistics (its confidence is below 95% with fewer than six
processes, and is then printed). A plugin interval "covers" the reference when it contains that
median; unbounded ends (``null`` in the JSON) contain everything on their side. Plugin runs with
another ``processes`` setting get rows of their own. A load with no reference of its own is
compared with the quiet machine's (the overhead to find is the same; only the noise differs),
marked "(quiet)". The reference with a frozen heap (the plugin's GC regime) is shown beside it, and
so is each interval against the median of the other runs' estimates (in the rows' group: same
workload, load and ``processes``): a reference measured by the engine itself, in its own regime,
that asks what a gate meets when it runs again. Given files of runs hours apart, it also asks
whether an interval holds across the hours.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.real.processes import Record

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
HEADER = [
    "workload",
    "load",
    "reference (median, interval, processes)",
    "frozen-heap reference",
    "plugin runs",
    "PASS / FAIL / INCONCL.",
    "PASS and FAIL",
    "interval holds the reference",
    "... the frozen-heap reference",
    "... the other runs' median",
    "plugin est. (median)",
    "time to verdict (median)",
    "instructions",
    "pyperf FAIL (est.)",
    "pytest-benchmark FAIL (est.)",
    "A/A compare REGRESSED",
]


def read_records(paths: Iterable[Path]) -> list[Record]:
    records = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SystemExit(f"{path}: cannot read: {error.strerror or error}") from None
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError as error:
                    raise SystemExit(f"{path}:{number}: not a JSON record ({error})") from None
    return records


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """A distribution-free interval for the median: order statistics k and n+1-k, with the largest k
    whose two-sided binomial tail stays within 1 - ``confidence``. Returns (low, high, its confidence);
    with too few values for ``confidence``, the range and the confidence the range has."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("no values")
    tail = 0.0  # P(Binomial(n, 1/2) <= k - 1)
    k = 0
    while k < n // 2:
        below = tail + math.comb(n, k) / 2**n
        if 2 * below > 1 - confidence:
            break
        tail, k = below, k + 1
    if k == 0:
        return ordered[0], ordered[-1], 1 - 2 / 2**n
    return ordered[k - 1], ordered[n - k], 1 - 2 * tail


def covers(record: Record, value: float) -> bool:
    low, high = record.get("ci_low"), record.get("ci_high")
    return (low is None or low <= value) and (high is None or value <= high)


Key = tuple[str, int, int]
"""Workload, busy processes of the load generator, the plugin's ``processes`` setting in that run."""


def group_key(record: Record) -> Key:
    return (record["workload"], record.get("load_generator", 0), record.get("plugin_processes", 1))


def describe_key(key: Key) -> str:
    load = "quiet" if key[1] == 0 else f"{key[1]} busy"
    return load if key[2] == 1 else f"{load}, processes={key[2]}"


def by_group(records: Iterable[Record], kind: str) -> dict[Key, list[Record]]:
    groups: dict[Key, list[Record]] = defaultdict(list)
    for r in records:
        if r.get("type") == kind:
            groups[group_key(r)].append(r)
    return groups


def signed(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:+.1f}%"


@dataclass(frozen=True)
class Reference:
    median: float
    low: float
    high: float
    confidence: float
    processes: int

    def describe(self) -> str:
        level = "" if self.confidence >= 0.95 else f" ({self.confidence * 100:.0f}% interval)"
        return f"{signed(self.median)} [{signed(self.low)}, {signed(self.high)}]{level}, {self.processes}"


def reference_of(records: Sequence[Record]) -> Reference | None:
    estimates = [r["estimate"] for r in records if r.get("estimate") is not None]
    if not estimates:
        return None
    low, high, confidence = median_interval(estimates)
    return Reference(statistics.median(estimates), low, high, confidence, len(estimates))


def verdict_counts(records: Sequence[Record]) -> str:
    done = [r for r in records if r["verdict"] in VERDICTS]
    return " / ".join(str(sum(r["verdict"] == v for r in done)) for v in VERDICTS)


def conflicts(records: Sequence[Record]) -> str:
    """Whether one test and budget got PASS in one run and FAIL in another (the gate must never do that)."""
    by_budget: dict[str, set[str]] = defaultdict(set)
    for r in records:
        by_budget[json.dumps(r.get("budget"), sort_keys=True)].add(r["verdict"])
    return "YES" if any({"PASS", "FAIL"} <= verdicts for verdicts in by_budget.values()) else "never"


def tool_column(records: Sequence[Record]) -> str:
    done = [r for r in records if r["verdict"] in ("PASS", "FAIL")]
    if not done:
        return "–"
    estimates = [r["estimate"] for r in done]
    fails = sum(r["verdict"] == "FAIL" for r in done)
    return f"{fails}/{len(done)} ({signed(statistics.median(estimates))})"


def coverage(done: Sequence[Record], reference: Reference | None) -> str:
    if reference is None:
        return "no reference"
    return f"{sum(covers(r, reference.median) for r in done)}/{len(done)}"


def other_runs_coverage(done: Sequence[Record]) -> str:
    """How many intervals hold the median of the other runs' estimates (each run left out of its own
    reference). Fewer than three runs leave too little to hold an interval against."""
    measured = [r for r in done if r.get("estimate") is not None]
    if len(measured) < 3:
        return "–"
    held = sum(covers(r, statistics.median(o["estimate"] for o in measured if o is not r)) for r in measured)
    return f"{held}/{len(measured)}"


def plugin_columns(plugin: Sequence[Record], reference: Reference | None, frozen: Reference | None = None) -> list[str]:
    done = [r for r in plugin if r["verdict"] in VERDICTS]
    estimates = [r["estimate"] for r in done if r.get("estimate") is not None]
    times = [r["duration_s"] for r in done]
    return [
        str(len(done)),
        verdict_counts(done),
        conflicts(done),
        coverage(done, reference),
        coverage(done, frozen),
        other_runs_coverage(done),
        signed(statistics.median(estimates)) if estimates else "–",
        f"{statistics.median(times):.1f} s" if times else "–",
    ]


def instructions_column(records: Sequence[Record]) -> str:
    done = [r for r in records if r["verdict"] in VERDICTS]
    return ", ".join(f"{signed(r['estimate'])} {r['verdict']}" for r in done) or "–"


def compare_column(records: Sequence[Record]) -> str:
    done = [r for r in records if r.get("outcome") in ("REGRESSED", "OK", "UNDECIDED")]
    missing = len(records) - len(done)
    if not records:
        return "–"
    regressed = sum(r["outcome"] == "REGRESSED" for r in done)
    undecided = sum(r["outcome"] == "UNDECIDED" for r in done)
    notes = [f"{undecided} undecided"] * bool(undecided) + [f"{missing} not compared"] * bool(missing)
    return f"{regressed}/{len(done)}" + (f" ({', '.join(notes)})" if notes else "")


def plain_budget(records: Iterable[Record]) -> list[Record]:
    """The records of plugin runs at one budget for all, not of near-budget runs (which have an ``offset``)."""
    return [r for r in records if r.get("offset") is None]


def table_rows(records: Sequence[Record]) -> list[list[str]]:
    kinds = ("plugin", "reference", "reference_frozen", "instructions", "pyperf", "benchmark", "compare")
    groups = {kind: by_group(records, kind) for kind in kinds}
    groups["plugin"] = by_group(plain_budget(records), "plugin")  # near-budget runs have a table of their own
    keys = sorted({key for group in groups.values() for key in group}, key=lambda k: (k[2], k[1], k[0]))
    rows = []
    for key in keys:
        # References do not depend on the plugin's settings; a load without its own takes the quiet one.
        workload, load = key[0], key[1]
        own = reference_of(groups["reference"].get((workload, load, 1), []))
        reference = own or reference_of(groups["reference"].get((workload, 0, 1), []))
        frozen = reference_of(
            groups["reference_frozen"].get((workload, load, 1), [])
            or groups["reference_frozen"].get((workload, 0, 1), [])
        )
        if not groups["plugin"].get(key) and key[2] != 1:
            continue
        rows.append(
            [
                workload,
                describe_key(key),
                (reference.describe() + ("" if own else " (quiet)")) if reference else "–",
                frozen.describe() if frozen else "–",
                *plugin_columns(groups["plugin"].get(key, []), reference, frozen),
                instructions_column(groups["instructions"].get(key, [])),
                tool_column(groups["pyperf"].get(key, [])),
                tool_column(groups["benchmark"].get(key, [])),
                compare_column(groups["compare"].get(key, [])),
            ]
        )
    return rows


def format_table(records: Sequence[Record], markdown: bool = False) -> str:
    return render(HEADER, table_rows(records), markdown)


def render(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """A table as Markdown or as aligned text."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def summary(records: Sequence[Record]) -> list[str]:
    """Run facts: machine, command, wall time, load while measuring, errors."""
    lines = []
    for run in (r for r in records if r.get("type") == "run"):
        env = run["environment"]
        packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)
        lines.append(f"run: {run['command']} (busy processes of the load generator: {run['plan']['load']})")
        lines.append(f"  machine: {env['nproc']} CPUs, {env['cpu_model']}, Python {env['python']}; {packages}")
    for end in (r for r in records if r.get("type") == "end"):
        stopped = " (interrupted)" if end["interrupted"] else (f" ({end['stopped']})" if end.get("stopped") else "")
        lines.append(f"wall time: {end['wall_s'] / 60:.1f} min{stopped}")
    # References copied from an earlier file (near the budget) were measured at that run's load, not this one's.
    measured = [r for r in records if "imported_from" not in r]
    medians = [r["load"]["median"] for r in measured if isinstance(r.get("load"), dict) and r["load"].get("median")]
    if medians:
        lines.append(
            f"1-min load average while measuring (median per process): min {min(medians):.2f}, "
            f"median {statistics.median(medians):.2f}, max {max(medians):.2f}"
        )
    errors = [r for r in records if r.get("verdict") == "ERROR" or r.get("outcome") == "ERROR"]
    for r in errors[:10]:
        lines.append(f"ERROR {r['type']} {r.get('workload', '')}: {r.get('error')}")
    if len(errors) > 10:
        lines.append(f"... and {len(errors) - 10} more errors")
    return lines


def regressions(records: Sequence[Record]) -> list[str]:
    """The A/A comparisons that said REGRESSED, each with its lines: none is the target."""
    found = [r for r in records if r.get("type") == "compare" and r.get("outcome") == "REGRESSED"]
    lines = [f"A/A compare ({len(found)} REGRESSED):"] if found else []
    for r in found:
        lines.append(f"  {r['workload']}: run {r['before']} → run {r['after']}: " + "; ".join(r.get("lines", [])))
    return lines


def agreement(records: Sequence[Record]) -> str:
    """Whether any workload got PASS in one run and FAIL in another under one budget, at any load."""
    plugin: dict[str, list[Record]] = defaultdict(list)
    for r in plain_budget(records):
        if r.get("type") == "plugin" and r["verdict"] in VERDICTS:
            plugin[r["workload"]].append(r)
    if not plugin:
        return ""
    both = sorted(w for w, rs in plugin.items() if conflicts(rs) == "YES")
    runs = sum(len(rs) for rs in plugin.values())
    if both:
        return f"PASS and FAIL for one test and budget, over all loads: {', '.join(both)} (of {runs} verdicts)"
    return f"PASS and FAIL for one test and budget, over all loads: never (in {runs} verdicts)"


def report_text(records: Sequence[Record], markdown: bool = False, table: bool = True) -> str:
    """Run facts, the table (unless ``table`` is false), agreement across loads, the A/A comparisons that
    said REGRESSED."""
    parts = ["\n".join(summary(records)), format_table(records, markdown=markdown) if table else ""]
    parts.append(agreement(records))
    if regressions(records):
        parts.append("\n".join(regressions(records)))
    return "\n\n".join(part for part in parts if part)
