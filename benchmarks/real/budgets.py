"""Budgets placed around each workload's reference, for near-budget runs (``--budget-offsets``).

A CI gate lives near its budget: a team sets 5% because its overhead is around 4–6%. A near-budget
run holds each workload to budgets placed at its own reference plus a few offsets, given in points
at a 5% overhead (``-1.5,-0.5,0.5,1.5``), and counts how the verdicts fall on either side.

The reference a budget is placed around is the engine's regime: the frozen-heap reference of the
quiet machine, else the plain one (``engine_reference``). It comes from the run's own reference
processes or from earlier results files (``--reference-from``); records copied from file to file
are counted once (``unique_references``).

How an offset applies to a workload far from 5% is the ``OffsetScale``: by default the same step
in ``ln(1 + overhead)`` as the offset makes at 5% (the engine decides on that scale, and a process's
offset moves it alike at any size), so the near-5% workloads get the offsets as given and sqlite3,
at +530%, about six times as many points.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from benchmarks.real.processes import Record
from benchmarks.real.report import Reference, reference_of

GATE_OVERHEAD = 0.05
"""The overhead at which an offset means its points as given."""
SCALE_ABOVE = 0.30
"""``OffsetScale.REFERENCE`` scales the offsets of references above this overhead only."""
REFERENCE_KINDS = ("reference_frozen", "reference")
"""The engine's regime first: the plugin freezes the heap before measuring."""


class OffsetScale(str, enum.Enum):
    """How an offset in points at 5% becomes a budget for a workload whose reference lies elsewhere."""

    RATIO = "ratio"
    """The same step in ``ln(1 + overhead)`` as at 5%: ``(1 + reference) × (1 + offset / 1.05) - 1``."""
    REFERENCE = "reference"
    """Points as given up to 30%; above, scaled by the reference: ``offset × reference / 5%``."""
    POINTS = "points"
    """Points as given, whatever the reference."""

    def __str__(self) -> str:
        return self.value


def parse_offsets(text: str) -> tuple[float, ...]:
    """``"-1.5,-0.5,0.5,1.5"`` → offsets in points, in the order given, each once; ValueError if not numbers."""
    parts = [part.strip().removesuffix("pp") for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError("no offsets: give points such as -1.5,-0.5,0.5,1.5")
    try:
        offsets = tuple(dict.fromkeys(float(part) for part in parts))
    except ValueError:
        raise ValueError(f"{text!r}: offsets are numbers of points, e.g. -1.5,-0.5,0.5,1.5") from None
    return offsets


def place(reference: float, offset: float, scale: OffsetScale) -> float:
    """The budget (a fraction) for a workload whose reference overhead is ``reference`` at ``offset`` points."""
    step = offset / 100
    if scale is OffsetScale.RATIO:
        return (1 + reference) * (1 + step / (1 + GATE_OVERHEAD)) - 1
    if scale is OffsetScale.REFERENCE and reference > SCALE_ABOVE:
        return reference + step * reference / GATE_OVERHEAD
    return reference + step


def budget_text(fraction: float) -> str:
    """The budget as the marker takes it; three decimals of a percent, so every run gets the same one."""
    return f"{fraction * 100:.3f}%"


@dataclass(frozen=True)
class PlacedBudget:
    """One workload's budget at one offset, and the reference it was placed around."""

    workload: str
    offset: float
    budget: str
    reference: float
    reference_kind: str
    reference_processes: int

    def record(self) -> Record:
        return {"type": "budget", **asdict(self)}


def reference_key(record: Record) -> str:
    """What identifies one reference process, whichever results file it was copied into."""
    fields = ("type", "workload", "seed", "estimate", "pairs", "process")
    return json.dumps([record.get(field) for field in fields])


def unique_references(records: Iterable[Record]) -> list[Record]:
    """The reference records with an estimate, each process once (a near-budget run copies those it used)."""
    found: dict[str, Record] = {}
    for record in records:
        if record.get("type") in REFERENCE_KINDS and record.get("estimate") is not None:
            found.setdefault(reference_key(record), record)
    return list(found.values())


def without_copied_references(records: Sequence[Record]) -> list[Record]:
    """``records`` with each reference process once, however many of the files given hold a copy of it."""
    unique = {id(r) for r in unique_references(records)}
    return [r for r in records if r.get("type") not in REFERENCE_KINDS or id(r) in unique]


def engine_reference(records: Sequence[Record], workload: str) -> tuple[str, Reference] | None:
    """The reference of ``workload`` in the engine's regime: frozen heap before plain, the quiet machine's
    before a busy one's; with its kind. None when no record has one."""
    mine = [r for r in unique_references(records) if r["workload"] == workload]
    quiet = [r for r in mine if r.get("load_generator", 0) == 0]
    for kind in REFERENCE_KINDS:
        chosen = reference_of([r for r in (quiet or mine) if r["type"] == kind])
        if chosen is not None:
            return kind, chosen
    return None


def placed_budgets(
    records: Sequence[Record], workloads: Sequence[str], offsets: Sequence[float], scale: OffsetScale
) -> tuple[list[PlacedBudget], list[str]]:
    """Every (workload, offset) budget the references allow, and what could not be placed, said why."""
    placed: list[PlacedBudget] = []
    problems: list[str] = []
    for workload in workloads:
        found = engine_reference(records, workload)
        if found is None:
            problems.append(f"{workload}: no reference to place its budgets around")
            continue
        kind, reference = found
        for offset in offsets:
            fraction = place(reference.median, offset, scale)
            if fraction <= 0:
                problems.append(f"{workload}: offset {offset:+g} puts the budget at {fraction * 100:.2f}%, left out")
                continue
            placed.append(
                PlacedBudget(workload, offset, budget_text(fraction), reference.median, kind, reference.processes)
            )
    return placed, problems


def budgets_at(placed: Iterable[PlacedBudget], offset: float) -> dict[str, str]:
    """The budgets of one offset by workload: what one near-budget pytest process gives its tests."""
    return {b.workload: b.budget for b in placed if b.offset == offset}


def referenced_workloads(records: Iterable[Record]) -> set[str]:
    return {r["workload"] for r in unique_references(records)}
