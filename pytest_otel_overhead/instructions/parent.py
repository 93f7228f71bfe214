"""Instructions mode: overhead as the ratio of instructions executed per call, counted under valgrind.

Counting instructions removes timing noise, but not bias: the arms leave the interpreter and the
allocator in different states, and a fixed layout can favour one arm by a percent or two,
repeatably. So each count comes from several processes with different memory layouts, both arms
interleaved inside each process; the per-process ratio is the paired statistic and the spread from
process to process gives the interval, decided against the budget as in time mode.

The test node is re-run in child pytest processes under callgrind (see
:mod:`.child`); this process meanwhile runs the heap rounds (tracemalloc) and the
diagnostic round, which count bytes and spans, not time, so the parallel work does not disturb them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_otel_overhead.engine.arms import Arms
from pytest_otel_overhead.engine.diagnostic import diagnostic_round
from pytest_otel_overhead.engine.heap import heap_pairs_for, heap_rounds
from pytest_otel_overhead.engine.probes import calm_gc, process_probe, process_reading
from pytest_otel_overhead.instructions.valgrind import (
    ValgrindUnavailable,
    callgrind_command,
    check_valgrind,
    read_dumps,
)
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, StopReason, TestResult
from pytest_otel_overhead.settings.layers import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.intervals import median
from pytest_otel_overhead.stats.verdict import Decision, Verdict, decide_budget
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire import from_json, to_json

__all__ = [
    "BLOCK_LABEL",
    "CONFIDENCE",
    "PAIRS",
    "PROCESSES",
    "ChildSpec",
    "Layout",
    "instruction_metrics",
    "layout_status_path",
    "measure_instructions",
    "node_argument",
    "node_pytest_command",
    "passed_on_args",
    "require_valgrind",
    "summarise_layout",
]

PROCESSES = 8
"""Memory layouts (processes) per measurement: the units of the paired statistic.

Eight gives a 95% Wilcoxon interval between the 4th smallest and 4th largest Walsh averages."""
PAIRS = 1
"""Baseline/instrumented block pairs per process; the order alternates from one process to the next.

Counts within a process repeat to about 0.02% from block to block, so one pair per process is
enough; more processes (layouts) do more against layout bias than more pairs would."""
CONFIDENCE = 0.95
NATIVE_BLOCK_S = 0.005
"""Length of a heap-round block, run natively in this process."""
ONE_CALL_S = 0.02
"""Native time per call above which a block is a single call (it counts well over 10 M instructions)."""
TIMEOUT_FACTOR = 10
"""The child processes are stopped after this many times ``max_time`` (at least MIN_TIMEOUT_S)."""
MIN_TIMEOUT_S = 300.0
UNDECIDABLE = {
    "wall": "wall time includes waiting (I/O, locks, sleeps) that instruction counts do not see",
    "latency_p50": "latency is a time and its quantiles depend on timing, which instruction counts do not see",
    "latency_p95": "latency is a time and its quantiles depend on timing, which instruction counts do not see",
    "latency_p99": "latency is a time and its quantiles depend on timing, which instruction counts do not see",
}
BLOCK_LABEL = "otel-overhead layout={layout} block={block} arm={arm} calls={calls}"
"""Tag of each dump; ``block`` -1 is the empty block (the cost of counting itself)."""
LOCAL_EXPORTERS = ("none", "memory")
"""Exporters whose work per span does not depend on how often they are flushed."""
_LABEL = re.compile(BLOCK_LABEL.replace("{", "(?P<").replace("}", r">-?\d+)"))

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ChildSpec:
    """What the parent asks of one child process (``--otel-overhead-child``)."""

    target: str
    """Label of the measured call: the node id, plus ``#callN`` for the N-th fixture call."""
    pipeline: PipelineSettings
    layouts: tuple[int, ...]
    pairs: int
    out_dir: Path
    calls: int = 0
    """Calls per block, or 0: count one instrumented call first and size the blocks from it."""

    def to_json(self) -> str:
        return to_json(self)

    @classmethod
    def from_json(cls, text: str) -> ChildSpec:
        return from_json(cls, text)


def layout_status_path(out_dir: Path, layout: int) -> Path:
    return out_dir / f"layout-{layout:03d}.json"


def require_valgrind(settings: MeasureSettings) -> None:
    """Raise :class:`ValgrindUnavailable` early when instructions mode is chosen but cannot run."""
    if settings.mode == "instructions":
        check_valgrind()


@dataclass(frozen=True)
class Layout:
    """What one memory layout (process) counted: instructions per call in each arm."""

    layout: int
    calls: int
    baseline: float
    """Instructions per call, mean over the process's baseline blocks."""
    instrumented: float

    @property
    def log_ratio(self) -> float:
        return math.log(self.instrumented / self.baseline) if self.baseline > 0 and self.instrumented > 0 else math.nan


def measure_instructions(
    item: pytest.Item,
    settings: MeasureSettings,
    workload: Callable[[], object],
    router: ArmRouter,
    *,
    label: str,
    progress: Progress | None = None,
) -> TestResult:
    """Count both arms of ``workload`` under valgrind and decide the CPU budget on the instruction ratio."""
    say = progress or (lambda message: None)
    try:
        valgrind = check_valgrind()
    except ValgrindUnavailable as error:
        pytest.fail(f"otel-overhead: {error}", pytrace=False)
    started = time.perf_counter()
    before = process_reading()
    pipeline = build_pipeline(settings.pipeline)
    arms = Arms(workload, router, pipeline)
    try:
        with calm_gc() as collect:
            per_call = median([arms.block(instrumented, 1, collect).wall for instrumented in (False, True) * 3])
        with tempfile.TemporaryDirectory(prefix="otel-overhead-") as tmp:
            out = Path(tmp)
            children = _start_children(item, settings, label, valgrind, out, per_call, say)
            try:
                after = process_reading()
                health, heap_metric, retained = _parent_rounds(arms, settings, per_call)
                _wait(children, max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * settings.max_time), started)
            finally:
                for child in children:
                    _stop(child)
            layouts = _collect(out, children)
    finally:
        router.switch(None)
        pipeline.shutdown()
    metrics = [*instruction_metrics(settings, layouts, [layout.log_ratio for layout in layouts]), heap_metric]
    result = _result(label, settings, layouts, metrics, health, process_probe(before, after, retained), started)
    gate = result.metric("instructions")
    if gate is not None:
        say(
            f"{label}: instructions {gate.format_overhead(gate.overhead)} "
            f"{gate.format_interval()} over {len(layouts)} layouts in {result.duration_s:.1f}s"
        )
    return result


def _result(
    label: str,
    settings: MeasureSettings,
    layouts: Sequence[Layout],
    metrics: Sequence[MetricResult],
    health: PipelineHealth,
    process: ProcessProbe,
    started: float,
) -> TestResult:
    return TestResult(
        nodeid=label,
        settings=settings,
        metrics=tuple(metrics),
        health=health,
        process=process,
        pairs=len(layouts),
        calls_per_block=round(median([layout.calls for layout in layouts])),
        looks=1,
        duration_s=time.perf_counter() - started,
        stop_reason=StopReason.COUNTED,
        throughput_baseline=math.nan,
        throughput_instrumented=math.nan,
        mode="instructions",
        instruction_samples=tuple((layout.baseline, layout.instrumented) for layout in layouts),
    )


def slot_count(processes: int) -> int:
    """Valgrind processes to run at once: the CPUs this worker may use, shared among xdist workers."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, min(processes, cpus // max(1, workers)))


@dataclass
class _Child:
    slot: int
    process: subprocess.Popen[bytes]
    log: Path
    layouts: tuple[int, ...]


def node_argument(item: pytest.Item, label: str) -> str:
    """The command-line argument that selects the node of ``label`` (a node id, maybe with ``#callN``)."""
    nodeid = re.sub(r"#call\d+$", "", label)
    rest = nodeid.split("::", 1)[1] if "::" in nodeid else ""
    return str(item.path) + ("::" + rest if rest else "")


_PASSED_ON = {"-p": True, "--import-mode": True, "-o": True, "--override-ini": True, "--confcutdir": True}
_PASSED_ON_FLAGS = ("--noconftest",)


def passed_on_args(args: Sequence[str]) -> list[str]:
    """The parent's options that change how the node is collected: plugins, import mode, ini overrides."""
    kept: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        name, equals, _ = arg.partition("=")
        if arg in _PASSED_ON_FLAGS or (equals and name in _PASSED_ON and name.startswith("--")):
            kept.append(arg)
        elif arg in _PASSED_ON and index + 1 < len(args):
            kept.extend(args[index : index + 2])
            index += 1
        elif arg[:2] in ("-p", "-o") and len(arg) > 2:
            kept.append(arg)
        index += 1
    return kept


def node_pytest_command(item: pytest.Item, label: str, work_dir: Path) -> list[str]:
    """``python -m pytest`` running only the node of ``label``, collected as this process collects it.

    The child keeps its temporary files, cache and report files in ``work_dir``, off the user's.
    """
    config = item.config
    args = [
        sys.executable,
        "-m",
        "pytest",
        node_argument(item, label),
        *passed_on_args(config.invocation_params.args),
        f"--rootdir={config.rootpath}",
        f"--basetemp={work_dir / 'tmp'}",
        f"--otel-overhead-json={work_dir / 'unused.json'}",
        "-q",
        "--no-header",
    ]
    if config.pluginmanager.has_plugin("cacheprovider"):
        args += ["-o", f"cache_dir={work_dir / 'cache'}"]  # with `-p no:cacheprovider` the key is unknown
    if config.inipath is not None:
        args.append(f"--config-file={config.inipath}")
    if config.pluginmanager.has_plugin("xdist"):
        args += ["-n", "0"]  # an `-n` in addopts must not start workers in the child
    if _skip_hypothesis(item):
        # Hypothesis's pytest plugin imports all of Hypothesis: half a second, ten under valgrind.
        args += ["-p", "no:hypothesispytest"]
    if config.pluginmanager.has_plugin("junitxml"):
        args.append(f"--junitxml={work_dir / 'unused.xml'}")  # keep a --junitxml in addopts off the user's file
    return args


def child_command(item: pytest.Item, label: str, valgrind: str, out: Path, slot: int) -> list[str]:
    slot_dir = out / f"slot-{slot:02d}"
    slot_dir.mkdir()
    return [
        *callgrind_command(valgrind, out),
        *node_pytest_command(item, label, slot_dir),
        f"--otel-overhead-child={slot_dir / 'spec.json'}",
    ]


def _skip_hypothesis(item: pytest.Item) -> bool:
    config = item.config
    if not config.pluginmanager.has_plugin("hypothesispytest"):
        return False
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        return False
    options = [*config.invocation_params.args, *config.getini("addopts"), os.environ.get("PYTEST_ADDOPTS", "")]
    return not any("hypothesis" in str(option) for option in options)


def _start_children(
    item: pytest.Item,
    settings: MeasureSettings,
    label: str,
    valgrind: str,
    out: Path,
    per_call: float,
    say: Progress,
) -> list[_Child]:
    """Start the child processes under valgrind, each counting its share of the memory layouts."""
    slots = slot_count(PROCESSES)
    # A call this long is one call per block, whatever it counts: no need to count one first.
    calls = 1 if per_call >= ONE_CALL_S else 0
    children = _launch(item, settings, label, valgrind, out, slots, calls)
    say(f"{label}: counting instructions in {PROCESSES} memory layouts, {slots} valgrind process(es) at a time")
    return children


def _launch(
    item: pytest.Item, settings: MeasureSettings, label: str, valgrind: str, out: Path, slots: int, calls: int
) -> list[_Child]:
    children = []
    # The environment is part of the heap's layout: variables that change from run to run (xdist's
    # run id) and do not concern the child (it is no xdist worker) are left out.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")}
    env["PYTHONHASHSEED"] = "0"  # dict and set layouts, and so the counts, repeat from run to run
    for slot in range(slots):
        layouts = tuple(range(slot, PROCESSES, slots))
        command = child_command(item, label, valgrind, out, slot)
        spec = ChildSpec(label, settings.pipeline, layouts, PAIRS, out, calls)
        slot_dir = out / f"slot-{slot:02d}"
        (slot_dir / "spec.json").write_text(spec.to_json(), encoding="utf-8")
        log = slot_dir / "output.log"
        with log.open("wb") as stream:
            process = subprocess.Popen(
                command,
                cwd=item.config.invocation_params.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so it can be stopped with its forks
            )
        children.append(_Child(slot, process, log, layouts))
    return children


def _wait(children: Sequence[_Child], timeout: float, started: float) -> None:
    for child in children:
        remaining = max(0.0, started + timeout - time.perf_counter())
        try:
            child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"otel-overhead: counting instructions took longer than {timeout:.0f} s; "
                "use mode='time' for workloads this long, or raise max_time",
                pytrace=False,
            )


def _stop(child: _Child) -> None:
    if child.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it may end in between
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


def _log_tail(child: _Child, lines: int = 25) -> str:
    try:
        text = child.log.read_text(encoding="utf-8", errors="replace")
    except OSError:  # pragma: no cover - the log is always created
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _collect(out: Path, children: Sequence[_Child]) -> list[Layout]:
    blocks: dict[int, list[tuple[int, int, int, int]]] = {}
    for dump in read_dumps(out):
        match = _LABEL.fullmatch(dump.label)
        if match is None:
            continue
        layout, block, arm, calls = (int(match.group(key)) for key in ("layout", "block", "arm", "calls"))
        blocks.setdefault(layout, []).append((block, arm, calls, dump.instructions))
    layouts = []
    for child in children:
        for layout in child.layouts:
            status_path = layout_status_path(out, layout)
            if not status_path.exists():
                pytest.fail(
                    f"otel-overhead: the child pytest process under valgrind did not count layout {layout} "
                    f"(exit status {child.process.returncode}); its output ends with:\n{_log_tail(child)}",
                    pytrace=False,
                )
            error = json.loads(status_path.read_text(encoding="utf-8"))["error"]
            if error:
                pytest.fail(f"otel-overhead: counting instructions failed in layout {layout}:\n{error}", pytrace=False)
            layouts.append(summarise_layout(layout, blocks.get(layout, [])))
    return sorted(layouts, key=lambda layout: layout.layout)


def summarise_layout(layout: int, blocks: Sequence[tuple[int, int, int, int]]) -> Layout:
    """Instructions per call in each arm of one layout, from its dumps ``(block, arm, calls, count)``.

    Block -1 of each arm is empty: its count, the cost of counting itself, is taken off the others.
    """
    empty = {arm: count for block, arm, _, count in blocks if block == -1}
    per_arm: dict[int, list[float]] = {0: [], 1: []}
    calls_seen = 1
    for block, arm, calls, count in blocks:
        if block >= 0 and calls > 0:
            per_arm[arm].append((count - empty.get(arm, 0)) / calls)
            calls_seen = calls
    if not per_arm[0] or not per_arm[1]:
        pytest.fail(f"otel-overhead: no counted blocks for layout {layout}", pytrace=False)
    return Layout(
        layout=layout,
        calls=calls_seen,
        baseline=sum(per_arm[0]) / len(per_arm[0]),
        instrumented=sum(per_arm[1]) / len(per_arm[1]),
    )


def _parent_rounds(
    arms: Arms, settings: MeasureSettings, per_call: float
) -> tuple[PipelineHealth, MetricResult, tuple[float, float]]:
    """Diagnostic and heap rounds, as in time mode, natively in this process."""
    calls = max(1, round(NATIVE_BLOCK_S / max(per_call, 1e-9)))
    with calm_gc():
        health = diagnostic_round(arms.workload, settings, arms.router, calls, per_call)
        # No time cap in this mode: every heap pair runs.
        heap_metric, retained = heap_rounds(
            arms,
            settings,
            calls,
            pairs=heap_pairs_for(settings),
            rng=random.Random(0),
            confidence=CONFIDENCE,
            deadline=math.inf,
            expected_pair_s=0.0,
        )
    return health, heap_metric, retained


def _undecidable(metric: str, budget: Budget, note: str) -> MetricResult:
    return MetricResult(
        metric=metric,
        baseline=math.nan,
        instrumented=math.nan,
        overhead=math.nan,
        ci_low=-math.inf,
        ci_high=math.inf,
        kind=budget.kind,
        n=0,
        spread=math.nan,
        confidence=CONFIDENCE,
        budget=budget,
        verdict=Verdict.INCONCLUSIVE,
        note=note + "; use mode='time' for this budget",
    )


def clock_driven(settings: MeasureSettings) -> bool:
    """Whether the sampler's decisions depend on the time of day, not on the spans alone."""
    pipeline = settings.pipeline
    return pipeline.sampler in ("rate_limiting", "load_adaptive") or pipeline.max_traces_per_second is not None


def instruction_metrics(
    settings: MeasureSettings, layouts: Sequence[Layout], stats: Sequence[float]
) -> list[MetricResult]:
    """The instruction ratio, decided against the CPU budget; time budgets other than that, undecided."""
    cpu = settings.budget("cpu")
    budget = cpu if cpu is not None and cpu.kind == "relative" else None
    decision = decide_budget(stats, budget, CONFIDENCE)
    verdict, note = _qualified(settings, budget, decision)
    ratio = MetricResult(
        metric="instructions",
        baseline=median([layout.baseline for layout in layouts]),
        instrumented=median([layout.instrumented for layout in layouts]),
        overhead=decision.estimate,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        kind="relative",
        n=decision.n,
        spread=decision.spread,
        confidence=CONFIDENCE,
        budget=budget,
        verdict=verdict if budget is not None else None,
        resolution=decision.half_width if verdict is Verdict.INCONCLUSIVE else None,
        note=note,
    )
    return [ratio, *_undecidable_budgets(settings)]


def _qualified(settings: MeasureSettings, budget: Budget | None, decision: Decision) -> tuple[Verdict, str | None]:
    """The ratio's verdict and note, where the counts cannot show what production would do."""
    if clock_driven(settings):
        note = (
            f"the {settings.pipeline.sampler} sampler decides by the clock, which valgrind slows some fifty "
            "times, so these counts do not show production's sampling; use mode='time'"
        )
        return Verdict.INCONCLUSIVE, note
    if settings.pipeline.exporter not in LOCAL_EXPORTERS:
        # Each counted block ends with a full flush, so a network exporter pays one request per block
        # (about 3 ms of work) where production pays one per batch: the count overstates the overhead.
        note = (
            f"exporter {settings.pipeline.exporter!r} sends a request per counted block, more often than "
            "production's batches do: this overhead is an upper bound"
        )
        if decision.verdict is Verdict.FAIL:
            return Verdict.INCONCLUSIVE, note + ", too high to fail on; use mode='time'"
        return decision.verdict, note
    if budget is not None and decision.verdict is Verdict.INCONCLUSIVE:
        note = (
            f"the {decision.n} memory layouts disagree (spread {decision.spread * 100:.2f}%) by more than "
            f"this overhead's distance from the budget"
        )
        return decision.verdict, note
    return decision.verdict, None


def _undecidable_budgets(settings: MeasureSettings) -> list[MetricResult]:
    """The budgets given that instruction counts cannot decide, each INCONCLUSIVE with the reason."""
    metrics = []
    cpu = settings.budget("cpu")
    if cpu is not None and cpu.kind != "relative":
        metrics.append(
            _undecidable(
                "cpu",
                cpu,
                "an absolute CPU budget (time per call) cannot be decided from instruction counts; "
                "give a relative one such as '5%'",
            )
        )
    for metric, reason in UNDECIDABLE.items():
        other = settings.budget(metric)
        if other is not None:
            metrics.append(_undecidable(metric, other, f"not decidable in instructions mode: {reason}"))
    return metrics
