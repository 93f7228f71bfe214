"""The between-process term: how far a figure moves from process to process and with the machine's load.

One process's interval covers the noise of its own pairs. Another process of the same code reads
a different overhead (memory layout, the allocator's state, hash seeds, what ran before), by more
than that interval says, and a busy machine moves it again (shared caches make telemetry dearer).
A verdict is about the code, so every interval counts that term:

* one process: its interval is widened by the term (``widen``), from a prior: the built-in one
  below, measured on real workloads, or one calibrated on the user's runner;
* several processes: their estimates are pooled (``pool``) with a between-process variance that
  weighs what the processes showed against the prior by their degrees of freedom, so two or three
  processes neither pretend to know the spread nor are swamped by the prior.

The load term counts only where the machine was busy while measuring, times how heavily it was
loaded (``busy``: 1 for two busy processes on two CPUs, where it was measured). It is a share of the
overhead where that is larger than its floor: load makes telemetry dearer by a share of what it costs,
so a test at +250% moves by tens of points where one at +5% moves by one. Load moves every process
measured at that moment alike, so it is added to the pooled variance once, not per process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

from pytest_otel_overhead.stats.intervals import dersimonian_laird, t_quantile
from pytest_otel_overhead.wire.text import TextEnum

__all__ = [
    "BUILT_IN_TERM",
    "LOAD_SHARE",
    "PooledTerm",
    "ProcessTerm",
    "TermSource",
    "pool",
    "widen",
]


class TermSource(TextEnum):
    """Where the between-process term of an interval came from."""

    BUILT_IN = "built-in"
    """The prior measured on real workloads (``BUILT_IN_TERM``)."""
    CALIBRATED = "calibrated"
    """The built-in prior widened where the user's own tests on their runner spread or moved more
    (``python -m pytest_otel_overhead calibrate``)."""
    MEASURED = "measured"
    """Measured by the processes that measured this test, pooled with the prior."""


LOAD_SHARE = 0.1
"""The load term's share of the log ratio, where that exceeds its floor ``load`` (above about +13% at the
built-in floor). Beside two busy processes on two CPUs, load moved near-5% workloads by 0.010 to 0.022 in log
ratio (a fifth to a third of their log ratio), ``requests`` (+23%, 0.21) by 0.07 on one machine and 0.03 on
another, sqlite3 (+250%, 1.25) by 0.15 and by none (docs/accuracy.md, 2026-12-06 and 2026-12-07). A tenth
of the log ratio, at the load term's quantile and with one busy process's own interval, reaches those moves;
a larger share would widen the near-5% intervals, where the floor already holds them."""


@dataclass(frozen=True)
class ProcessTerm:
    """A prior for the between-process spread and the load shift, on the log-ratio scale ``ln(instr / base)``.

    The spread grows with the overhead itself (a process offset moves the instrumented arm's time, and
    a larger overhead is a larger share of it): ``tau + slope × |statistic|``.
    """

    tau: float
    """Between-process standard deviation of the log ratio near zero overhead."""
    slope: float
    """How much the standard deviation grows per unit of log ratio."""
    df: float
    """Degrees of freedom behind the prior: the processes' worth of evidence it stands for."""
    load: float
    """Standard deviation added while the machine is busy: how far load moves the log ratio, at least."""
    source: TermSource = TermSource.BUILT_IN
    load_share: float = LOAD_SHARE
    """The load term's share of the absolute log ratio, where that is larger than ``load``."""

    def spread(self, statistic: float) -> float:
        """The prior's between-process standard deviation at a log ratio of ``statistic``."""
        size = abs(statistic) if math.isfinite(statistic) else 0.0
        return self.tau + self.slope * size

    def load_spread(self, statistic: float) -> float:
        """The standard deviation load adds at a log ratio of ``statistic``, per degree of load."""
        size = abs(statistic) if math.isfinite(statistic) else 0.0
        return max(self.load, self.load_share * size)

    def with_load(self, statistic: float, busy: float) -> float:
        """The between-process spread at ``statistic`` with the load term times ``busy`` in quadrature: what one
        process's interval counts."""
        return math.hypot(self.spread(statistic), self.load_spread(statistic) * busy)

    def in_units(self, baseline: float) -> ProcessTerm:
        """The term of an absolute statistic (seconds, bytes per call): near zero overhead, the same share of
        the baseline arm's figure as on the log ratio, in its units; no slope, as there is no log ratio to grow with."""
        size = abs(baseline) if math.isfinite(baseline) else 0.0
        return replace(
            self, tau=math.expm1(self.tau) * size, slope=0.0, load=math.expm1(self.load) * size, load_share=0.0
        )

    def quantile(self, confidence: float) -> float:
        """The two-sided quantile that the prior's uncertainty calls for at ``confidence``."""
        level = 1 - (1 - confidence) / 2
        return t_quantile(level, max(1, round(self.df))) if math.isfinite(self.df) else NormalDist().inv_cdf(level)


BUILT_IN_TERM = ProcessTerm(tau=0.006, slope=0.006, df=4.0, load=0.012)
"""Measured on five real workloads over 20 processes each (docs/accuracy.md, 2026-12-04): the spread of the
processes' estimates beyond their own intervals was 0.0067 (a manual span, +6.6%), 0.0053 (``requests``, +24%),
0.017 (sqlite3, +524%, a log ratio of 1.84) and none measurable for Flask and FastAPI (+6%); six Flask runs
near 5% spread by ±0.4 points (design notes). ``tau`` and ``slope`` put the manual span at 0.0064 and
sqlite3 at 0.017. ``df`` 4, the five workloads less one: a workload whose spread is half as large again
as the prior's still gets about 2.5% false FAILs at its budget over 8 pooled processes, where 8 degrees of
freedom gave 4%. ``load``: two busy processes moved the
log ratio by 0.010 (Flask) to 0.022 (``requests``, the manual span), 0 for FastAPI and sqlite3; it grows with
the overhead as ``LOAD_SHARE`` says."""


def widen(low: float, estimate: float, high: float, spread: float, quantile: float) -> tuple[float, float]:
    """An interval of one process widened on each side by ``quantile × spread``, in quadrature.

    Each side keeps its own width (a Wilcoxon interval need not be symmetric); an unbounded side stays so.
    """
    extra = quantile * spread
    if extra <= 0 or not math.isfinite(estimate):
        return low, high
    below = estimate - math.hypot(estimate - low, extra) if math.isfinite(low) else low
    above = estimate + math.hypot(high - estimate, extra) if math.isfinite(high) else high
    return below, above


@dataclass(frozen=True)
class PooledTerm:
    """Per-process estimates pooled with the prior: the interval, the spread it counted, and its origin."""

    low: float
    estimate: float
    high: float
    tau: float
    """The between-process standard deviation the interval counts (log-ratio scale)."""
    k: int
    source: TermSource


def pool(
    estimates: Sequence[float],
    standard_errors: Sequence[float],
    prior: ProcessTerm,
    confidence: float,
    *,
    busy: float = 0.0,
) -> PooledTerm:
    """Random-effects pooling of one estimate per process with the prior's between-process variance.

    τ² is the prior's and the DerSimonian–Laird estimate's, weighed by their degrees of freedom
    (``df`` and ``k − 1``); the interval is a t interval with ``df + k − 1`` degrees of freedom. A
    process without a usable standard error counts with the median of the others' (or none).
    """
    k = len(estimates)
    if k != len(standard_errors) or k == 0:
        raise ValueError(f"pool needs as many standard errors as estimates, at least one; got {k}")
    variances = _usable_variances(standard_errors)
    mean0 = sorted(estimates)[k // 2]
    prior_tau = prior.spread(mean0)
    tau2 = prior_tau * prior_tau
    source = prior.source
    if k > 1:
        measured = dersimonian_laird(estimates, [v if v > 0 else 1e-12 for v in variances])
        df = prior.df if math.isfinite(prior.df) else 1e9
        tau2 = (df * tau2 + (k - 1) * measured) / (df + k - 1)
        source = TermSource.MEASURED
    weights = [1 / (v + tau2) for v in variances]
    total = math.fsum(weights)
    mean = math.fsum(w * y for w, y in zip(weights, estimates, strict=True)) / total
    variance = 1 / total + (prior.load_spread(mean0) * busy) ** 2
    df_total = prior.df + k - 1
    level = 1 - (1 - confidence) / 2
    q = t_quantile(level, max(1, round(df_total))) if math.isfinite(df_total) else NormalDist().inv_cdf(level)
    half = q * math.sqrt(variance)
    return PooledTerm(mean - half, mean, mean + half, math.sqrt(tau2), k, source)


def _usable_variances(standard_errors: Sequence[float]) -> list[float]:
    """Each standard error squared; an unusable one (unbounded, zero, NaN) takes the median of the others."""
    usable = sorted(se * se for se in standard_errors if math.isfinite(se) and se > 0)
    fill = usable[len(usable) // 2] if usable else 0.0
    return [se * se if math.isfinite(se) and se > 0 else fill for se in standard_errors]
