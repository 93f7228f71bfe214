"""What one harness run measures, and in which order.

A run is a list of jobs, shuffled once with the run's seed so that drift and the machine's load
over the run hit every workload and every method alike:

- ``plugin``: one pytest process under ``--otel-overhead`` measuring every selected workload, its
  node ids given on the command line in a shuffled order, saving the run for the A/A comparison;
- ``reference``: one fresh process of the plain interleaved A/B for one workload;
- ``reference_frozen``: the same with the heap frozen after warm-up, the plugin's GC regime;
- ``pyperf``: one round of pyperf for one workload (a baseline and an instrumented benchmark, then
  ``compare_to``);
- ``benchmark``: one round of pytest-benchmark's two-run gate over every selected workload;
- ``instructions``: one pytest process in instructions mode (optional, needs valgrind).

After the jobs, each saved plugin run is compared with the next one (A/A: nothing changed).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

WORKLOADS = ("flask", "fastapi", "requests", "sqlite3", "manual")
"""The workloads of ``real_workloads/apps.py``; the test of each is ``test_real.py::test_<name>``."""

COMPARE_FAIL = "cpu:+1pp"
"""The A/A criterion: two saved runs of unchanged code must never say REGRESSED under it."""


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

    def describe(self) -> str:
        return f"{self.kind} {self.index}" + (f" ({self.workload})" if self.workload else "")


def schedule(plan: Plan) -> list[Job]:
    """Every job of the plan, in a random order fixed by the plan's seed."""
    counts = plan.counts
    jobs = [Job("plugin", i) for i in range(counts.runs)]
    jobs += [Job("benchmark", i) for i in range(counts.benchmark_rounds)]
    for workload in plan.workloads:
        jobs += [Job("reference", i, workload) for i in range(counts.reference_processes)]
        jobs += [Job("reference_frozen", i, workload) for i in range(counts.frozen_reference_processes)]
        jobs += [Job("pyperf", i, workload) for i in range(counts.pyperf_rounds)]
    if plan.instructions:
        jobs.append(Job("instructions", 0))
    random.Random(plan.seed).shuffle(jobs)
    return jobs


def shuffled_workloads(plan: Plan, job: Job) -> list[str]:
    """The workloads of a plugin or benchmark job in their own shuffled order (fixed by seed and job)."""
    order = list(plan.workloads)
    random.Random(f"{plan.seed}-{job.kind}-{job.index}").shuffle(order)
    return order
