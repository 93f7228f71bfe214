"""The timed phases of a measurement: warm-up and calibration, then timed pairs with sequential looks.

The warm-up runs single-call blocks in both arms; its later half sizes the blocks to about
``BLOCK_TARGET_S``. The timed pairs then run in ABBA order from a random start, with a look at
each of the plan's fractions of the time left for them: they stop as soon as every time budget is
decided, else when only the time kept back for the later phases is left.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.engine.arms import Arms, Block, Pair
from pytest_otel_overhead.engine.looks import Between, look, progress_line, time_budgets
from pytest_otel_overhead.otel.export_deadlines import endpoint_refuses
from pytest_otel_overhead.results import StopReason
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median
from pytest_otel_overhead.stats.verdict import Decision, LookPlan, Verdict, to_statistic

__all__ = [
    "BLOCK_TARGET_S",
    "BUSY_WIDENING",
    "EXPORT_WAIT_SHARE",
    "MIN_TIMED_S",
    "WARMUP_S",
    "Run",
    "Sizing",
    "TimedPairs",
    "calibration_time",
    "starved_cause",
    "timed_pairs",
    "warm_up",
]

BLOCK_TARGET_S = 0.01
"""Target length of one timed block: short blocks give many pairs per second at similar spread."""
BUSY_WIDENING = 2.0
"""On a busy machine a first process's verdict stands without a second process only if it would with its interval
this many times as wide. The two bursts of load seen to move one busy process past its interval left its estimate
1.2 and 1.6 half-widths from the budget (docs/accuracy.md); the term keeps a half-width at least its quantile times
the prior and load terms (about 0.035 in log ratio near 5%), so twice it reaches as far as those bursts moved a
figure (0.055 and 0.08). Overheads far from the budget (``requests`` at +27%, sqlite3) stand at twice the width
and cost no added process."""
WARMUP_S = 0.2
MIN_TIMED_S = 1.0
"""Time for the timed pairs below which an undecided budget says more about ``max_time`` than about noise:
at ``BLOCK_TARGET_S`` blocks, about 50 pairs."""
EXPORT_WAIT_SHARE = 0.5
"""Share of the warm-up's and timed pairs' time spent in failed exports from which the backend, not noise, is
why few pairs ran."""
PAIRS_WITHOUT_TIME_BUDGET = 16
"""Pairs after which a measurement with no time budget, which only reports, stops at its next look."""


@dataclass(frozen=True)
class Run:
    """What the phases of one time-mode measurement share."""

    arms: Arms
    settings: MeasureSettings
    plan: LookPlan
    collect: Callable[[], object]
    """Collects the heap before each block (see ``calm_gc``)."""
    started: float
    deadline: float
    nodeid: str
    say: Callable[[str], None]
    between: Callable[[], Between | None] = lambda: None
    """The between-process term each look counts, as the machine is now (None in a process that measures
    one share of a measurement over processes: the parent counts it)."""
    adds_processes: bool = False
    """Whether fresh processes follow when the term alone keeps a budget open (``processes`` auto)."""
    timed_only: bool = False
    """A share of a measurement over processes that runs the timed pairs and no later phase."""


@dataclass(frozen=True)
class Sizing:
    """What the warm-up found: seconds per call, calls per block, and the slower arm's wall time per call."""

    per_call: float
    calls: int
    wall_per_call: float


@dataclass
class TimedPairs:
    """The timed pairs, the last look's decisions on the time budgets, and why the pairs stopped."""

    pairs: list[Pair]
    decisions: dict[str, Decision]
    looks: int
    stop_reason: StopReason
    time_given: float = math.inf
    """Seconds ``max_time`` left the timed pairs once the warm-up and the time kept back for later phases were
    taken."""
    time_fixed: float = 0.0
    """Seconds of the warm-up and of the time kept back for the later phases: what the pairs cannot have."""


def calibration_time(warm: Sequence[Block]) -> float:
    """Seconds per call that size the blocks, from the later half of the warm-up.

    CPU time, because wall time stretches when other jobs take the CPU, and blocks sized from it
    would shrink exactly when noise is worst; but at least a quarter of wall time, so that a
    workload that mostly waits (I/O, a slow backend) still gets blocks of a sensible length.
    """
    later = warm[len(warm) // 2 :]
    return max(median([b.cpu for b in later]), median([b.wall for b in later]) / 4)


def warm_up(run: Run) -> Sizing:
    """Single-call blocks in both arms, for ``min(WARMUP_S, max_time / 20)`` and at least two each."""
    # Warm-up doubles as calibration: the slower arm's per-call time sets the block size.
    warm: dict[bool, list[Block]] = {False: [], True: []}
    while True:
        for instrumented in (False, True):
            warm[instrumented].append(run.arms.block(instrumented, 1, run.collect))
        elapsed = run.arms.clock.wall() - run.started
        if elapsed >= min(WARMUP_S, run.settings.max_time / 20) and len(warm[True]) >= 2:
            break
    per_call = max(calibration_time(warm[False]), calibration_time(warm[True]))
    calls = max(1, round(BLOCK_TARGET_S / max(per_call, 1e-9)))
    wall_per_call = max(median([b.wall for b in warm[False]]), median([b.wall for b in warm[True]]))
    return Sizing(per_call=per_call, calls=calls, wall_per_call=wall_per_call)


def timed_pairs(run: Run, calls: int, rng: random.Random, reserve: float) -> TimedPairs:
    """Pairs of ``calls``-call blocks with looks, until decided or only ``reserve`` seconds are left."""
    clock, plan, settings = run.arms.clock.wall, run.plan, run.settings
    budgeted = time_budgets(settings)
    timed_start = clock()
    timed_span = max(0.0, run.deadline - timed_start - reserve)
    look_times = [timed_start + f * timed_span for f in plan.fractions]
    timed = TimedPairs(pairs=[], decisions={}, looks=0, stop_reason=StopReason.MAX_TIME, time_given=timed_span)
    timed.time_fixed = timed_start - run.started + reserve
    # ABBA order from a random start: the block after an instrumented one is a baseline one
    # half of the time, so what one arm leaves behind (its export thread winding down, caches)
    # does not land mostly on the other; with a coin per pair it would, three times in four.
    orientation = rng.random() < 0.5
    for look_index, look_time in enumerate(look_times):
        _run_pairs_until(run, timed.pairs, calls, orientation, look_time, reserve)
        timed.looks = look_index + 1
        between = run.between()
        timed.decisions = look(timed.pairs, budgeted, settings, calls, plan.per_look_confidence, between)
        elapsed = clock() - run.started
        run.say(
            progress_line(
                run.nodeid, timed.looks, len(plan.fractions), len(timed.pairs), elapsed, timed.decisions, settings
            )
        )
        busy = between is not None and between.busy > 0
        stop_reason = _stop_reason(budgeted, timed, settings if run.adds_processes else None, busy)
        if stop_reason is not None:
            timed.stop_reason = stop_reason
            break
        if clock() > run.deadline - reserve:
            break
    return timed


def starved_cause(run: Run, timed: TimedPairs) -> str | None:
    """Why the timed pairs were too few to decide when neither noise nor the overhead is why, else ``None``.

    A backend that never answers holds every flush until the cap, so the pairs are few and the interval
    unbounded; so does a ``max_time`` that the warm-up and the phases after the pairs use up.
    """
    elapsed = run.arms.clock.wall() - run.started
    capped = run.arms.pipeline.capped
    with capped.lock:
        waited, failed, cut = capped.failed_s, capped.failed, capped.exports
    if failed and waited >= EXPORT_WAIT_SHARE * elapsed:
        # Cut exports waited for an answer until the cap; others failed sooner, retried or timed out on their own.
        refused = endpoint_refuses(run.settings.pipeline.endpoint)
        cause = (
            "the backend did not answer: exports took the whole time left"
            if cut and not refused
            else "exports failed (refused, or no answer within export_timeout) and waiting on them took the time"
        )
        return (
            f"{cause} ({failed} failed export{'s' if failed != 1 else ''} waited {waited:.1f} s of the "
            f"{elapsed:.1f} s of warm-up and timed pairs)"
        )
    if timed.time_given < MIN_TIMED_S:
        at_least = math.ceil((timed.time_fixed + MIN_TIMED_S) * 2) / 2
        return (
            f"max_time {run.settings.max_time:g}s is used up by warm-up and the fixed rounds ({timed.time_fixed:.1f} s "
            f"with the diagnostic and heap rounds and margins), leaving the timed pairs {timed.time_given:.1f} s: "
            f"raise max_time to at least {at_least:g} s"
        )
    return None


def _run_pairs_until(
    run: Run, pairs: list[Pair], calls: int, orientation: bool, look_time: float, reserve: float
) -> None:
    """Add pairs until ``look_time``, or until only ``reserve`` is left; there are at least two after."""
    clock = run.arms.clock.wall
    while clock() < look_time or len(pairs) < 2:
        pairs.append(run.arms.pair(orientation ^ (len(pairs) % 2 == 1), calls, run.collect))
        if clock() > run.deadline - reserve and len(pairs) >= 2:
            break


def _stop_reason(
    budgeted: Sequence[str], timed: TimedPairs, adding: MeasureSettings | None, busy: bool
) -> StopReason | None:
    """Why the pairs may stop at this look, or None to go on; ``adding`` when fresh processes can follow,
    ``busy`` while other processes keep the machine busy."""
    if not budgeted and len(timed.pairs) >= PAIRS_WITHOUT_TIME_BUDGET:
        return StopReason.NO_TIME_BUDGET
    open_budgets = [m for m in budgeted if timed.decisions[m].verdict is Verdict.INCONCLUSIVE]
    if budgeted and not open_budgets:
        # On a busy machine one process's verdict is not final: a burst of load moved one process's figure
        # further than the load term (checkout, +4.2% quiet and +5% busy, read +13.8% [+8.4%, +19.5%] in one
        # busy process, docs/accuracy.md): where processes can follow, they confirm it or leave it open,
        # unless it would stand with an interval BUSY_WIDENING times as wide.
        if adding is not None and busy and not all(_stands_busy(timed.decisions[m], adding, m) for m in budgeted):
            return StopReason.PROCESS_TERM
        return StopReason.DECIDED
    if adding is not None and open_budgets and all(_held_by_term(timed.decisions[m], adding, m) for m in open_budgets):
        return StopReason.PROCESS_TERM
    return None


def _stands_busy(decision: Decision, settings: MeasureSettings, metric: str) -> bool:
    threshold = _threshold(settings, metric)
    return threshold is None or decision.stands_widened(threshold, BUSY_WIDENING)


def _held_by_term(decision: Decision, settings: MeasureSettings, metric: str) -> bool:
    threshold = _threshold(settings, metric)
    return threshold is not None and decision.held_by_term(threshold)


def _threshold(settings: MeasureSettings, metric: str) -> float | None:
    """``metric``'s budget on the paired statistic's scale, or None without one."""
    budget = settings.budget(metric)
    return None if budget is None else to_statistic(budget)
