"""From timed pairs to decisions: the pair statistic, the looks, and what an undecided budget says.

Up to ``MAX_BATCHES`` pairs each pair gives one value of the statistic; past that, batches of
consecutive pairs do, since neighbouring pairs are not independent on a shared machine. Latency
quantiles are taken over groups of pairs large enough for the quantile to mean something.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_otel_overhead.results import MetricResult, PipelineHealth
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import batch_slices, mad_spread, median, quantile
from pytest_otel_overhead.stats.process_term import ProcessTerm
from pytest_otel_overhead.stats.verdict import Decision, Verdict, decide_budget, from_statistic, to_statistic
from pytest_otel_overhead.units import Budget

if TYPE_CHECKING:  # annotations only: the arms bring the OpenTelemetry SDK, which a merge of shards does without
    from pytest_otel_overhead.engine.arms import Pair

__all__ = [
    "LATENCY_QUANTILES",
    "TIME_METRICS",
    "Between",
    "arm_value",
    "latency_groups",
    "look",
    "pair_statistic",
    "paired",
    "progress_line",
    "time_budgets",
    "time_metric",
    "undecided_notes",
]

LATENCY_QUANTILES = {"latency_p50": 0.50, "latency_p95": 0.95, "latency_p99": 0.99}
TIME_METRICS = ("cpu", "wall", *LATENCY_QUANTILES)


def time_budgets(settings: MeasureSettings) -> list[str]:
    """The time metrics with a budget: the ones the looks decide, and that may stop the pairs early."""
    return [m for m in TIME_METRICS if settings.budget(m) is not None]


def pair_statistic(baseline: float, instrumented: float, kind: str) -> float:
    """One pair's statistic: ``ln(instrumented / baseline)`` for a relative budget (NaN, which the
    decision skips, unless both are positive), ``instrumented - baseline`` for an absolute one."""
    if kind != "relative":
        return float(instrumented - baseline)
    return math.log(instrumented / baseline) if baseline > 0 and instrumented > 0 else math.nan


def paired(pairs: Sequence[Pair], attribute: str, kind: str) -> list[float]:
    """Per batch of consecutive pairs (``batch_slices``), the statistic of the arms' mean block.

    Up to ``MAX_BATCHES`` pairs, each pair is its own batch.
    """
    values = []
    for batch in batch_slices(len(pairs)):
        group = pairs[batch]
        b = math.fsum(getattr(p.baseline, attribute) for p in group) / len(group)
        i = math.fsum(getattr(p.instrumented, attribute) for p in group) / len(group)
        values.append(pair_statistic(b, i, kind))
    return values


def latency_groups(pairs: Sequence[Pair], q: float, calls: int, kind: str) -> list[float]:
    """Per group of consecutive pairs, the statistic of the arms' pooled latency quantile.

    A group holds enough calls for the quantile to mean something (about 2 / (1 - q) per arm), and
    there are at most ``MAX_BATCHES`` groups, as for the other metrics.
    """
    size = max(1, math.ceil(math.ceil(2 / (1 - q)) / calls))
    values = []
    for batch in batch_slices(len(pairs), min_size=size):
        group = pairs[batch]
        b = quantile(sorted(x for p in group for x in p.baseline.latencies), q)
        i = quantile(sorted(x for p in group for x in p.instrumented.latencies), q)
        values.append(pair_statistic(b, i, kind))
    return values


def _statistics(pairs: Sequence[Pair], metric: str, budget: Budget | None, calls: int) -> list[float]:
    kind = budget.kind if budget is not None else "relative"
    if metric in LATENCY_QUANTILES:
        return latency_groups(pairs, LATENCY_QUANTILES[metric], calls, kind)
    return paired(pairs, metric, kind)


@dataclass(frozen=True)
class Between:
    """The between-process term a look counts: the prior, whether the machine is busy now, at what confidence."""

    term: ProcessTerm
    busy: float
    """0 on a quiet machine, else how heavily it is loaded (``machine.load_degree``): the load term's multiple."""
    confidence: float

    def widening(self, kind: str, baseline: float) -> Callable[[float], float]:
        """How far each end of an interval moves, for an estimate on the statistic's scale.

        An absolute statistic moves by the same share of the baseline arm's figure as a relative one."""
        q = self.term.quantile(self.confidence)

        def extra(estimate: float) -> float:
            spread = self.term.with_load(estimate if kind == "relative" else 0.0, self.busy)
            return q * (spread if kind == "relative" else math.expm1(spread) * abs(baseline))

        return extra


def look(
    pairs: Sequence[Pair],
    metrics: Sequence[str],
    settings: MeasureSettings,
    calls: int,
    confidence: float,
    between: Between | None = None,
) -> dict[str, Decision]:
    """A decision per metric from the pairs so far, against its budget (an estimate only, if none), its
    interval widened by ``between`` when given."""
    decisions = {}
    for metric in metrics:
        budget = settings.budget(metric)
        kind = budget.kind if budget is not None else "relative"
        widening = between.widening(kind, _baseline(pairs, metric)) if between is not None else None
        statistics = _statistics(pairs, metric, budget, calls)
        decisions[metric] = decide_budget(statistics, budget, confidence, widening=widening)
    return decisions


def _baseline(pairs: Sequence[Pair], metric: str) -> float:
    """The baseline arm's figure per call, the scale of an absolute statistic; 0 before any pair."""
    value = arm_value(pairs, metric, False)
    return value if math.isfinite(value) else 0.0


def time_metric(
    metric: str,
    pairs: Sequence[Pair],
    decision: Decision,
    note: str | None,
    settings: MeasureSettings,
    confidence: float,
) -> MetricResult:
    """A time metric's result: its decision, against its budget if it has one; the arms' figures from ``pairs``
    (not a number without them)."""
    budget = settings.budget(metric)
    return MetricResult(
        metric=metric,
        baseline=arm_value(pairs, metric, False),
        instrumented=arm_value(pairs, metric, True),
        overhead=decision.estimate,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        kind=budget.kind if budget is not None else "relative",
        n=decision.n,
        spread=decision.spread,
        confidence=confidence,
        budget=budget,
        verdict=decision.verdict if budget is not None else None,
        resolution=decision.half_width if decision.verdict is Verdict.INCONCLUSIVE else None,
        note=note,
    )


def arm_value(pairs: Sequence[Pair], metric: str, instrumented: bool) -> float:
    """One arm's figure for ``metric``: the median block, or the pooled quantile for latency."""
    blocks = [p.instrumented if instrumented else p.baseline for p in pairs]
    if not blocks:
        return math.nan
    if metric in LATENCY_QUANTILES:
        return quantile(sorted(x for b in blocks for x in b.latencies), LATENCY_QUANTILES[metric])
    return median([getattr(b, metric) for b in blocks])


def progress_line(
    nodeid: str,
    number: int,
    looks: int,
    pairs: int,
    elapsed: float,
    decisions: dict[str, Decision],
    settings: MeasureSettings,
) -> str:
    """``t look 2/6: 8 pairs, 2.3s: CPU -0.6% [-2.8%, +21.2%] budget 5.0%: INCONCLUSIVE``, figures as in the summary.

    After the looks, ``dropped_progress_line`` adds the pipeline's verdict when ``max_dropped`` is set.
    """
    parts = []
    for m, d in decisions.items():
        budget = settings.budget(m)
        shown = time_metric(m, (), d, None, settings, d.confidence)
        against = f" budget {budget.describe(m)}" if budget is not None else ""
        parts.append(
            f"{shown.label} {shown.format_overhead(d.estimate)} {shown.format_interval()}{against}: {d.verdict.value}"
        )
    return f"{nodeid} look {number}/{looks}: {pairs} pairs, {elapsed:.1f}s" + (": " + "; ".join(parts) if parts else "")


def dropped_progress_line(nodeid: str, health: PipelineHealth) -> str:
    """``t pipeline: lost 312 spans in 1000 calls (…): FAIL (max_dropped 0)``, after the diagnostic round."""
    verdict = Verdict.FAIL if health.over_budget else Verdict.PASS
    return f"{nodeid} pipeline: {health.dropped_sentence()}: {verdict.value} (max_dropped {health.max_dropped})"


def _pair_spread(pairs: Sequence[Pair], metric: str, kind: str, decision: Decision) -> float:
    """Spread (MAD as a standard deviation) of the single pairs' statistic, on the overhead scale.

    The interval is built from batches of pairs; the note speaks of single pairs, which users can
    picture. Latency statistics exist only per group, so theirs is the groups' spread.
    """
    if metric in LATENCY_QUANTILES:
        return decision.spread
    values = [pair_statistic(getattr(p.baseline, metric), getattr(p.instrumented, metric), kind) for p in pairs]
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return decision.spread
    spread = mad_spread(values)
    return math.expm1(spread) if kind == "relative" else spread


def _term_note(pairs: Sequence[Pair], metric: str, decision: Decision, budget: Budget, between: Between) -> str:
    """Why a budget the between-process term holds open stayed undecided, and what would decide it."""
    extra = from_statistic(decision.term, decision.kind) if decision.kind == "relative" else decision.term
    load = " and load on this busy machine" if between.busy else ""
    return (
        f"undecided after {len(pairs)} pairs: how far another process{load} can read the same code "
        f"(±{budget.format(extra, metric).lstrip('+')}, {between.term.source} term) keeps the interval across "
        "the budget; more processes narrow it (processes=auto adds them within max_time)"
    )


def _undecided_note(
    pairs: Sequence[Pair],
    metric: str,
    decision: Decision,
    budget: Budget,
    cause: str | None = None,
    between: Between | None = None,
) -> str:
    """Why ``metric`` stayed undecided: noise wider than the budget, the between-process term, or an overhead
    too near the budget.

    An interval wider than the budget speaks of noise only when the pairs had their time: ``cause``
    says what took it instead (a backend that never answered, a ``max_time`` the fixed phases used up).
    """
    if between is not None and decision.held_by_term(to_statistic(budget)) and cause is None:
        return _term_note(pairs, metric, decision, budget, between)
    if decision.half_width > budget.value and cause is not None:
        return f"undecided after {len(pairs)} pairs, not for noise: {cause}"
    if decision.half_width > budget.value:
        spread = _pair_spread(pairs, metric, budget.kind, decision)
        return (
            f"too noisy to decide a {budget.describe(metric)} budget here: pair-to-pair spread "
            f"{budget.format(spread, metric)}, interval ±{budget.format(decision.half_width, metric)} "
            "at the end of max_time"
        )
    return (
        f"undecided after {len(pairs)} pairs: this run resolves overheads below "
        f"{budget.format(budget.value - decision.half_width, metric)} or above "
        f"{budget.format(budget.value + decision.half_width, metric)}"
    )


def undecided_notes(
    pairs: Sequence[Pair],
    decisions: dict[str, Decision],
    settings: MeasureSettings,
    cause: str | None = None,
    between: Between | None = None,
) -> dict[str, str]:
    """A note for each time budget the last look left INCONCLUSIVE; ``cause``: what kept the pairs few, if not noise;
    ``between``: the term the looks counted."""
    notes = {}
    for m in time_budgets(settings):
        if decisions[m].verdict is Verdict.INCONCLUSIVE:
            budget = settings.budget(m)
            assert budget is not None
            notes[m] = _undecided_note(pairs, m, decisions[m], budget, cause, between)
    return notes
