"""The measuring engine, in process, with a private ArmRouter that is never installed globally.

Two kinds of test:

* real time, on workloads whose instrumented arm differs from the baseline by far more than the
  budget (or not at all), so the verdict cannot depend on how busy the machine is;
* simulated time: the engine's clocks are replaced by a virtual clock that only the workload
  advances, by a cost drawn from a seeded generator. The engine then runs deterministically, so
  its statistical behaviour (A/A, known injected effects, noise) can be checked exactly.
"""

from __future__ import annotations

import gc
import json
import math
import random
import re
import threading
import tracemalloc
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import trace

from pytest_otel_overhead.engine import arms, looks, runner, surroundings, timed
from pytest_otel_overhead.engine import diagnostic as diagnostic_phase
from pytest_otel_overhead.engine import heap as heap_phase
from pytest_otel_overhead.engine.probes import heap_round
from pytest_otel_overhead.engine.repeatable import RepetitionFailed
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.reports.terminal import summary_lines
from pytest_otel_overhead.results import StopReason, TestResult
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import MAX_BATCHES
from pytest_otel_overhead.stats.process_term import TermSource
from pytest_otel_overhead.stats.verdict import LookPlan, Verdict


def settings_for(**values: object) -> MeasureSettings:
    return resolve([Layer.parse(values, lambda key: "marker on tests/test_runner.py")])


@dataclass(frozen=True)
class InterpreterState:
    gc_enabled: bool
    gc_threshold: tuple[int, ...]
    gc_freeze_count: int
    tracemalloc_tracing: bool
    threads: int
    global_provider: object


def interpreter_state() -> InterpreterState:
    return InterpreterState(
        gc_enabled=gc.isenabled(),
        gc_threshold=gc.get_threshold(),
        gc_freeze_count=gc.get_freeze_count(),
        tracemalloc_tracing=tracemalloc.is_tracing(),
        threads=threading.active_count(),
        global_provider=trace.get_tracer_provider(),
    )


@pytest.fixture
def router() -> ArmRouter:
    return ArmRouter()


@pytest.fixture
def unchanged(router: ArmRouter) -> Iterator[None]:
    """The test must leave the interpreter and the router as it found them."""
    before = interpreter_state()
    yield
    assert interpreter_state() == before
    assert router.idle


def busy(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


# --- real time ---------------------------------------------------------------------------------


def test_an_instrumented_arm_doing_ten_times_the_work_fails(router: ArmRouter, unchanged: None) -> None:
    tracer = router.get_tracer("workload")

    def workload() -> None:
        with tracer.start_as_current_span("request") as span:
            busy(300)
            if span.is_recording():
                for _ in range(10):
                    busy(300)

    result = runner.measure(workload, settings_for(budget="5%", max_time=10), router, nodeid="ten-times")
    cpu = result.metric("cpu")
    assert cpu is not None
    assert result.verdict is Verdict.FAIL
    assert cpu.verdict is Verdict.FAIL
    assert cpu.overhead > 3.0  # truly about +1000%
    assert cpu.ci_low > 0.05
    assert result.stop_reason is StopReason.DECIDED
    assert result.health is not None
    assert result.health.per_call(result.health.started) == 1.0
    assert result.health.dropped == 0


def test_a_workload_without_spans_never_fails(router: ArmRouter, unchanged: None) -> None:
    result = runner.measure(lambda: busy(300), settings_for(budget="50%", max_time=3), router)
    cpu = result.metric("cpu")
    assert cpu is not None
    assert result.verdict is not Verdict.FAIL
    assert abs(cpu.overhead) < 0.5  # truly about 0
    assert result.health is not None
    assert result.health.started == 0


def test_the_result_describes_the_whole_measurement(router: ArmRouter, unchanged: None) -> None:
    lines: list[str] = []
    tracer = router.get_tracer("workload")

    def workload() -> None:
        with tracer.start_as_current_span("a"), tracer.start_as_current_span("b"):
            busy(100)

    settings = settings_for(budget="100000%", max_time=2)
    result = runner.measure(workload, settings, router, nodeid="t::described", progress=lines.append)
    assert [m.metric for m in result.metrics] == [*looks.TIME_METRICS, "heap"]
    assert result.settings is settings
    assert result.nodeid == "t::described"
    assert result.pairs == len(result.samples) >= 2
    assert result.calls_per_block >= 1
    assert 1 <= result.looks <= len(LookPlan(0.95).fractions)
    assert 0 < result.duration_s < 30
    assert result.health is not None
    assert dict(result.health.by_name) == {"a": result.health.calls, "b": result.health.calls}
    assert result.process is not None
    assert len(lines) == result.looks
    assert lines[0].startswith(f"t::described look 1/{len(LookPlan(0.95).fractions)}: ")
    assert re.search(r": CPU [+-][\d.]+% \[[+-][\d.]+%, ([+-][\d.]+%|∞)\] budget 100000\.0%: [A-Z]+$", lines[-1])


def test_the_engine_leaves_an_existing_freeze_alone(router: ArmRouter) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        runner.measure(lambda: busy(100), settings_for(budget="100000%", max_time=1), router)
        # Frozen objects that die meanwhile leave the count (a few may, on any version), so
        # "alone" reads: not unfrozen (0), nothing more frozen (above the count before).
        assert 0 < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_the_engine_leaves_tracemalloc_running_if_it_was(router: ArmRouter) -> None:
    tracemalloc.start()
    try:
        runner.measure(lambda: busy(100), settings_for(budget="100000%", max_time=1), router)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_the_engine_does_not_enable_a_disabled_collector(router: ArmRouter) -> None:
    gc.disable()
    try:
        runner.measure(lambda: busy(100), settings_for(budget="100000%", max_time=1), router)
        assert not gc.isenabled()
    finally:
        gc.enable()


class WorkloadError(Exception):
    pass


ENGINE_PHASES = {"warmup": "warm-up", "timed": "timed pairs", "diagnostic": "diagnostic round", "heap": "heap rounds"}


@pytest.mark.parametrize("phase", ["warmup", "timed", "diagnostic", "heap"])
def test_a_workload_raising_in_any_phase_is_named_with_its_error_chained_and_leaves_everything_as_found(
    router: ArmRouter, unchanged: None, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    current = {"phase": "warmup"}
    block, diagnostic = arms.Arms.block, diagnostic_phase.diagnostic_round

    def observed_block(self: arms.Arms, instrumented: bool, calls: int, collect: Callable[[], object]) -> object:
        if calls > 1:
            current["phase"] = "timed"
        return block(self, instrumented, calls, collect)

    def observed_diagnostic(*args: object, **kwargs: object) -> object:
        current["phase"] = "diagnostic"
        return diagnostic(*args, **kwargs)  # type: ignore[arg-type]

    def observed_heap_round(*args: object, **kwargs: object) -> object:
        current["phase"] = "heap"
        return heap_round(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(arms.Arms, "block", observed_block)
    monkeypatch.setattr(runner, "diagnostic_round", observed_diagnostic)
    monkeypatch.setattr(heap_phase, "heap_round", observed_heap_round)
    tracer = router.get_tracer("workload")

    def workload() -> None:
        with tracer.start_as_current_span("work"):
            busy(50)
            if current["phase"] == phase:
                raise WorkloadError(f"raised in {phase}")

    # A heap budget gets its first heap pair whatever the time left, so the heap phase always comes.
    with pytest.raises(RepetitionFailed, match="raised on a measured repetition") as failed:
        runner.measure(workload, settings_for(budget="100000%", heap="100000%", max_time=2), router)
    assert failed.value.phase == ENGINE_PHASES[phase]
    assert f"measured repetition: {ENGINE_PHASES[phase]}, " in str(failed.value)
    assert isinstance(failed.value.__cause__, WorkloadError)
    assert str(failed.value.__cause__) == f"raised in {phase}"


# --- simulated time ----------------------------------------------------------------------------


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def read(self) -> float:
        return self.now


@dataclass
class Simulation:
    """A workload of ``cost`` seconds per call, ``1 + effect`` times that when its span records,
    times ``exp(noise)`` with normal noise of ``sigma`` per call (or heavy-tailed)."""

    effect: float
    sigma: float
    seed: int
    cost: float = 0.02
    heavy_tails: bool = False
    effect_absolute: float = 0.0
    tracemalloc_slowdown: float = 1.0

    def run(
        self,
        settings: MeasureSettings,
        *,
        progress: Callable[[str], None] | None = None,
        share: runner.Share | None = None,
    ) -> TestResult:
        clock = VirtualClock()
        fake_time = types.SimpleNamespace(perf_counter=clock.read, process_time=clock.read)
        router = ArmRouter()
        tracer = router.get_tracer("simulated")
        noise = random.Random(self.seed)

        def workload() -> None:
            with tracer.start_as_current_span("call") as span:
                instrumented = span.is_recording()
            draw = noise.gauss(0.0, 1.0)
            if self.heavy_tails:
                draw /= max(0.1, abs(noise.gauss(0.0, 1.0)))
            cost = self.cost * math.exp(self.sigma * draw)
            if instrumented:
                cost = cost * (1 + self.effect) + self.effect_absolute
            if tracemalloc.is_tracing():
                cost *= self.tracemalloc_slowdown
            clock.now += cost

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(runner, "time", fake_time)
            # A simulated machine is a quiet one: the real machine's load would add its term to the
            # intervals, and the verdicts would depend on what else runs beside the suite.
            patch.setattr(surroundings, "was_busy", lambda start, end: False)
            patch.setattr(surroundings, "busy_note", lambda start, end: None)
            result = runner.measure(
                workload, settings, router, rng=random.Random(self.seed), progress=progress, share=share
            )
        assert router.idle
        return result


SIMULATED = {"max_time": 60}


def test_simulated_time_runs_deterministically() -> None:
    settings = settings_for(budget="5%", max_time=10)
    first = Simulation(effect=0.03, sigma=0.2, seed=11).run(settings)
    second = Simulation(effect=0.03, sigma=0.2, seed=11).run(settings)
    assert first.samples == second.samples
    assert first.verdict is second.verdict


@pytest.mark.parametrize("heavy_tails", [False, True])
def test_simulated_a_a_never_fails(heavy_tails: bool) -> None:
    settings = settings_for(budget="5%", **SIMULATED)
    verdicts = [
        Simulation(effect=0.0, sigma=0.05, seed=seed, heavy_tails=heavy_tails).run(settings).verdict
        for seed in range(8)
    ]
    assert Verdict.FAIL not in verdicts
    assert verdicts.count(Verdict.PASS) >= 6


def test_simulated_large_effect_fails_with_an_accurate_estimate() -> None:
    for seed in range(4):
        result = Simulation(effect=1.0, sigma=0.1, seed=seed).run(settings_for(budget="5%", **SIMULATED))
        cpu = result.metric("cpu")
        assert cpu is not None
        assert result.verdict is Verdict.FAIL
        assert cpu.ci_low <= 1.0 <= cpu.ci_high
        assert cpu.overhead == pytest.approx(1.0, abs=0.1)


def test_simulated_tiny_effect_passes() -> None:
    for seed in range(4):
        result = Simulation(effect=0.001, sigma=0.01, seed=seed).run(settings_for(budget="5%", **SIMULATED))
        assert result.verdict is Verdict.PASS
        assert result.stop_reason is StopReason.DECIDED


def test_simulated_effect_is_found_in_wall_time_and_latency_budgets_too() -> None:
    settings = settings_for(budget="5%", wall="5%", latency_p95="5%", max_time=20)
    result = Simulation(effect=1.0, sigma=0.05, seed=5, cost=0.001).run(settings)
    for name in ("cpu", "wall", "latency_p95"):
        metric = result.metric(name)
        assert metric is not None
        assert metric.verdict is Verdict.FAIL, name
        assert metric.overhead == pytest.approx(1.0, abs=0.15), name


def test_simulated_latency_budget_on_a_slow_workload_is_decided() -> None:
    settings = settings_for(budget="5%", latency_p95="5%", **SIMULATED)
    result = Simulation(effect=1.0, sigma=0.05, seed=5, cost=0.02).run(settings)
    latency = result.metric("latency_p95")
    assert latency is not None
    assert latency.verdict is Verdict.FAIL


def test_simulated_absolute_budget() -> None:
    settings = settings_for(budget="5ms", **SIMULATED)
    failing = Simulation(effect=0.0, effect_absolute=0.010, sigma=0.02, seed=1).run(settings)
    cpu = failing.metric("cpu")
    assert cpu is not None
    assert cpu.kind == "absolute"
    assert failing.verdict is Verdict.FAIL
    assert cpu.overhead == pytest.approx(0.010, rel=0.2)
    # The term one process counts, in seconds: the prior's share of the baseline arm's time per call.
    share = math.expm1(settings.process_term.spread(0.0)) * cpu.baseline
    assert cpu.between_process_spread == pytest.approx(share) and cpu.between_process_source is TermSource.BUILT_IN
    passing = Simulation(effect=0.0, effect_absolute=20e-6, sigma=0.02, seed=1).run(settings)
    assert passing.verdict is Verdict.PASS


def test_simulated_noise_too_large_for_the_budget_is_reported_not_guessed() -> None:
    result = Simulation(effect=0.0, sigma=0.5, seed=2).run(settings_for(budget="5%", max_time=10))
    cpu = result.metric("cpu")
    assert cpu is not None
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.stop_reason is StopReason.MAX_TIME
    assert cpu.note is not None and "too noisy to decide a 5.0% budget here: pair-to-pair spread" in cpu.note
    spread = float(cpu.note.split("pair-to-pair spread ")[1].split("%")[0])
    assert 40 < spread < 120  # two calls with 50% noise each: about 70% per pair
    assert cpu.resolution is not None and cpu.resolution > 0.05


def test_a_max_time_the_fixed_phases_use_up_is_said_as_such_not_as_noise() -> None:
    # Quiet pairs (1% noise) and 2 of them: the interval is unbounded because max_time left the pairs no time.
    result = Simulation(effect=0.0, sigma=0.01, seed=2, cost=40e-6).run(settings_for(budget="100000%", max_time=0.5))
    cpu = result.metric("cpu")
    assert cpu is not None and cpu.verdict is Verdict.INCONCLUSIVE and result.pairs <= 3
    assert cpu.note is not None and "too noisy" not in cpu.note
    assert cpu.note.startswith(f"undecided after {result.pairs} pairs, not for noise: max_time 0.5s is used up by")
    at_least = float(cpu.note.split("raise max_time to at least ")[1].removesuffix(" s"))
    assert 1.5 <= at_least <= 10
    # With that much time the pairs get theirs, and decide.
    again = Simulation(effect=0.0, sigma=0.01, seed=2, cost=40e-6).run(
        settings_for(budget="100000%", max_time=at_least)
    )
    assert again.verdict is Verdict.PASS


def test_simulated_progress_reports_each_look() -> None:
    lines: list[str] = []
    result = Simulation(effect=0.3, sigma=0.3, seed=4).run(
        settings_for(budget="5%", **SIMULATED), progress=lines.append
    )
    assert len(lines) == result.looks
    for number, line in enumerate(lines, start=1):
        assert f" look {number}/6: " in line


def test_simulated_false_failures_stay_rare_over_many_runs() -> None:
    """A/A against a budget of 0.01%: every FAIL is false; sequential looks must keep them near 2.5%."""
    settings = settings_for(budget="0.01%", max_time=8)
    verdicts = [Simulation(effect=0.0, sigma=0.2, seed=seed).run(settings).verdict for seed in range(30)]
    assert verdicts.count(Verdict.FAIL) <= 3


def test_simulated_large_effect_is_not_abandoned_as_too_noisy() -> None:
    settings = settings_for(budget="5%", **SIMULATED)
    verdicts = [Simulation(effect=0.3, sigma=0.7, seed=seed).run(settings).verdict for seed in range(10)]
    assert verdicts.count(Verdict.FAIL) >= 9


def test_simulated_slow_workload_with_a_huge_effect_fails() -> None:
    verdicts = [
        Simulation(effect=3.0, sigma=0.1, seed=seed, cost=0.05).run(settings_for(budget="5%", max_time=10)).verdict
        for seed in range(4)
    ]
    assert verdicts == [Verdict.FAIL] * 4


def undecidable_run(tracemalloc_slowdown: float) -> TestResult:
    """An effect right at the budget with little noise: no look decides and none gives up, so it runs to max_time."""
    simulation = Simulation(effect=0.05, sigma=0.02, seed=3, cost=0.001, tracemalloc_slowdown=tracemalloc_slowdown)
    return simulation.run(settings_for(budget="5%", max_time=3))


def test_simulated_run_keeps_to_max_time_when_tracemalloc_costs_what_the_engine_reserves() -> None:
    result = undecidable_run(tracemalloc_slowdown=heap_phase.TRACEMALLOC_SLOWDOWN)
    assert result.stop_reason is StopReason.MAX_TIME
    assert result.duration_s <= 3.0


def test_simulated_run_keeps_to_max_time_when_tracemalloc_slows_the_workload_twenty_times() -> None:
    result = undecidable_run(tracemalloc_slowdown=20.0)
    assert result.stop_reason is StopReason.MAX_TIME
    assert result.duration_s <= 3.0 * 1.05


def test_simulated_run_ends_early_by_the_time_kept_back_for_processes_after_it() -> None:
    settings = settings_for(budget="5%", max_time=6)
    whole = Simulation(effect=0.05, sigma=0.02, seed=3, cost=0.001).run(settings)
    early = Simulation(effect=0.05, sigma=0.02, seed=3, cost=0.001).run(settings, share=runner.Share(keep_back_s=2.5))
    assert whole.stop_reason is early.stop_reason is StopReason.MAX_TIME
    assert whole.duration_s > 6 - 2.5 >= early.duration_s
    assert whole.duration_s - early.duration_s == pytest.approx(2.5, abs=0.1)


def test_simulated_heap_budget_catches_memory_the_instrumented_arm_allocates() -> None:
    router_holder: dict[str, ArmRouter] = {}

    class HeapSimulation(Simulation):
        def run(self, settings: MeasureSettings, *, progress: Callable[[str], None] | None = None) -> TestResult:
            clock = VirtualClock()
            router = router_holder.setdefault("router", ArmRouter())
            tracer = router.get_tracer("heap")

            def workload() -> None:
                with tracer.start_as_current_span("call") as span:
                    if span.is_recording():
                        buffer = bytearray(2 * 1024 * 1024)
                        del buffer
                clock.now += self.cost

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(runner, "time", types.SimpleNamespace(perf_counter=clock.read, process_time=clock.read))
                return runner.measure(workload, settings, router, rng=random.Random(self.seed))

    result = HeapSimulation(effect=0.0, sigma=0.0, seed=1).run(
        settings_for(budget="100000%", heap="256KiB", max_time=5)
    )
    heap = result.metric("heap")
    assert heap is not None
    assert heap.verdict is Verdict.FAIL
    assert heap.overhead >= 2 * 1024 * 1024
    assert heap.n == heap_phase.HEAP_PAIRS_BUDGETED


def block(cpu: float, wall: float) -> arms.Block:
    return arms.Block(cpu=cpu, wall=wall, latencies=(wall,))


def test_many_pairs_are_summarized_in_batches_of_consecutive_pairs() -> None:
    # Pair k costs k in the baseline and 2k instrumented: every batch's ratio of means is 2.
    pairs = [arms.Pair(block(k, k), block(2 * k, 2 * k)) for k in range(1, 1001)]
    values = looks.paired(pairs, "cpu", "relative")
    assert len(values) == MAX_BATCHES
    assert values == pytest.approx([math.log(2)] * MAX_BATCHES)
    assert looks.paired(pairs[:7], "cpu", "absolute") == pytest.approx([float(k) for k in range(1, 8)])


def test_blocks_are_sized_from_cpu_time_so_load_does_not_shrink_them() -> None:
    # Other jobs stretch wall time to three times the CPU time: the block size follows the CPU time.
    loaded = [block(0.001, 0.003)] * 6
    assert timed.calibration_time(loaded) == pytest.approx(0.001)
    # A workload that mostly waits still gets blocks sized from its wall time, within a factor four.
    waiting = [block(0.0001, 0.01)] * 6
    assert timed.calibration_time(waiting) == pytest.approx(0.0025)


def test_a_workload_too_slow_for_heap_rounds_in_max_time_reports_no_heap_and_keeps_to_the_cap() -> None:
    simulation = Simulation(effect=3.0, sigma=0.1, seed=1, cost=0.05, tracemalloc_slowdown=20.0)
    result = simulation.run(settings_for(budget="5%", max_time=10))
    assert result.verdict is Verdict.FAIL
    assert result.duration_s <= 10.0
    heap = result.metric("heap")
    assert heap is not None and heap.n == 0 and heap.verdict is None
    assert heap.note is not None and "not measured" in heap.note
    assert any("not measured" in line for line in summary_lines([result], verbose=True))
    json.dumps(result.as_dict(), allow_nan=False)
