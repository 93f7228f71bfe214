"""Whether two runs were measured on machines alike, and how much a time comparison widens when they were not.

A time overhead depends on the machine as well as the code: spans touch memory, so a busy or
different CPU moves the ratio of the arms (docs/sharding.md, *Comparisons across machines*). Two
runs differ in their machine when their CPU models differ (for a merged run, the set of its
shards' models), when their Python builds differ (version, implementation, platform), or when one
was measured under a load the other was not. Counts (instructions, estimated cycles:
``shift.COUNTED_METRICS``) are the same on any machine and compare as equals.

One machine also runs at more than one speed. A shared runner's vCPU shares its core and caches with
neighbours that its load average does not show, and on this project's runners the baseline arm of one
test took twice as long per call in one run as in the run minutes before. The overhead moved with
it, up or down depending on the workload. So each test's comparison also counts a speed term, when
its baseline arm ran at another speed per call (``speed_spread``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_otel_overhead.engine.machine import is_busy_note

if TYPE_CHECKING:
    from pytest_otel_overhead.history.store import RunRecord
    from pytest_otel_overhead.results.records import TestResult

__all__ = [
    "BUSY_DIFFERENCE",
    "MACHINE_SPREAD",
    "SPEED_DIFFERENCE",
    "SPEED_SLOPE",
    "SPEED_SPREAD",
    "UNKNOWN_CPU",
    "busy_load",
    "cpu_models",
    "machine_differences",
    "machine_term",
    "speed_ratio",
    "speed_spread",
]

MACHINE_SPREAD = 0.015
"""Standard deviation of the shift of ``ln(instrumented / baseline)`` between two machines, assumed.

Source: the largest shift a machine's state was measured to cause on one workload here, a Flask
endpoint at +1.0…+1.6% quiet against +2.3…+2.5% beside two busy processes (design notes, 2026-11-30):
up to 1.5 points, 0.015 in log ratio, taken as one standard deviation. No second CPU model was at
hand to measure; different CPU models are assumed to move a figure no more than load does."""
BUSY_DIFFERENCE = 0.5
"""Runs whose 1-minute load averages per CPU differ by this much were measured under different loads."""
SPEED_DIFFERENCE = 1.25
"""A test whose baseline arm took this many times as long per call in one run as in the other (or less
by as much) ran at another speed. Below it the term is too small to count (0.3 points near 5%); the
runner's two speeds were about twice apart (docs/accuracy.md, *One runner, two speeds*)."""
SPEED_SPREAD = 0.010
"""Standard deviation of the shift of ``ln(instrumented / baseline)`` per unit of ``|ln(speed ratio)|``,
near zero overhead. Source: saved runs of six real workloads on one runner, 2026-12-04 and 2026-12-06
(docs/accuracy.md, *One runner, two speeds*; ``python -m benchmarks.real.speeds``): the log ratio
moved by +0.016 (``checkout``), +0.008 (the manual span), +0.002 (Flask), -0.009 (FastAPI) per unit
of log speed; 0.010 is their root mean square."""
SPEED_SLOPE = 0.05
"""How much ``SPEED_SPREAD`` grows per unit of log ratio: sqlite3 (+520%, a log ratio of 1.84) moved by
-0.095 per unit of log speed, 0.051 per unit of its log ratio; ``requests`` (+27%) by -0.021, which
0.010 + 0.05 × 0.24 covers."""
UNKNOWN_CPU = "unknown CPU"
_BUILD = (("python", "Python"), ("implementation", "Python implementation"), ("platform", "platform"))


def cpu_models(run: RunRecord) -> tuple[str, ...]:
    """The CPU models a run was measured on: one, or those of a merged run's shards."""
    models = run.machine.get("cpu_models")
    if isinstance(models, list) and models and all(isinstance(m, str) for m in models):
        return tuple(models)
    model = run.machine.get("cpu_model")
    return (model if isinstance(model, str) and model else UNKNOWN_CPU,)


def _load_per_cpu(environment: Mapping[str, Any]) -> float | None:
    load, cpus = environment.get("load_average"), environment.get("cpu_count")
    if not (isinstance(load, list) and load and isinstance(load[0], (int, float))):
        return None
    if not (isinstance(cpus, int) and cpus > 0):
        return None
    return float(load[0]) / cpus


def _describe(models: Sequence[str]) -> str:
    return " + ".join(models)


def machine_differences(before: RunRecord, after: RunRecord) -> tuple[str, ...]:
    """What sets the machines of two runs apart for a time figure; empty when nothing known does."""
    out = []
    b_cpus, a_cpus = cpu_models(before), cpu_models(after)
    if UNKNOWN_CPU not in b_cpus + a_cpus and (set(b_cpus) != set(a_cpus) or len(a_cpus) > 1 or len(b_cpus) > 1):
        # A run merged over several CPU models may have measured a test on either: it differs even from its twin.
        out.append(f"CPU {_describe(b_cpus)} → {_describe(a_cpus)}")
    for key, label in _BUILD:
        b, a = before.environment.get(key), after.environment.get(key)
        if b is not None and a is not None and b != a:
            out.append(f"{label} {b} → {a}")
    b_load, a_load = _load_per_cpu(before.environment), _load_per_cpu(after.environment)
    if b_load is not None and a_load is not None and abs(b_load - a_load) >= BUSY_DIFFERENCE:
        out.append(f"load per CPU {b_load:.2f} → {a_load:.2f}")
    return tuple(out)


def machine_term(before: RunRecord, after: RunRecord) -> float:
    """The machine term for time comparisons of these two runs: ``MACHINE_SPREAD`` when their machines differ."""
    return MACHINE_SPREAD if machine_differences(before, after) else 0.0


def speed_ratio(before: TestResult, after: TestResult, metric: str) -> float | None:
    """How many times as long per call the later run's baseline arm took for ``metric`` (CPU or wall time);
    ``None`` when either run has no positive figure for it."""
    b, a = before.metric(metric), after.metric(metric)
    if b is None or a is None or not (b.baseline > 0 and a.baseline > 0):
        return None
    ratio = a.baseline / b.baseline
    return ratio if math.isfinite(ratio) else None


def speed_spread(ratio: float | None, statistic: float) -> float:
    """The speed term: how far the log ratio may have moved between two runs whose baseline arms ran
    ``ratio`` times as long per call, at a log ratio of ``statistic``; 0 below ``SPEED_DIFFERENCE``."""
    if ratio is None or max(ratio, 1 / ratio) < SPEED_DIFFERENCE:
        return 0.0
    size = abs(statistic) if math.isfinite(statistic) else 0.0
    return abs(math.log(ratio)) * (SPEED_SPREAD + SPEED_SLOPE * size)


def busy_load(result: TestResult, statistic: float) -> float:
    """The load term (log ratio) that ``result``'s time intervals counted beside its processes' spread, at
    its log ratio ``statistic``: the prior's where several processes measured it on a busy machine, else 0
    (one process's spread already holds it; a quiet machine has none). Every process of a run shares the
    moment's load, so more processes do not shrink it, and another run had a moment of its own."""
    if result.processes <= 1 or not any(map(is_busy_note, result.notes)):
        return 0.0
    return result.settings.process_term.load_spread(statistic)
