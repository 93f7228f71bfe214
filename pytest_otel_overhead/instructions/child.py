"""The counting side of instructions mode: runs inside a pytest process started under callgrind.

The parent re-runs the measured test node in a child pytest process under valgrind, passing
``--otel-overhead-child=SPEC``. Collection, fixtures and the test body run as usual (uncounted:
instrumentation is off); when the test reaches the measured call, :class:`ChildSession` forks one
process per memory layout. Each fork pads its heap differently, seeds ``random``, then counts
blocks of workload calls in both arms, in an order that alternates from one layout to the next,
each block between a zero and a dump of callgrind's counters, and each started from pools with
room for small objects (:mod:`.pools`), whatever the arm switch left. The parent reads the dumps.
Forking shares the expensive start-up under valgrind among all layouts, and every layout starts
from the same state, so its counts do not depend on which other layouts ran before it.
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.engine.probes import calm_gc
from pytest_otel_overhead.engine.strategy import Strategies
from pytest_otel_overhead.instructions.pools import make_room, size_classes
from pytest_otel_overhead.instructions.processes import BLOCK_LABEL, ChildSpec, layout_status_path
from pytest_otel_overhead.instructions.valgrind import ClientRequests, label_buffer, latest_dump
from pytest_otel_overhead.otel.pipeline import Pipeline, build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import StopReason, TestResult
from pytest_otel_overhead.session import OverheadSession
from pytest_otel_overhead.settings.records import MeasureSettings

__all__ = ["ChildSession"]

TARGET_INSTRUCTIONS = 10_000_000
"""Instructions per counted block, about 3 ms of native work: callgrind runs it in about 0.2 s."""
MAX_CALLS = 100_000
UNREACHABLE_DELAY_MS = 1e9
SETTLE_S = 0.05
WARM_EMPTY_PAIRS = 8
"""Empty blocks per arm run before counting: the code around the calls (switching arms, making room,
the flush) is then past the interpreter's warm-up (3.11 quickens a function on its 8th call), and
the empty blocks subtracted from the others cost what the code around their calls costs."""


class ChildSession(OverheadSession):
    """Stands in for :class:`OverheadSession` in the child: counts the target call, skips the others."""

    def __init__(
        self,
        config: pytest.Config,
        router: ArmRouter,
        spec_path: str,
        *,
        strategies: Strategies,
        call_measured_instead: Callable[[pytest.Item], bool],
    ) -> None:
        super().__init__(config, router, strategies=strategies, call_measured_instead=call_measured_instead)
        self.spec = ChildSpec.from_json(Path(spec_path).read_text(encoding="utf-8"))
        self.counted = False
        config.pluginmanager.register(self, "otel-overhead-child")

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self) -> None:
        """Leave once the counted test is torn down: the session's end adds nothing but time here."""
        if self.counted:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    def run(self, item: pytest.Item, settings: MeasureSettings, workload: Callable[[], Any], label: str) -> TestResult:
        if label == self.spec.target:
            _count(self.spec, workload, self.router)
            self.counted = True
        return TestResult.unmeasured(label, settings, StopReason.COUNTED_IN_CHILD, mode="instructions")


def _child_pipeline(spec: ChildSpec) -> Pipeline:
    # Valgrind runs some fifty times slower than the CPU, so a timer-driven export would come fifty
    # times as often per call as in production, and at moments that differ from run to run. The
    # timers are pushed out of reach instead; each instrumented block's flush exports what it made.
    unreachable = UNREACHABLE_DELAY_MS
    pipeline = build_pipeline(replace(spec.pipeline, schedule_delay_ms=unreachable, metric_interval_ms=unreachable))
    # The batch processor's exporter thread runs until it waits for spans; a short sleep hands it
    # the interpreter now, so it does not run its first steps inside a counted block.
    time.sleep(SETTLE_S)
    return pipeline


def _count(spec: ChildSpec, workload: Callable[[], Any], router: ArmRouter) -> None:
    """Count each layout in a fork of this process; every fork starts from the same state."""
    requests = ClientRequests()
    if not requests.running_on_valgrind:
        raise RuntimeError("--otel-overhead-child is internal to instructions mode and needs valgrind")
    for layout in spec.layouts:
        _fork_layout(layout, spec, workload, router, requests)


def _calls_per_block(blocks: _Blocks, spec: ChildSpec) -> int:
    """Calls per block from one counted instrumented call: counts, unlike times, repeat exactly.

    The call also takes a one-time cost of the first instrumented call after counting starts
    (about 20 k instructions) out of the blocks compared."""
    blocks.run(True, 1, -3)
    dump = latest_dump(spec.out_dir, os.getpid())
    if dump is None or dump.instructions <= 0:
        return 1
    return max(1, min(MAX_CALLS, round(TARGET_INSTRUCTIONS / dump.instructions)))


class _Blocks:
    """Runs one block of calls in one arm between zeroing and dumping callgrind's counters."""

    def __init__(
        self, layout: int, workload: Callable[[], Any], router: ArmRouter, requests: ClientRequests, pipeline: Pipeline
    ) -> None:
        self.layout = layout
        self.workload = workload
        self.router = router
        self.requests = requests
        self.pipeline = pipeline
        self.size_classes = size_classes()

    def run(self, instrumented: bool, calls: int, index: int, counted: bool = True) -> None:
        label = label_buffer(BLOCK_LABEL.format(layout=self.layout, block=index, arm=int(instrumented), calls=calls))
        workload, requests, pipeline = self.workload, self.requests, self.pipeline
        gc.collect()  # every block starts from a collected heap, as in time mode
        self.router.switch(pipeline.provider if instrumented else None)
        # Last before counting, after all that differs between the arms: see `pools`.
        held = make_room(self.size_classes)
        try:
            requests.zero()
            for _ in range(calls):
                workload()
            if instrumented:
                pipeline.flush()  # deferred export work is charged to the block, as in time mode
            if counted:
                requests.dump(label)
        finally:
            self.router.switch(None)
            del held
        pipeline.after_block()


def _fork_layout(
    layout: int, spec: ChildSpec, workload: Callable[[], Any], router: ArmRouter, requests: ClientRequests
) -> None:
    status = layout_status_path(spec.out_dir, layout)
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork with threads; the fork runs only the workload and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked process, which leaves by os._exit
        code = 0
        try:
            threads = _count_layout(layout, spec, workload, router, requests)
            outcome: dict[str, object] = {"layout": layout, "error": None, "threads": threads}
        except BaseException:
            outcome = {"layout": layout, "error": traceback.format_exc()}
            code = 1
        try:
            status.write_text(json.dumps(outcome), encoding="utf-8")
        finally:
            os._exit(code)
    os.waitpid(pid, 0)


def _padding(rng: random.Random) -> list[object]:
    """Heap state that differs per layout: objects of many sizes, some freed to leave holes.

    Bytes objects take 34 bytes and more; ints (32 bytes) and bare objects (16) reach the two
    smallest size classes, where ints and floats live, so their pools differ per layout too.
    """
    objects: list[object] = [bytes(rng.randrange(1, 512)) for _ in range(rng.randrange(64, 4096))]
    objects += [rng.getrandbits(40) for _ in range(rng.randrange(64, 4096))]
    objects += [object() for _ in range(rng.randrange(64, 4096))]
    objects.append(bytearray(rng.randrange(1, 1 << 20)))
    return [obj for obj in objects if rng.random() < 0.6]


def _at_depth(depth: int, run: Callable[[], None]) -> None:
    """Run ``run`` a few frames deeper, so the interpreter's stack sits elsewhere too."""
    if depth <= 0:
        run()
    else:
        _at_depth(depth - 1, run)


def _count_layout(
    layout: int, spec: ChildSpec, workload: Callable[[], Any], router: ArmRouter, requests: ClientRequests
) -> list[str]:
    """Count one layout; returns the names of the threads alive while counting (all are counted)."""
    rng = random.Random(layout)
    keep = _padding(rng)
    depth = rng.randrange(0, 40)
    random.seed(layout)  # trace ids and sampling decisions come from `random`: the same every run
    pipeline = _child_pipeline(spec)
    blocks = _Blocks(layout, workload, router, requests, pipeline)
    threads = [thread.name for thread in threading.enumerate()]
    try:
        _at_depth(depth, lambda: _count_blocks(blocks, spec))
    finally:
        router.switch(None)
        pipeline.shutdown()
    del keep
    return threads


def _count_blocks(blocks: _Blocks, spec: ChildSpec) -> None:
    with calm_gc():
        # Warm-up, before counting starts (so at valgrind's faster uncounted pace): the first calls
        # after the padding, the new pipeline's first span, specialisation of hot code.
        blocks.run(False, 1, -2, counted=False)
        blocks.run(True, 1, -2, counted=False)
        for _ in range(WARM_EMPTY_PAIRS):
            blocks.run(False, 0, -2, counted=False)
            blocks.run(True, 0, -2, counted=False)
        # Counting starts here, in the fork: started before the fork, callgrind's totals of a
        # fork's first dumps carry costs from before them.
        blocks.requests.start_instrumentation()
        try:
            # A call in each arm, uncounted, with the simulated caches on: they start empty when
            # instrumentation starts, and the first counted block would pay for filling them (a long
            # call, which skips the sizing call below, read ±3 points in estimated cycles from it).
            blocks.run(False, 1, -2, counted=False)
            blocks.run(True, 1, -2, counted=False)
            calls = spec.calls or _calls_per_block(blocks, spec)
            # Empty blocks: what a block costs each arm with no call in it (switching arms, the
            # instrumented arm's flush), subtracted so that only the calls are compared.
            blocks.run(False, 0, -1)
            blocks.run(True, 0, -1)
            # Seeded again here, so the compared blocks draw the same trace ids (and so make the same
            # sampling decisions) whether or not a call was counted above to size them.
            random.seed(blocks.layout)
            for pair in range(spec.pairs):
                # Alternating order (ABBA within a process, and from one layout to the next): each arm
                # is as often first as second, so drift within a process cancels out.
                order = (False, True) if (pair + blocks.layout) % 2 == 0 else (True, False)
                for position, instrumented in enumerate(order):
                    blocks.run(instrumented, calls, 2 * pair + position)
        finally:
            blocks.requests.stop_instrumentation()
