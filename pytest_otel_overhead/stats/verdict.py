"""From paired samples to a verdict per budget, with sequential looks that keep error rates honest.

A budget is decided from an interval for the paired statistic: FAIL when the whole interval lies
above the budget, PASS when it lies below, INCONCLUSIVE otherwise. Looking at the data several
times and stopping at the first decision would inflate false verdicts, so looks happen only at
planned points and each look's interval is widened for the number of looks (Bonferroni): over the
whole sequence the chance of any false FAIL (or any false PASS) stays below (1 - confidence) / 2.

A measurement spread over several processes decides from the processes' estimates combined
(``decide_across_processes``), looking after each process from the second on (``process_look_plan``),
with a between-process variance that pools the processes' own spread with the prior's
(``stats.process_term``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pytest_otel_overhead.stats.intervals import mad_spread, random_effects, sign_interval, wilcoxon_interval
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM, ProcessTerm, pool, widen
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire.text import TextEnum

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


class Verdict(TextEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class LookPlan:
    """Planned looks as fractions of the time allowed; ``confidence`` holds over all of them (the test's
    ``confidence`` setting)."""

    confidence: float
    fractions: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)

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
    term: float = 0.0
    """How far the between-process term moved each end, on the statistic's scale (quantile × spread)."""
    own_low: float = math.nan
    """The interval of this process's own pairs, before the term (equal to ``ci_low`` without one)."""
    own_high: float = math.nan
    kind: str = "relative"
    """The statistic's kind: ``"relative"`` (log ratios) or ``"absolute"`` (differences)."""

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def held_by_term(self, threshold: float) -> bool:
        """Whether the term keeps the interval across ``threshold`` (the statistic's scale) whatever more pairs
        in this process show: the estimate lies within the term of the threshold (once the pairs' own interval
        is within twice the term, so the estimate means something), or the pairs' own interval is a third of
        the term already, so more pairs would narrow the whole by a few percent at most."""
        if self.term <= 0 or self.verdict is not Verdict.INCONCLUSIVE or not math.isfinite(self.estimate):
            return False
        own = (statistic_of(self.own_high, self.kind) - statistic_of(self.own_low, self.kind)) / 2
        distance = abs(statistic_of(self.estimate, self.kind) - threshold)
        return own <= self.term / 3 or (distance <= self.term and own <= 2 * self.term)

    def stands_widened(self, threshold: float, factor: float) -> bool:
        """Whether this verdict would stand with the interval ``factor`` times as wide about its estimate,
        against ``threshold`` (the statistic's scale); an undecided one never stands."""
        estimate = statistic_of(self.estimate, self.kind)
        if self.verdict is Verdict.INCONCLUSIVE or not math.isfinite(estimate):
            return False
        low = estimate - factor * (estimate - statistic_of(self.ci_low, self.kind))
        high = estimate + factor * (statistic_of(self.ci_high, self.kind) - estimate)
        return decide(low, high, threshold) is self.verdict


def decide_budget(
    samples: Sequence[float],
    budget: Budget | None,
    confidence: float,
    *,
    kind: str = "relative",
    method: str = "wilcoxon",
    widening: Callable[[float], float] | None = None,
) -> Decision:
    """Estimate, interval and verdict from paired statistics (log ratios or differences).

    ``widening`` gives, for the estimate on the statistic's scale, how far the between-process term
    moves each end of the interval (``stats.process_term.widen``); without it the interval is the
    pairs' own.

    With no budget the interval is still computed, for reporting, and the verdict is INCONCLUSIVE
    only in the sense that nothing was asked; callers report such metrics without a verdict.
    """
    if budget is not None:
        kind = budget.kind
    usable = [s for s in samples if math.isfinite(s)]
    if not usable:
        return Decision(math.nan, -math.inf, math.inf, Verdict.INCONCLUSIVE, 0, math.nan, confidence, kind=kind)
    interval = sign_interval if method == "sign" else wilcoxon_interval
    own_low, estimate, own_high = interval(usable, confidence)
    term = widening(estimate) if widening is not None else 0.0
    low, high = widen(own_low, estimate, own_high, 1.0, term)
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
        term=term,
        own_low=from_statistic(own_low, kind),
        own_high=from_statistic(own_high, kind),
        kind=kind,
    )


def process_looks(processes: int) -> tuple[int, ...]:
    """After how many processes a measurement spread over ``processes`` looks: each from the second on.

    One process alone is the test's own measurement, decided with the prior's term; from two on the
    processes' own spread joins the prior's (``process_term.pool``)."""
    return tuple(range(min(2, processes), processes + 1))


def process_look_plan(processes: int, confidence: float) -> LookPlan:
    """The looks of ``process_looks`` as a plan: ``per_look_confidence`` is Bonferroni's over them."""
    return LookPlan(fractions=tuple(k / processes for k in process_looks(processes)), confidence=confidence)


def decide_across_processes(
    estimates: Sequence[float],
    standard_errors: Sequence[float],
    budget: Budget | None,
    confidence: float,
    *,
    kind: str = "relative",
    prior: ProcessTerm = BUILT_IN_TERM,
    busy: float = 0.0,
    baseline: float = math.nan,
) -> Decision:
    """Estimate, interval and verdict from one estimate per process (on the statistic's scale, with
    its within-process standard error), pooled with the prior's between-process term (``process_term.pool``).

    Processes without a finite estimate are left out. ``spread`` is the between-process standard
    deviation τ the interval counts, on the overhead scale; ``n`` the processes combined. An absolute
    statistic takes the prior as the same share of ``baseline``, the baseline arm's figure
    (``ProcessTerm.in_units``), as one process does; without a finite baseline its processes are
    combined by ``random_effects`` alone.
    """
    if budget is not None:
        kind = budget.kind
    usable = [(y, se) for y, se in zip(estimates, standard_errors, strict=True) if math.isfinite(y)]
    if not usable:
        return Decision(math.nan, -math.inf, math.inf, Verdict.INCONCLUSIVE, 0, math.nan, confidence, kind=kind)
    values, errors = [y for y, _ in usable], [se for _, se in usable]
    if kind == "relative" or math.isfinite(baseline):
        term = prior if kind == "relative" else prior.in_units(baseline)
        pooled = pool(values, errors, term, confidence, busy=busy)
        low, estimate, high, tau, k = pooled.low, pooled.estimate, pooled.high, pooled.tau, pooled.k
    else:
        combined = random_effects(values, errors, confidence)
        low, estimate, high, tau, k = combined.low, combined.estimate, combined.high, combined.tau, combined.k
    verdict = decide(low, high, to_statistic(budget)) if budget is not None else Verdict.INCONCLUSIVE
    return Decision(
        estimate=from_statistic(estimate, kind),
        ci_low=from_statistic(low, kind),
        ci_high=from_statistic(high, kind),
        verdict=verdict,
        n=k,
        spread=from_statistic(tau, kind) if kind == "relative" and math.isfinite(tau) else tau,
        confidence=confidence,
        kind=kind,
    )
