"""Reference overhead of one workload, without the engine under test: a plain interleaved A/B.

``python reference.py WORKLOAD [--seconds S] [--block-ms MS]`` prints one JSON object.

One process toggles the SDK pipeline against the API's no-op providers (``arms.py``) around the
same call, in ABBA blocks of calls (which arm starts each quadruple is random), timed with the
process's CPU time (all threads, so the batch processor's worker counts). The instrumented block
ends with a flush, so it pays for its own spans; libraries named by the workload's ``instrument``
are instrumented for the instrumented blocks only, outside the timing, as the plugin does.

Every block starts from a full collection, outside the timing. With ``--frozen-heap`` the heap
alive after the warm-up is frozen first (``gc.freeze()``), as the plugin's engine does so that
its per-block collection walks only what the measurement made: the collector's old generation
then holds little, so it runs through objects that outlive a young collection (spans waiting in
the batch queue) more often. That is the regime of the plugin; the plain one is the default here.

Per process, the estimate is the ratio of total CPU time per call, instrumented over baseline: the
mean cost, bursts included. The harness pools many such processes; one process cannot see the
offset its own layout and allocator state give it.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arms import SdkPipeline, Switch, SwitchingMeterProvider, SwitchingTracerProvider, load_instrumentors
from opentelemetry import metrics, trace

WARMUP_BLOCKS = 4
CALIBRATION_S = 0.2


@dataclass
class Arms:
    """Both arms in this process, and the switching between them (outside any timing)."""

    switch: Switch
    pipeline: SdkPipeline
    instrumentors: list[Any]
    checked: bool = False

    def enter(self, instrumented: bool) -> None:
        if instrumented:
            for instrumentor in self.instrumentors:
                instrumentor.instrument(
                    tracer_provider=self.pipeline.tracer_provider,
                    meter_provider=self.pipeline.meter_provider,
                    skip_dep_check=self.checked,
                )
            self.checked = True
        self.switch.instrumented = instrumented

    def leave(self) -> None:
        if self.switch.instrumented:
            for instrumentor in self.instrumentors:
                instrumentor.uninstrument()
        self.switch.instrumented = False


def install() -> Arms:
    switch = Switch()
    pipeline = SdkPipeline()
    trace.set_tracer_provider(SwitchingTracerProvider(switch, pipeline.tracer_provider))
    metrics.set_meter_provider(SwitchingMeterProvider(switch, pipeline.meter_provider))
    return Arms(switch, pipeline, [])


def timed_block(arms: Arms, call: Callable[[], Any], calls: int, instrumented: bool) -> tuple[float, float]:
    """CPU and wall seconds per call of one block of ``calls`` calls in one arm."""
    gc.collect()
    arms.enter(instrumented)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    if instrumented:
        arms.pipeline.flush()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    arms.leave()
    return cpu / calls, wall / calls


def calls_per_block(arms: Arms, call: Callable[[], Any], block_s: float) -> int:
    """Calls that fill ``block_s`` of baseline CPU time, from calls timed for a short while."""
    calls, started = 0, time.process_time()
    while time.process_time() - started < CALIBRATION_S or calls < 3:
        call()
        calls += 1
    per_call = (time.process_time() - started) / calls
    return max(1, round(block_s / per_call))


@dataclass
class Pairs:
    cpu: list[tuple[float, float]] = field(default_factory=list)
    wall: list[tuple[float, float]] = field(default_factory=list)


def measure(
    arms: Arms, call: Callable[[], Any], seconds: float, block_s: float, rng: random.Random, frozen_heap: bool = False
) -> dict[str, Any]:
    """ABBA quadruples until ``seconds`` of wall time have passed; two pairs per quadruple."""
    calls = calls_per_block(arms, call, block_s)
    for i in range(WARMUP_BLOCKS):
        timed_block(arms, call, calls, instrumented=i % 2 == 1)
    if frozen_heap:
        gc.collect()
        gc.freeze()
    pairs = Pairs()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(pairs.cpu) < 4:
        first = rng.random() < 0.5  # the arm of the quadruple's outer blocks
        blocks = [timed_block(arms, call, calls, instrumented) for instrumented in (first, not first, not first, first)]
        for a, b in ((blocks[0], blocks[1]), (blocks[3], blocks[2])):
            base, inst = (b, a) if first else (a, b)
            pairs.cpu.append((base[0], inst[0]))
            pairs.wall.append((base[1], inst[1]))
    return summarize(pairs, calls)


def hodges_lehmann(values: Sequence[float]) -> float:
    """Median of the Walsh averages (all pairwise means, each value with itself included)."""
    walsh = [(values[i] + values[j]) / 2 for i in range(len(values)) for j in range(i, len(values))]
    return statistics.median(walsh)


def summarize(pairs: Pairs, calls: int) -> dict[str, Any]:
    cpu_base = sum(b for b, _ in pairs.cpu)
    cpu_inst = sum(i for _, i in pairs.cpu)
    wall_base = sum(b for b, _ in pairs.wall)
    wall_inst = sum(i for _, i in pairs.wall)
    logs = [math.log(i / b) for b, i in pairs.cpu if b > 0 and i > 0]
    # The Walsh averages grow with the square of the pairs: past 400 pairs, a random sample of them.
    sample = logs if len(logs) <= 400 else random.Random(len(logs)).sample(logs, 400)
    centre = statistics.median(logs)
    return {
        "pairs": len(pairs.cpu),
        "calls_per_block": calls,
        "estimate": cpu_inst / cpu_base - 1,
        "log_ratio": math.log(cpu_inst / cpu_base),
        "hl_estimate": math.expm1(hodges_lehmann(sample)),
        "wall_estimate": wall_inst / wall_base - 1,
        "spread": 1.4826 * statistics.median(abs(x - centre) for x in logs),
        "baseline_per_call_s": cpu_base / len(pairs.cpu),
        "instrumented_per_call_s": cpu_inst / len(pairs.cpu),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reference.py", description=__doc__.splitlines()[0])
    parser.add_argument("workload")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time after warm-up (10)")
    parser.add_argument("--block-ms", type=float, default=20.0, help="baseline CPU time per block (20 ms)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the block order (default: random)")
    parser.add_argument("--frozen-heap", action="store_true", help="freeze the heap after warm-up, as the plugin does")
    args = parser.parse_args(argv)
    arms = install()  # before the workloads are imported, as a service configures OpenTelemetry first
    from apps import WORKLOADS

    if args.workload not in WORKLOADS:
        parser.error(f"unknown workload {args.workload!r}; known: {', '.join(WORKLOADS)}")
    workload = WORKLOADS[args.workload]
    arms.instrumentors = load_instrumentors(workload.instrument)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    try:
        with workload.open() as call:
            result = measure(arms, call, args.seconds, args.block_ms / 1000, random.Random(seed), args.frozen_heap)
    finally:
        arms.pipeline.shutdown()
    print(json.dumps({"workload": workload.name, "seed": seed, "frozen_heap": args.frozen_heap, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
