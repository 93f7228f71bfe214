"""The terms a calibration measures, computed from measurements over processes: pure functions on records and floats.

Every figure is on the log-ratio scale ``ln(1 + overhead)`` of ``stats.process_term``. Per test and
time metric with a relative overhead, each process gives an estimate and its standard error (from
its interval, at the per-look confidence the processes' intervals are made at); DerSimonian–Laird
gives the test's between-process τ, and a random-effects mean its combined estimate. Across tests,
``spread_scale`` says how many times the built-in spread the tests' τ are; ``load_term`` says how far a busy
machine moved the combined estimates beyond what their own standard errors explain, near zero, and
``load_share`` what share of their log ratio it moved them by above ``FLOOR_RANGE``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_otel_overhead.engine.combined import child_plan
from pytest_otel_overhead.engine.looks import TIME_METRICS
from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.settings.calibration import LARGEST_TERM
from pytest_otel_overhead.stats.intervals import dersimonian_laird, standard_error
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM, LOAD_SHARE
from pytest_otel_overhead.stats.verdict import statistic_of

__all__ = [
    "FLOOR_RANGE",
    "Combined",
    "ProcessEstimates",
    "RunFigures",
    "calibrated_metrics",
    "combine",
    "load_share",
    "load_term",
    "moved_figures",
    "process_estimates",
    "run_figures",
    "spread_scale",
    "widened",
    "with_built_in",
]

RELATIVE = "relative"


@dataclass(frozen=True)
class ProcessEstimates:
    """One test's metric as each of its processes measured it: log ratios and their standard errors."""

    test: str
    metric: str
    estimates: tuple[float, ...]
    standard_errors: tuple[float, ...]


@dataclass(frozen=True)
class Combined:
    """One test's metric over its processes: the random-effects estimate, its standard error, and τ."""

    test: str
    metric: str
    processes: int
    estimate: float
    """Log ratio: the processes' estimates weighed by ``1 / (se² + τ²)``."""
    standard_error: float
    """Of ``estimate``, counting τ: how far another set of processes would put it."""
    tau: float
    """Between-process standard deviation, DerSimonian–Laird."""


def calibrated_metrics(result: TestResult) -> list[MetricResult]:
    """The metrics of ``result`` a calibration counts: cpu and the time metrics with a relative budget, read as ratios.

    A test without telemetry compared two identical arms, and says nothing of telemetry's spread.
    """
    if result.no_telemetry is not None:
        return []
    return [
        m
        for m in result.metrics
        if m.metric in TIME_METRICS
        and m.kind == RELATIVE
        and (m.metric == "cpu" or (m.budget is not None and m.budget.kind == RELATIVE))
    ]


def process_estimates(result: TestResult) -> list[ProcessEstimates]:
    """Per calibrated metric, every process's log ratio and standard error, from ``result.replicas``.

    A process's standard error comes from its own interval, made at ``child_plan``'s per-look
    confidence; a process without an estimate or a bounded interval is left out.
    """
    found = []
    for metric in calibrated_metrics(result):
        estimates, errors = [], []
        for replica in result.replicas:
            for name, overhead, low, high in replica.overheads:
                if name != metric.metric:
                    continue
                y = statistic_of(overhead, RELATIVE)
                level = child_plan(result.settings.confidence).per_look_confidence
                se = standard_error(statistic_of(low, RELATIVE), statistic_of(high, RELATIVE), level)
                if math.isfinite(y) and math.isfinite(se) and se > 0:
                    estimates.append(y)
                    errors.append(se)
        found.append(ProcessEstimates(result.nodeid, metric.metric, tuple(estimates), tuple(errors)))
    return found


def combine(measured: ProcessEstimates) -> Combined:
    """The random-effects combination of at least two processes' estimates."""
    k = len(measured.estimates)
    if k < 2 or k != len(measured.standard_errors):
        raise ValueError(f"{measured.test} {measured.metric}: combining needs two processes or more, got {k}")
    variances = [se * se for se in measured.standard_errors]
    tau2 = dersimonian_laird(measured.estimates, variances)
    weights = [1 / (v + tau2) for v in variances]
    total = math.fsum(weights)
    mean = math.fsum(w * y for w, y in zip(weights, measured.estimates, strict=True)) / total
    return Combined(measured.test, measured.metric, k, mean, math.sqrt(1 / total), math.sqrt(tau2))


def spread_scale(figures: Sequence[Combined]) -> float:
    """How many times the built-in prior's spread at their log ratios the figures' τ are: ``c`` with
    ``c² = Σ w (τ / b(y))² / Σ w``, ``b`` the built-in ``tau + slope × |y|`` and ``w`` each figure's
    processes less one (the degrees of freedom of its τ²).

    The calibration scales the built-in line rather than fitting one of its own: from five processes a
    test, DerSimonian–Laird reads τ 0 for most tests, and a line fitted to such τ put the spread at +5%
    at 0.0009 on one runner where the built-in says 0.0063; the quiet intervals it gave held their references
    in 28 of 50 runs (docs/accuracy.md). Squares average the zeros with the τ that did show."""
    if not figures:
        raise ValueError("scaling the spread needs one figure or more")
    points = [((f.tau / BUILT_IN_TERM.spread(f.estimate)) ** 2, max(f.processes - 1, 1)) for f in figures]
    return math.sqrt(math.fsum(w * r for r, w in points) / math.fsum(w for _, w in points))


FLOOR_RANGE = BUILT_IN_TERM.load / LOAD_SHARE
"""The log ratios up to which the built-in load term is its floor (0.12, about +13%): the figures that
measure a calibrated floor. Above it the load term is ``LOAD_SHARE`` of the log ratio."""


def load_term(quiet: Sequence[Combined], loaded: Sequence[Combined]) -> float | None:
    """How far a busy machine moves a combined estimate, the load term's floor; None when the runs share
    no figure within ``FLOOR_RANGE``.

    Per figure in both runs, the move ``d = loaded − quiet`` has the variance ``v`` of the two
    estimates' standard errors (which count their τ), and ``d² − v`` estimates the load's share. The
    term is the root of their weighed mean (``_excess_move``), clipped at 0: the root mean square move
    less what the standard errors explain, where a noisy figure (a latency percentile over three
    processes) counts for less than a precise one instead of hiding what the others moved. Figures
    beyond ``FLOOR_RANGE`` are left out: there the share counts (``load_share``), and they would count twice.
    """
    return _excess_move(quiet, loaded, near=True)


def load_share(quiet: Sequence[Combined], loaded: Sequence[Combined]) -> float | None:
    """What share of its log ratio a busy machine moves a combined estimate beyond ``FLOOR_RANGE``, the load
    term's share there; None when the runs share no figure beyond it.

    As ``load_term``, on each figure's move taken as a share of its quiet log ratio: ``d / |y|``, of
    variance ``v / y²``; at most ``LARGEST_TERM``. On one machine beside two busy processes,
    ``requests`` (+23%) moved by a third of its log ratio and sqlite3 (+250%) by a tenth; on another
    by a seventh and by none.
    """
    share = _excess_move(quiet, loaded, near=False)
    return None if share is None else min(share, LARGEST_TERM)


_ITERATIONS = 200
"""Enough for the weighed excess to settle: it does within about 30 on the real workloads' figures."""


def _excess_move(quiet: Sequence[Combined], loaded: Sequence[Combined], *, near: bool) -> float | None:
    """The root mean square move less what the standard errors explain, weighed by precision: of the figures
    within ``FLOOR_RANGE`` as log ratios (``near``), or of those beyond it as shares of their quiet log ratio.

    Each move's ``d² − v`` has the variance ``2 (v + s²)²``, ``s²`` the excess sought, so it is weighed by
    ``1 / (v + s²)²``, solved by iteration from the weights ``1 / v``: a noisy figure counts for less, and
    figures far more precise than the excess itself count alike. By ``1 / v`` alone, the most precise figure
    decided the term: sqlite3's share (0.04, its error 0.018) hid ``requests``' (0.15, its error 0.054) in
    a calibration of the real workloads: 0.052, and 0.086 weighed so, where the two moves' root mean square is
    0.11 (docs/accuracy.md)."""
    moves = _moves(quiet, loaded, near=near)
    if not moves:
        return None
    excess = max(0.0, math.fsum((d * d - v) / v for d, v in moves) / math.fsum(1 / v for _, v in moves))
    for _ in range(_ITERATIONS):
        weights = [1 / (v + excess) ** 2 for _, v in moves]
        total = math.fsum(w * (d * d - v) for w, (d, v) in zip(weights, moves, strict=True))
        following = max(0.0, total / math.fsum(weights))
        if abs(following - excess) <= 1e-12 * max(excess, 1e-12):
            break
        excess = following
    return math.sqrt(excess)


def _moves(quiet: Sequence[Combined], loaded: Sequence[Combined], *, near: bool) -> list[tuple[float, float]]:
    """Each figure of both runs within ``FLOOR_RANGE`` (``near``) or beyond it: its move and that move's variance,
    as log ratios or as shares of the quiet log ratio."""
    before = {(f.test, f.metric): f for f in quiet}
    moves = []
    for after in loaded:
        matched = before.get((after.test, after.metric))
        if matched is None or (abs(matched.estimate) <= FLOOR_RANGE) is not near:
            continue
        scale = 1.0 if near else abs(matched.estimate)
        variance = (after.standard_error**2 + matched.standard_error**2) / scale**2
        moves.append(((after.estimate - matched.estimate) / scale, max(variance, 1e-18)))
    return moves


def moved_figures(quiet: Sequence[Combined], loaded: Sequence[Combined], *, near: bool) -> int:
    """How many figures of both runs ``load_term`` (``near``) or ``load_share`` stands on."""
    return len(_moves(quiet, loaded, near=near))


def with_built_in(measured: float | None, figures: int, built_in: float) -> float:
    """A term measured on ``figures`` figures (a load term, or the spread's scale against the built-in one's 1),
    weighed against the built-in one: the mean of their squares, the built-in counted as ``BUILT_IN_TERM.df``
    figures (the workloads it was measured on, less one).

    Few figures say little of how far load moves a figure: on one runner, three calibrations of the same six
    real workloads measured the share as 0.110, 0.073 and 0.026 from the two of them above +13%, and the
    floor as 0.011, 0.010 and 0.020 from the four near 5%. Weighed so, two figures move the share a third of
    the way from the built-in one, twenty figures most of the way."""
    if measured is None or figures <= 0:
        return built_in
    prior = BUILT_IN_TERM.df
    return math.sqrt((prior * built_in**2 + figures * measured**2) / (prior + figures))


def widened(measured: float | None, figures: int, built_in: float) -> float:
    """The calibrated term: ``with_built_in``, where that is wider than the built-in one, else the built-in one.

    A calibration's processes run back to back within minutes, a gate's runs hours apart: on one runner a
    spread a calibration read at 0.70 of the built-in one held its quiet references in 36 of 50 runs where the
    built-in's held 44 of 50 in the same hour (docs/accuracy.md). Narrowing is left to a test's own processes."""
    return max(built_in, with_built_in(measured, figures, built_in))


@dataclass(frozen=True)
class RunFigures:
    """What one run gives a calibration: each test's combined figures, its processes, and the tests left out."""

    figures: tuple[Combined, ...]
    processes: dict[str, int]
    """Per test, the processes its figures stand on."""
    left_out: tuple[str, ...]
    """Per test left out, one line: the test and why."""


def run_figures(results: Sequence[TestResult]) -> RunFigures:
    """The combined figures of every test measured over two processes or more; the others, left out with why."""
    figures: list[Combined] = []
    processes: dict[str, int] = {}
    left_out: list[str] = []
    for result in results:
        measured = process_estimates(result)
        usable = [m for m in measured if len(m.estimates) >= 2]
        if not measured:
            left_out.append(f"{result.nodeid}: no time figure read as a ratio (no telemetry, or absolute budgets only)")
        elif not usable:
            left_out.append(
                f"{result.nodeid}: {result.processes} process(es) measured it, and a spread between processes needs "
                "2 or more (its marker's processes, or a max_time too short for them)"
            )
        else:
            figures += [combine(m) for m in usable]
            processes[result.nodeid] = max(len(m.estimates) for m in usable)
    return RunFigures(tuple(figures), processes, tuple(left_out))
