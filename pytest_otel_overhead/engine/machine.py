"""How busy the machine was while a measurement ran: other processes' CPU, and time the hypervisor took.

The interval of a measurement holds for the process and the moment that measured it. On a machine
that other jobs keep busy, caches, memory bandwidth and the scheduler's time slices are shared, and
the same code can read a different overhead than on a quiet one. The engine cannot remove that, so
it says when it happened: the result gets a note when other processes (or the hypervisor, as
steal time) used at least ``BUSY_SHARE`` of the machine's CPUs while the timed pairs ran.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

__all__ = [
    "BUSY_NOTE_START",
    "BUSY_SHARE",
    "CpuReading",
    "busy_note",
    "cpu_reading",
    "is_busy_note",
    "load_degree",
    "was_busy",
]

BUSY_NOTE_START = "the machine was busy while measuring"
"""How the note on a busy machine starts, for whoever must tell it from the others."""

BUSY_SHARE = 0.5
"""Other processes' and the hypervisor's share of all CPUs from which a measurement is marked busy."""
STEAL_SHOWN = 0.05
"""Steal time below this share is left out of the note."""


@dataclass(frozen=True)
class CpuReading:
    """Cumulative seconds at one moment: wall clock, this process's CPU, the machine's busy and stolen CPU."""

    wall: float
    own: float
    busy: float
    steal: float
    cpus: int


def cpu_reading() -> CpuReading:
    times = psutil.cpu_times()
    fields = times._asdict()
    # guest and guest_nice are already counted in user and nice (Linux); idle and iowait are not busy.
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    steal = fields.get("steal", 0.0)
    skipped = idle + steal + fields.get("guest", 0.0) + fields.get("guest_nice", 0.0)
    return CpuReading(
        wall=time.perf_counter(),
        own=time.process_time(),
        busy=sum(fields.values()) - skipped,
        steal=steal,
        cpus=psutil.cpu_count() or 1,
    )


def _shares(start: CpuReading, end: CpuReading) -> tuple[float, float]:
    """Other processes' and the hypervisor's shares of all CPUs between the readings (0 for no time)."""
    capacity = (end.wall - start.wall) * end.cpus
    if capacity <= 0:
        return 0.0, 0.0
    others = max(0.0, (end.busy - start.busy) - (end.own - start.own)) / capacity
    return others, max(0.0, end.steal - start.steal) / capacity


def load_degree() -> float:
    """How many times the load of two busy processes on two CPUs the machine carries now, at least 1.

    The built-in load term was measured beside two busy processes on two CPUs: a 1-minute load average of
    about 3 with the measuring process, one other runnable process per CPU. A heavier load moved the figures
    further (a manual span read +6% quiet, +9% beside two busy processes, +10% to +14% at a load average of
    7 to 12), so the term grows with the other runnable processes per CPU."""
    cpus = psutil.cpu_count() or 1
    try:
        others = os.getloadavg()[0] - 1  # the measuring process is one of the runnable ones
    except OSError:  # no load average on this platform: the calibrated case
        return 1.0
    return max(1.0, others / cpus)


def was_busy(start: CpuReading, end: CpuReading) -> bool:
    """Whether others used at least ``BUSY_SHARE`` of the CPUs between the readings."""
    return sum(_shares(start, end)) >= BUSY_SHARE


def is_busy_note(note: str) -> bool:
    """Whether ``note`` is the one ``busy_note`` writes: a result that carries it was measured on a busy machine."""
    return note.startswith(BUSY_NOTE_START)


def busy_note(start: CpuReading, end: CpuReading) -> str | None:
    """A note when others used at least ``BUSY_SHARE`` of the CPUs between the readings, else ``None``."""
    others, steal = _shares(start, end)
    if others + steal < BUSY_SHARE:
        return None
    stolen = f", and the hypervisor took {steal:.0%} (steal)" if steal >= STEAL_SHOWN else ""
    return (
        f"{BUSY_NOTE_START}: other processes used {min(others, 1.0):.0%} of its "
        f"{end.cpus} CPUs{stolen}; on a loaded machine the same code can read differently than on a quiet "
        "one (docs/accuracy.md)"
    )
