"""From paired samples to a verdict per budget, with sequential looks that keep error rates honest.

A budget is decided from an interval for the paired statistic: FAIL when the whole interval lies
above the budget, PASS when it lies below, INCONCLUSIVE otherwise. Looking at the data several
times and stopping at the first decision would inflate false verdicts, so looks happen only at
planned points and each look's interval is widened for the number of looks (Bonferroni): over the
whole sequence the chance of any false FAIL (or any false PASS) stays below (1 - confidence) / 2.

A measurement spread over several processes decides from the processes' estimates combined
(``decide_across_processes``), looking after each process from the third on (``process_look_plan``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.stats.intervals import mad_spread, random_effects, sign_interval, wilcoxon_interval
from pytest_otel_overhead.units import Budget

__all__ = [
    "Decision",
    "LookPlan",
    "Verdict",
    "combine",
    "decide",
    "decide_across_processes",
    "decide_budget",
    "from_statistic",
    "process_look_plan",
    "process_looks",
    "statistic_of",
    "to_statistic",
]


class Verdict(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class LookPlan:
    """Planned looks as fractions of the time allowed; ``confidence`` holds over all of them."""

    fractions: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
    confidence: float = 0.95

    @property
    def per_look_confidence(self) -> float:
        return 1 - (1 - self.confidence) / len(self.fractions)


def combine(verdicts: Iterable[Verdict]) -> Verdict | None:
    """The verdict of several: any FAIL fails, else any INCONCLUSIVE is undecided; None for no verdicts."""
    seen = set(verdicts)
    if not seen:
        return None
    for verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE):
        if verdict in seen:
            return verdict
    return Verdict.PASS


def to_statistic(budget: Budget) -> float:
    """The budget on the scale of the paired statistic: log ratio for relative, difference for absolute."""
    return math.log1p(budget.value) if budget.kind == "relative" else budget.value


def from_statistic(value: float, kind: str) -> float:
    """Back from the statistic's scale to the overhead users read (a fraction, or seconds / bytes)."""
    if kind != "relative":
        return value
    if value == math.inf:
        return math.inf
    if value == -math.inf:
        return -1.0
    return math.expm1(value)


def statistic_of(value: float, kind: str) -> float:
    """An overhead (a fraction, or seconds / bytes) on the paired statistic's scale; inverse of ``from_statistic``."""
    if kind != "relative" or math.isnan(value):
        return value
    return math.log1p(value) if value > -1 else -math.inf


def decide(low: float, high: float, threshold: float) -> Verdict:
    """FAIL above, PASS below, INCONCLUSIVE when the interval straddles the threshold."""
    if low > threshold:
        return Verdict.FAIL
    if high < threshold:
        return Verdict.PASS
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Decision:
    """One budget's verdict at one look, on the overhead scale users read."""

    estimate: float
    ci_low: float
    ci_high: float
    verdict: Verdict
    n: int
    spread: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2


def decide_budget(
    samples: Sequence[float],
    budget: Budget | None,
    confidence: float,
    *,
    kind: str = "relative",
    method: str = "wilcoxon",
) -> Decision:
    """Estimate, interval and verdict from paired statistics (log ratios or differences).

    With no budget the interval is still computed, for reporting, and the verdict is INCONCLUSIVE
    only in the sense that nothing was asked; callers report such metrics without a verdict.
    """
    if budget is not None:
        kind = budget.kind
    usable = [s for s in samples if math.isfinite(s)]
    if not usable:
        return Decision(math.nan, -math.inf, math.inf, Verdict.INCONCLUSIVE, 0, math.nan, confidence)
    interval = sign_interval if method == "sign" else wilcoxon_interval
    low, estimate, high = interval(usable, confidence)
    verdict = decide(low, high, to_statistic(budget)) if budget is not None else Verdict.INCONCLUSIVE
    spread = mad_spread(usable) if len(usable) > 1 else math.nan
    return Decision(
        estimate=from_statistic(estimate, kind),
        ci_low=from_statistic(low, kind),
        ci_high=from_statistic(high, kind),
        verdict=verdict,
        n=len(usable),
        spread=from_statistic(spread, kind) if kind == "relative" and math.isfinite(spread) else spread,
        confidence=confidence,
    )


def process_looks(processes: int) -> tuple[int, ...]:
    """After how many processes a measurement spread over ``processes`` looks: each from the third on.

    Fewer than three processes give a t interval with one degree of freedom at best, twelve
    standard errors wide at 95%: those look once, at the end."""
    return tuple(range(min(3, processes), processes + 1))


def process_look_plan(processes: int, confidence: float = 0.95) -> LookPlan:
    """The looks of ``process_looks`` as a plan: ``per_look_confidence`` is Bonferroni's over them."""
    return LookPlan(fractions=tuple(k / processes for k in process_looks(processes)), confidence=confidence)


def decide_across_processes(
    estimates: Sequence[float],
    standard_errors: Sequence[float],
    budget: Budget | None,
    confidence: float,
    *,
    kind: str = "relative",
) -> Decision:
    """Estimate, interval and verdict from one estimate per process (on the statistic's scale, with
    its within-process standard error), by ``stats.random_effects``.

    Processes without a finite estimate are left out. ``spread`` is the between-process standard
    deviation τ, on the overhead scale; ``n`` the processes combined.
    """
    if budget is not None:
        kind = budget.kind
    usable = [(y, se) for y, se in zip(estimates, standard_errors, strict=True) if math.isfinite(y)]
    if not usable:
        return Decision(math.nan, -math.inf, math.inf, Verdict.INCONCLUSIVE, 0, math.nan, confidence)
    pooled = random_effects([y for y, _ in usable], [se for _, se in usable], confidence)
    verdict = decide(pooled.low, pooled.high, to_statistic(budget)) if budget is not None else Verdict.INCONCLUSIVE
    spread = pooled.tau
    return Decision(
        estimate=from_statistic(pooled.estimate, kind),
        ci_low=from_statistic(pooled.low, kind),
        ci_high=from_statistic(pooled.high, kind),
        verdict=verdict,
        n=pooled.k,
        spread=from_statistic(spread, kind) if kind == "relative" and math.isfinite(spread) else spread,
        confidence=confidence,
    )
