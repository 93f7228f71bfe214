"""The report of regression campaigns (``regression.py``): per workload, how often the real change came out
REGRESSED at ``cpu:+1pp`` and how often unchanged code did (A/A), with the shifts, time and processes.

Targets (issue 20): the change REGRESSED in at least 90% of its comparisons on at least three workloads, and
no A/A comparison REGRESSED. Comparisons that did not run (``ERROR``) are counted apart, never as either.

"test failed on the change" counts the tests the comparison failed as they ended (the session's own gate; a
test that failed on its budget first shows no such message), "machine term" the end's comparisons widened by one
(their loads differed): where those differ from the REGRESSED count, the session contradicted itself.

Two kinds of A/A: the campaign's own (the unchanged code measured again and compared in its session, which adds
processes while undecided), and, when the files given hold them, the campaign's saved before runs compared
pairwise afterwards (``--compare-saved``: ``compare --fail cpu:+1pp`` on the runs as saved, round after round).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence

from benchmarks.real.processes import Record
from benchmarks.real.regression import AA, AFTER, OUTCOMES
from benchmarks.real.report import compare_column, render, signed

HEADER = [
    "workload",
    "extra spans",
    "comparisons",
    "REGRESSED",
    "undecided",
    "unchanged",
    "test failed on the change",
    "machine term",
    "before → after (median)",
    "shift (median, interval)",
    "A/A comparisons",
    "A/A false REGRESSED",
    "A/A undecided",
    "A/A saved before runs REGRESSED",
    "median time",
    "median processes",
]
TARGET_SHARE = 0.9
TARGET_WORKLOADS = 3


SAVED = "saved"
"""The comparisons of a campaign's saved before runs, round after round (``compare`` records)."""


def campaign_records(records: Sequence[Record]) -> dict[str, dict[str, list[Record]]]:
    """The ``regression`` records by workload and kind (after, A/A), and the comparisons of the saved before runs."""
    found: dict[str, dict[str, list[Record]]] = defaultdict(lambda: {AFTER: [], AA: [], SAVED: []})
    for r in records:
        if r.get("type") == "regression" and r.get("kind") in (AFTER, AA):
            found[r["workload"]][r["kind"]].append(r)
        elif r.get("type") == "compare" and r.get("saved_as") == "before":
            found[r["workload"]][SAVED].append(r)
    return dict(sorted(found.items()))


def decided(records: Sequence[Record]) -> list[Record]:
    return [r for r in records if r.get("outcome") in OUTCOMES]


def outcome_count(records: Sequence[Record], outcome: str) -> int:
    return sum(r.get("outcome") == outcome for r in records)


def false_alarms(records: Sequence[Record]) -> int:
    """Unchanged code said REGRESSED: at the session's end, or by failing its test as it ended."""
    return sum(r.get("outcome") == "REGRESSED" or bool(r.get("failed_on_change")) for r in records)


def median_of(values: Sequence[float | int | None], show: str = "{:.1f}") -> str:
    present = [v for v in values if v is not None]
    return show.format(statistics.median(present)) if present else "–"


def estimates(records: Sequence[Record]) -> str:
    """The median estimates of the before and the compared measurements."""
    before = [(r.get("before") or {}).get("estimate") for r in records]
    after = [(r.get("after") or {}).get("estimate") for r in records]
    return f"{median_of(before, '{:+.1%}')} → {median_of(after, '{:+.1%}')}"


def in_points(values: Sequence[float | None]) -> str:
    """The median of fractions, as signed percentage points."""
    present = [v for v in values if v is not None]
    return signed(statistics.median(present)).replace("%", "pp") if present else "–"


def shift_column(records: Sequence[Record]) -> str:
    """Median shift in points, and the medians of its interval's ends."""
    shift = in_points([r.get("shift") for r in records])
    if shift == "–":
        return shift
    low, high = (in_points([r.get(end) for r in records]) for end in ("shift_low", "shift_high"))
    return f"{shift} [{low}, {high}]"


def with_errors(count: int, records: Sequence[Record]) -> str:
    errors = len(records) - len(decided(records))
    return f"{count}" + (f" (+{errors} not compared)" if errors else "")


def widened(record: Record) -> bool:
    """Whether the session's last comparison of the test included a machine term (its line says so)."""
    return any("machine term" in line for line in record.get("lines", [])[:1])


def count_of(records: Sequence[Record], key: str) -> str:
    """How many records hold ``key`` true (or a value); ``–`` when none has the key (records of an older harness)."""
    if not any(key in r for r in records):
        return "–"
    return str(sum(bool(r.get(key)) for r in records))


def row(workload: str, kinds: dict[str, list[Record]]) -> list[str]:
    after, aa = kinds[AFTER], kinds[AA]
    done, aa_done = decided(after), decided(aa)
    spans = sorted({int(r["extra_spans"]) for r in after if r.get("extra_spans") is not None})
    regressed = outcome_count(done, "REGRESSED")
    return [
        workload,
        ", ".join(map(str, spans)) or "–",
        with_errors(len(done), after),
        f"{regressed} ({regressed / len(done):.0%})" if done else "–",
        str(outcome_count(done, "UNDECIDED")),
        str(outcome_count(done, "OK")),
        count_of(after, "failed_on_change"),
        str(sum(widened(r) for r in after)),
        estimates(done),
        shift_column(done),
        with_errors(len(aa_done), aa),
        str(false_alarms(aa_done)),
        str(outcome_count(aa_done, "UNDECIDED")),
        compare_column(kinds[SAVED]),
        median_of([(r.get("after") or {}).get("duration_s") for r in done], "{:.1f} s"),
        median_of([(r.get("after") or {}).get("processes") for r in done], "{:g}"),
    ]


def against_targets(found: dict[str, dict[str, list[Record]]]) -> list[str]:
    """The two targets, met or missed, with their figures."""
    met = [
        w
        for w, kinds in found.items()
        if (done := decided(kinds[AFTER])) and outcome_count(done, "REGRESSED") >= TARGET_SHARE * len(done)
    ]
    aa = [r for kinds in found.values() for r in decided(kinds[AA])]
    saved = [r for kinds in found.values() for r in decided(kinds[SAVED])]
    false, false_saved = false_alarms(aa), outcome_count(saved, "REGRESSED")
    verdict = "met" if len(met) >= TARGET_WORKLOADS else "missed"
    lines = [
        f"real change REGRESSED in >= {TARGET_SHARE:.0%} of comparisons: {', '.join(met) or 'no workload'} "
        f"({len(met)} of {len(found)}; target: {TARGET_WORKLOADS}) — {verdict}",
        f"A/A false REGRESSED: {false} of {len(aa)} in the sessions"
        + (f", {false_saved} of {len(saved)} between the saved before runs" if saved else "")
        + f" (target 0 in >= 95) — {'met' if not false + false_saved and len(aa) + len(saved) >= 95 else 'missed'}",
    ]
    return lines


def misses(found: dict[str, dict[str, list[Record]]]) -> list[str]:
    """The comparisons that missed (a real change not REGRESSED, unchanged code REGRESSED), with their lines."""
    lines = []
    for workload, kinds in found.items():
        for r in kinds[AFTER]:
            if r.get("outcome") != "REGRESSED":
                failed = " (its test failed on the change as it ended)" if r.get("failed_on_change") else ""
                said = f"{r.get('outcome')}{failed}: " + "; ".join(r["lines"])
                lines.append(f"  {workload} round {r['round']} after: {said}")
        for r in kinds[AA]:
            if false_alarms([r]):
                failed = " (its test failed on the change)" if r.get("failed_on_change") else ""
                said = f"{r.get('outcome')}{failed}: " + "; ".join(r["lines"])
                lines.append(f"  {workload} round {r['round']} A/A: {said}")
        for r in kinds[SAVED]:
            if r.get("outcome") == "REGRESSED":
                lines.append(f"  {workload} before {r['before']} → {r['after']}: REGRESSED: " + "; ".join(r["lines"]))
    return ["comparisons that missed:", *lines] if lines else []


def format_regression(records: Sequence[Record], markdown: bool = False) -> str:
    """The campaign's table, the targets and the misses; empty when the records hold no campaign."""
    found = campaign_records(records)
    if not found:
        return ""
    table = render(HEADER, [row(w, kinds) for w, kinds in found.items()], markdown)
    return "\n\n".join(part for part in (table, "\n".join(against_targets(found)), "\n".join(misses(found))) if part)
