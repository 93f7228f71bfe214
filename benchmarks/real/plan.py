"""What one harness run measures, and in which order.

A run is a list of jobs, shuffled once with the run's seed so that drift and the machine's load
over the run hit every workload and every method alike:

- ``plugin``: one pytest process under ``--otel-overhead`` measuring every selected workload, its
  node ids given on the command line in a shuffled order, saving the run for the A/A comparison;
  in a near-budget run (``--budget-offsets``), one per offset and run, each test held to the budget
  placed at its workload's reference plus that offset;
- ``reference``: one fresh process of the plain interleaved A/B for one workload;
- ``reference_frozen``: the same with the heap frozen after warm-up, the plugin's GC regime;
- ``pyperf``: one round of pyperf for one workload (a baseline and an instrumented benchmark, then
  ``compare_to``);
- ``benchmark``: one round of pytest-benchmark's two-run gate over every selected workload;
- ``instructions``: one pytest process in instructions mode (optional, needs valgrind);
- ``regression``: one round of a regression campaign (``regression.py``), the only jobs of such a run.

A near-budget run places its budgets around the references, so its own reference jobs (for the
workloads whose reference no earlier results file gives) run first, shuffled among themselves, and
the other jobs after them, shuffled too. After the jobs, each saved plugin run is compared with the
next one (A/A: nothing changed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.real.budgets import OffsetScale, PlacedBudget

WORKLOADS = ("flask", "fastapi", "requests", "sqlite3", "manual", "checkout")
"""The workloads of ``real_workloads/apps.py``; the test of each is ``test_real.py::test_<name>``."""

COMPARE_FAIL = "cpu:+1pp"
"""The A/A criterion: two saved runs of unchanged code must never say REGRESSED under it."""

EXTRA_SPANS = {"manual": 2, "checkout": 4, "flask": 8, "fastapi": 10}
"""The regression variant's child spans per call (``$REAL_EXTRA_SPANS`` of ``real_workloads/apps.py``), by workload:
each raises its overhead by about 5 points near 5% (2026-12-06, ``reference.py --frozen-heap``, medians of 2 to 4
processes of 3 s, 1-minute load 3 to 4: manual +7.5% → +12%, checkout +4.5% → +10%, flask +5.3% → +9.7%, fastapi
+5.9% → +10.3%)."""
REGRESSION_WORKLOADS = ("manual", "checkout", "flask")
"""The workloads of a regression campaign unless ``--workloads`` says otherwise: those near 5% by themselves."""


@dataclass(frozen=True)
class Counts:
    """How much of each method a run holds."""

    runs: int
    reference_processes: int
    reference_seconds: float
    pyperf_rounds: int
    benchmark_rounds: int
    frozen_reference_processes: int = 0


FULL = Counts(
    runs=20,
    reference_processes=30,
    reference_seconds=10.0,
    pyperf_rounds=3,
    benchmark_rounds=10,
    frozen_reference_processes=10,
)
QUICK = Counts(
    runs=2,
    reference_processes=2,
    reference_seconds=1.0,
    pyperf_rounds=1,
    benchmark_rounds=1,
    frozen_reference_processes=1,
)
QUICK_MAX_TIME = 10.0
# A smoke run asks pyperf and pytest-benchmark for a few values only: it proves the plumbing, not the figures.
QUICK_PYPERF_ARGS = ("--processes", "2", "--values", "3", "--warmups", "1", "--min-time", "0.05")
QUICK_BENCHMARK_ARGS = ("--benchmark-max-time=0.2", "--benchmark-min-rounds=5")


@dataclass(frozen=True)
class Plan:
    workloads: tuple[str, ...]
    counts: Counts
    block_ms: float
    load: int
    """Busy processes kept running during the whole run (0: quiet)."""
    max_time: float | None
    """``--otel-overhead-max-time`` for the plugin runs; None keeps the plugin's default."""
    budget: str | None
    """``--otel-overhead-budget``; None keeps the plugin's default (5%)."""
    instructions: bool
    seed: int
    quick: bool = False
    deadline_min: float | None = None
    """Start no new job after this many minutes (jobs run in random order, so a run stopped there
    holds a random subset of the plan)."""
    freeze: bool = False
    """Run the children on a copy of the package taken at the start, so edits cannot mix engines."""
    processes: int | None = None
    """``--otel-overhead-processes`` for the plugin runs; None keeps the plugin's default (1)."""
    confidence: str | None = None
    """``--otel-overhead-confidence`` for the plugin runs; None keeps the plugin's default (95%)."""
    calibration: str | None = None
    """``--otel-overhead-calibration`` for the plugin runs (an absolute path); None keeps the built-in terms."""
    budget_offsets: tuple[float, ...] = ()
    """Near the budget: each plugin run is repeated at each offset (points at 5%) from every workload's
    reference; empty for the plain run at one budget."""
    offset_scale: OffsetScale = OffsetScale.RATIO
    reference_from: tuple[str, ...] = ()
    """Earlier results files whose references place the budgets (``--reference-from``)."""
    referenced: tuple[str, ...] = ()
    """The workloads those files give a reference for: the run measures none of its own for them."""
    budgets: tuple[PlacedBudget, ...] = ()
    """The budgets placed once the references are known (filled in between the two phases of the run)."""
    extra_spans: tuple[tuple[str, int], ...] = ()
    """A regression campaign (``regression.py``): the child spans its "after" code adds per call, by workload;
    empty for the other runs. Each of its ``runs`` is one round: before, after and a second before."""

    @property
    def near_budget(self) -> bool:
        return bool(self.budget_offsets)

    @property
    def regression(self) -> bool:
        return bool(self.extra_spans)

    @property
    def pyperf_args(self) -> tuple[str, ...]:
        return QUICK_PYPERF_ARGS if self.quick else ()

    @property
    def benchmark_args(self) -> tuple[str, ...]:
        return QUICK_BENCHMARK_ARGS if self.quick else ()

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pyperf_args": list(self.pyperf_args), "benchmark_args": list(self.benchmark_args)}


@dataclass(frozen=True)
class Job:
    kind: str
    index: int
    workload: str | None = None
    """The workload of a ``reference`` or ``pyperf`` job; the others measure every workload."""
    offset: float | None = None
    """The budget offset of a near-budget plugin job (points at 5%); None at the plain budget."""

    def describe(self) -> str:
        detail = self.workload or (f"offset {self.offset:+g}" if self.offset is not None else "")
        return f"{self.kind} {self.index}" + (f" ({detail})" if detail else "")


REFERENCE_JOBS = ("reference", "reference_frozen")


def plugin_jobs(plan: Plan) -> list[Job]:
    """One per run, or near the budget one per run and offset (numbered across both, for the saved runs)."""
    runs = plan.counts.runs
    if not plan.near_budget:
        return [Job("plugin", i) for i in range(runs)]
    offsets = plan.budget_offsets
    return [Job("plugin", i * len(offsets) + k, offset=o) for i in range(runs) for k, o in enumerate(offsets)]


def schedule(plan: Plan) -> list[Job]:
    """Every job of the plan, in a random order fixed by the plan's seed (near the budget: the
    reference jobs first, see ``phases``)."""
    counts = plan.counts
    if plan.regression:  # rounds in order: each compares within itself, nothing to shuffle
        return [Job("regression", i) for i in range(counts.runs)]
    jobs = plugin_jobs(plan)
    jobs += [Job("benchmark", i) for i in range(counts.benchmark_rounds)]
    for workload in plan.workloads:
        if workload not in plan.referenced:
            jobs += [Job("reference", i, workload) for i in range(counts.reference_processes)]
            jobs += [Job("reference_frozen", i, workload) for i in range(counts.frozen_reference_processes)]
        jobs += [Job("pyperf", i, workload) for i in range(counts.pyperf_rounds)]
    if plan.instructions:
        jobs.append(Job("instructions", 0))
    random.Random(plan.seed).shuffle(jobs)
    if plan.near_budget:
        first, then = phases(plan, jobs)
        jobs = [*first, *then]
    return jobs


def phases(plan: Plan, jobs: Sequence[Job]) -> tuple[list[Job], list[Job]]:
    """The jobs to run before the budgets can be placed (near the budget: the references), and the rest;
    each part keeps its order."""
    if not plan.near_budget:
        return [], list(jobs)
    return [j for j in jobs if j.kind in REFERENCE_JOBS], [j for j in jobs if j.kind not in REFERENCE_JOBS]


def shuffled_workloads(plan: Plan, job: Job) -> list[str]:
    """The workloads of a plugin or benchmark job in their own shuffled order (fixed by seed and job)."""
    order = list(plan.workloads)
    random.Random(f"{plan.seed}-{job.kind}-{job.index}").shuffle(order)
    return order
