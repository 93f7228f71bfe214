"""Time mode spread over fresh processes (``processes`` > 1), for an interval that holds across processes.

A process's state (memory layout, the allocator's, hash seeds, what ran before) shifts its estimate
of the overhead by an offset of its own, often larger than that estimate's own interval: one
process cannot see it, and a second process would read a different overhead with an interval that
excludes the first. So here the test node is re-run in ``processes`` child pytest processes, one
after another (at once they would compete for the cores), each a fresh interpreter with its own
``PYTHONHASHSEED`` and an environment padded by a random number of bytes (which moves where the
stack starts, as Mytkowicz et al. varied the environment's size), each measuring with the time
engine for its share of ``max_time`` (:mod:`.replica_child`). The processes' estimates are combined
by a random-effects interval (``verdict.decide_across_processes``), wide when they disagree, looked
at after each process from the second on and widened for those looks (Bonferroni), as the engine's
looks are: a clear case stops after two processes (``stats.verdict.process_looks``).
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from pytest_otel_overhead.engine.children import (
    Child,
    child_environment,
    children_workspace,
    node_pytest_command,
    output_tail,
)
from pytest_otel_overhead.engine.combined import combined_metrics, median_finite
from pytest_otel_overhead.engine.looks import TIME_METRICS
from pytest_otel_overhead.engine.machine import is_busy_note
from pytest_otel_overhead.engine.replica_child import (
    PAD_ENV,
    REPLICA_ENV,
    ReplicaSpec,
    call_number,
)
from pytest_otel_overhead.engine.runner import Progress
from pytest_otel_overhead.results import MetricResult, PipelineHealth, Replica, StopReason, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import median
from pytest_otel_overhead.stats.verdict import (
    LookPlan,
    Verdict,
    process_look_plan,
    process_looks,
)
from pytest_otel_overhead.wire.transport import from_json

__all__ = [
    "ADDED_LOOKS",
    "ADDED_SHARE_S",
    "GRACE_S",
    "MAX_PROCESSES",
    "MIN_SHARE_S",
    "STARTUP_GUESS_S",
    "OpenGate",
    "add_processes",
    "kept_back_s",
    "measure_replicated",
]

MAX_PROCESSES = 8
"""With ``processes`` auto, at most this many processes measure a test: this one and seven added."""
ADDED_LOOKS = (2, 3, 4, 5, 6, 7, 8)
"""After how many processes (this one counted) the added ones are pooled and decided: after each, Bonferroni over
all seven looks (fewer, later looks let more false FAILs through where a workload's spread exceeds the prior's)."""
ADDED_SHARE_S = 2.5
"""Measuring time of each added process (timed pairs only): its own interval then about matches the
between-process term, past which a longer share narrows the pooled interval little and another process much."""
STARTUP_GUESS_S = 1.0
"""Start-up and collection time of a child until the first one has shown its own."""
MIN_SHARE_S = 0.5
"""A child starts only if at least this much of ``max_time`` is left for its measuring."""
GRACE_S = 10.0
"""A child still running this long after ``max_time`` is stopped, and the test fails."""
MAX_PAD = 4096
"""Environment padding is 0 to this many bytes, the range Mytkowicz et al. varied."""

_HELD_OPEN = "the between-process term keeps a budget open"
_BUSY = "the machine is busy: more processes confirm one process's verdict"

OpenGate = Callable[[TestResult], str | None]
"""Why another gate on a result wants it measured over more processes (a comparison with a saved run left
undecided, a run being saved over too few), or ``None``: with ``processes`` auto, processes are added for it as
for an undecided budget."""


def measure_replicated(
    item: pytest.Item, settings: MeasureSettings, *, label: str, progress: Progress | None = None, least: int = 1
) -> TestResult:
    """Measure the call ``label`` of ``item`` in ``settings.processes`` fresh processes and combine them; once
    decided, no more start, but at least ``least`` do (a gate's minimum, ``Measurement.min_processes``)."""
    planned = settings.processes or 1
    _refuse_nesting(label, f"processes={planned}")
    say = progress or (lambda message: None)
    plan = process_look_plan(planned, settings.confidence)
    looks = process_looks(planned)
    with children_workspace() as tmp:  # removed however the session ends, as the children end with it
        runner = _Processes(item, settings, label, tmp, planned=planned)
        stop_reason, looked = StopReason.ALL_PROCESSES, 0
        for index in range(planned):
            share = runner.next_share()
            if share < MIN_SHARE_S:
                stop_reason = StopReason.MAX_TIME
                break
            say(f"{label}: process {index + 1}/{planned} starts; it may measure for up to {share:.1f}s")
            runner.run(index, share)
            if len(runner.results) in looks:
                looked += 1
                metrics = combined_metrics(settings, runner.results, plan.per_look_confidence, plan.confidence)
                say(_progress_line(label, len(runner.results), planned, runner.elapsed(), metrics))
                if _decided(metrics) and len(runner.results) >= least:
                    stop_reason = StopReason.DECIDED
                    break
    if not runner.results:
        pytest.fail(
            f"otel-overhead: {label}: max_time {settings.max_time:g} s leaves no time to measure in "
            f"{planned} processes (each takes about {runner.startup_s():.1f} s to start and "
            f"{MIN_SHARE_S:g} s to measure); raise max_time or lower processes",
            pytrace=False,
        )
    metrics = combined_metrics(settings, runner.results, plan.per_look_confidence, plan.confidence)
    return _result(runner, metrics, max(looked, 1), stop_reason)


def add_processes(
    item: pytest.Item,
    settings: MeasureSettings,
    first: TestResult,
    *,
    label: str,
    progress: Progress | None = None,
    still_open: OpenGate | None = None,
) -> TestResult:
    """Fresh processes after ``first`` (this process's measurement), where the between-process term alone
    kept a budget open, or ``still_open`` says another gate on the result wants more: each runs timed
    pairs for ``ADDED_SHARE_S``, and after each the processes are pooled and decided (at ``ADDED_LOOKS``),
    until decided with no gate left open, ``MAX_PROCESSES`` or ``max_time``. ``first`` as it is when
    nothing holds it open."""
    why = _open(still_open, first)
    if first.stop_reason is StopReason.PROCESS_TERM:
        why = _HELD_OPEN if first.verdict is Verdict.INCONCLUSIVE else _BUSY
    if why is None:
        return first
    _refuse_nesting(label, "processes=auto")
    say = progress or (lambda message: None)
    plan = LookPlan(fractions=tuple(k / MAX_PROCESSES for k in ADDED_LOOKS), confidence=settings.confidence)
    left = settings.max_time - first.duration_s
    with children_workspace() as tmp:
        runner = _Processes(item, settings, label, tmp, planned=MAX_PROCESSES, timed_only=True, time_left=left)
        runner.keep(first, _own_replica(first))
        stop_reason = StopReason.MAX_TIME
        for index in range(1, MAX_PROCESSES):
            share = min(ADDED_SHARE_S, runner.time_left_for_one())
            if share < MIN_SHARE_S:
                break
            say(f"{label}: {why}; process {index + 1} starts ({share:.1f}s)")
            runner.run(index, share)
            if len(runner.results) in ADDED_LOOKS:
                metrics = _timed_metrics(settings, runner.results, plan)
                say(_progress_line(label, len(runner.results), MAX_PROCESSES, runner.elapsed(), metrics))
                done = _with_first(_result(runner, metrics, len(ADDED_LOOKS), stop_reason), first, runner)
                why = _HELD_OPEN if not _decided(metrics) else _open(still_open, done)
                if why is None:
                    stop_reason = StopReason.DECIDED
                    break
        else:
            stop_reason = StopReason.ALL_PROCESSES
    metrics = _timed_metrics(settings, runner.results, plan)
    return _with_first(_result(runner, metrics, len(ADDED_LOOKS), stop_reason), first, runner)


def kept_back_s(settings: MeasureSettings, processes: int) -> float:
    """What the first process leaves of ``max_time`` to the ``processes - 1`` that a gate wants after it
    whatever it shows (a saved run's minimum), at most half: a first process that ran to ``max_time``
    undecided left no time for them, and the run was saved over one process after all."""
    wanted = max(processes - 1, 0) * (ADDED_SHARE_S + STARTUP_GUESS_S)
    return min(wanted, settings.max_time / 2)


def _open(still_open: OpenGate | None, result: TestResult) -> str | None:
    return None if still_open is None else still_open(result)


def _timed_metrics(settings: MeasureSettings, results: Sequence[TestResult], plan: LookPlan) -> list[MetricResult]:
    """The metrics that every added process measures, pooled; the others are the first process's alone
    (:func:`_with_first`), decided there, and neither wait for processes that cannot measure them nor
    appear twice."""
    return combined_metrics(settings, results, plan.per_look_confidence, plan.confidence, only=TIME_METRICS)


def _with_first(result: TestResult, first: TestResult, runner: _Processes) -> TestResult:
    """The pooled result with what only the first process measured: its heap figure, pipeline health and
    probe stand for all (the added processes ran timed pairs only)."""
    heap = tuple(m for m in first.metrics if m.metric not in TIME_METRICS)
    return dataclasses.replace(
        result,
        metrics=(*result.metrics, *heap),
        health=first.health,
        duration_s=first.duration_s + runner.elapsed(),
        no_telemetry=first.no_telemetry,
        failed_exports=first.failed_exports,
    )


def _decided(metrics: Sequence[MetricResult]) -> bool:
    return all(m.verdict is not Verdict.INCONCLUSIVE for m in metrics if m.verdict is not None)


def _refuse_nesting(label: str, asked: str) -> None:
    if REPLICA_ENV in os.environ:  # a wrapper between parent and child, or a test measuring pytest itself
        pytest.fail(
            f"otel-overhead: {label}: {asked} in a process that a measurement over processes started; "
            "measure it with processes=1",
            pytrace=False,
        )


def _own_replica(result: TestResult) -> Replica:
    """This process as one of the processes: its pid and hash seed, no padding."""
    seed = os.environ.get("PYTHONHASHSEED", "")
    return _replica(os.getpid(), int(seed) if seed.isdigit() else 0, 0, result.duration_s, result)


@dataclass
class _Processes:
    """Starts the children one after another and keeps what each returned."""

    item: pytest.Item
    settings: MeasureSettings
    label: str
    out: Path
    planned: int
    timed_only: bool = False
    time_left: float | None = None
    """Seconds the children may take in all; ``settings.max_time`` when None."""
    started: float = field(default_factory=time.perf_counter)
    rng: random.Random = field(default_factory=random.SystemRandom)
    results: list[TestResult] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    children: int = 0
    """How many of ``results`` came from children (the first may be this process's own)."""

    @property
    def deadline(self) -> float:
        return self.started + (self.settings.max_time if self.time_left is None else self.time_left)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def keep(self, result: TestResult, replica: Replica) -> None:
        self.results.append(result)
        self.replicas.append(replica)

    def startup_s(self) -> float:
        """What a child spends besides measuring: the slowest seen so far, or a guess before the first."""
        pairs = list(zip(self.replicas, self.results, strict=True))[len(self.results) - self.children :]
        seen = [replica.duration_s - result.duration_s for replica, result in pairs]
        return max(seen) if seen else STARTUP_GUESS_S

    def next_share(self) -> float:
        """The next child's measuring time: an equal part of what is left, less its start-up."""
        left = self.planned - len(self.results)
        return (self.deadline - time.perf_counter()) / left - self.startup_s()

    def time_left_for_one(self) -> float:
        """What one more child could measure for before the deadline, less its start-up."""
        return self.deadline - time.perf_counter() - self.startup_s()

    def run(self, index: int, share: float) -> None:
        """Run child ``index`` to its end and keep its result; a child without one fails the test."""
        work = self.out / f"process-{index + 1:02d}"
        work.mkdir()
        spec = ReplicaSpec(
            settings=dataclasses.replace(self.settings, processes=1, max_time=share),
            call=call_number(self.label),
            result_path=work / "result.json",
            parent_pid=os.getpid(),
            timed_only=self.timed_only,
        )
        (work / "spec.json").write_text(spec.to_json(), encoding="utf-8")
        hash_seed, pad = self.rng.randrange(1, 2**32), self.rng.randrange(MAX_PAD + 1)
        began = time.perf_counter()
        child = self._start(work, hash_seed, pad)
        try:
            child.process.wait(timeout=max(0.0, self.deadline - time.perf_counter()) + GRACE_S)
        except subprocess.TimeoutExpired:
            child.stop()
            self._fail(index, child, f"was still running {GRACE_S:g} s after max_time")
        finally:
            child.stop()
        if not spec.result_path.exists():
            self._fail(index, child, f"ended without a result (exit status {child.process.returncode})")
        result = from_json(TestResult, spec.result_path.read_text(encoding="utf-8"))
        self.children += 1
        self.keep(result, _replica(child.process.pid, hash_seed, pad, time.perf_counter() - began, result))

    def _start(self, work: Path, hash_seed: int, pad: int) -> Child:
        # The environment is part of the layout: each child gets a hash seed and a padding of its own.
        env = child_environment()
        env.update({REPLICA_ENV: str(work / "spec.json"), "PYTHONHASHSEED": str(hash_seed), PAD_ENV: "x" * pad})
        return Child.start(
            [*node_pytest_command(self.item, self.label, work), "--otel-overhead"],
            cwd=self.item.config.invocation_params.dir,
            env=env,
            log=work / "output.log",
        )

    def _fail(self, index: int, child: Child, what: str) -> NoReturn:
        pytest.fail(
            f"otel-overhead: {self.label}: process {index + 1} of {self.planned} (pid {child.process.pid}) "
            f"{what}; its output ends: {output_tail(child.output())}",
            pytrace=False,
        )


def _replica(pid: int, hash_seed: int, pad: int, duration_s: float, result: TestResult) -> Replica:
    return Replica(
        pid=pid,
        hash_seed=hash_seed,
        env_pad=pad,
        pairs=result.pairs,
        duration_s=duration_s,
        verdict=result.verdict,
        overheads=tuple((m.metric, m.overhead, m.ci_low, m.ci_high) for m in result.metrics),
    )


def _progress_line(label: str, done: int, planned: int, elapsed: float, metrics: Sequence[MetricResult]) -> str:
    parts = [
        f"{m.label} {m.format_overhead(m.overhead)} {m.format_interval()} {m.verdict.value}"
        for m in metrics
        if m.verdict is not None
    ]
    return f"{label} processes {done}/{planned}, {elapsed:.1f}s: " + "; ".join(parts)


def _worst_health(results: Sequence[TestResult]) -> PipelineHealth | None:
    """The pipeline health of the process that lost the most spans (the first, on a tie)."""
    healths = [result.health for result in results if result.health is not None]
    return max(healths, key=lambda health: health.dropped) if healths else None


def _result(runner: _Processes, metrics: Sequence[MetricResult], looks: int, stop_reason: StopReason) -> TestResult:
    results = runner.results
    return TestResult(
        nodeid=runner.label,
        settings=runner.settings,
        metrics=tuple(metrics),
        health=_worst_health(results),
        process=results[0].process,
        pairs=sum(result.pairs for result in results),
        calls_per_block=round(median([result.calls_per_block for result in results])),
        looks=looks,
        duration_s=runner.elapsed(),
        stop_reason=stop_reason,
        throughput_baseline=median_finite([result.throughput_baseline for result in results]),
        throughput_instrumented=median_finite([result.throughput_instrumented for result in results]),
        samples=tuple(sample for result in results for sample in result.samples),
        processes=len(results),
        replicas=tuple(runner.replicas),
        # Every process ran the same code: if one saw no telemetry, none did.
        no_telemetry=next((result.no_telemetry for result in results if result.no_telemetry is not None), None),
        notes=_notes(results),
    )


def _notes(results: Sequence[TestResult]) -> tuple[str, ...]:
    """The processes' notes, each once; of the busy-machine notes, which differ only in their shares, the first."""
    notes = dict.fromkeys(note for result in results for note in result.notes)
    busy = [note for note in notes if is_busy_note(note)]
    return tuple(note for note in notes if note not in busy[1:])
