"""The valgrind children of instructions mode: what each is asked, starting and waiting for them, reading their counts.

The test node is re-run in child pytest processes under callgrind (:mod:`.child` counts inside),
as many at once as this worker has CPUs, each counting its share of the memory layouts. Each
child leaves a status file per layout and a callgrind dump per counted block, tagged with
``BLOCK_LABEL``; :func:`collect_layouts` turns them into counts per call of each layout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_otel_overhead.engine.children import Child, child_environment, node_pytest_command
from pytest_otel_overhead.engine.runner import Progress
from pytest_otel_overhead.instructions.counts import Layout, summarise_layout
from pytest_otel_overhead.instructions.cycles import Counts
from pytest_otel_overhead.instructions.valgrind import callgrind_command, read_dumps
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.wire.transport import from_json, to_json

__all__ = [
    "BLOCK_LABEL",
    "PAIRS",
    "PROCESSES",
    "ChildSpec",
    "LayoutChild",
    "child_command",
    "collect_layouts",
    "layout_status_path",
    "slot_count",
    "start_children",
    "wait_for",
]

PROCESSES = 8
"""Memory layouts (processes) per measurement: the units of the paired statistic.

Eight gives a 95% Wilcoxon interval between the 4th smallest and 4th largest Walsh averages."""
PAIRS = 1
"""Baseline/instrumented block pairs per process; the order alternates from one process to the next.

Counts within a process repeat to about 0.02% from block to block, so one pair per process is
enough; more processes (layouts) do more against layout bias than more pairs would."""
ONE_CALL_S = 0.02
"""Native time per call above which a block is a single call (it counts well over 10 M instructions)."""
TIMEOUT_FACTOR = 10
"""The child processes are stopped after this many times ``max_time`` (at least MIN_TIMEOUT_S)."""
MIN_TIMEOUT_S = 300.0
OUTPUT_LINES = 25
"""Lines of a failed child's output shown: valgrind's own messages take several."""
BLOCK_LABEL = "otel-overhead layout={layout} block={block} arm={arm} calls={calls}"
"""Tag of each dump; ``block`` -1 is the empty block (the cost of counting itself)."""
_LABEL = re.compile(BLOCK_LABEL.replace("{", "(?P<").replace("}", r">-?\d+)"))


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


@dataclass(frozen=True)
class LayoutChild:
    """A child under valgrind and the memory layouts it counts."""

    child: Child
    layouts: tuple[int, ...]


def slot_count(processes: int) -> int:
    """Valgrind processes to run at once: the CPUs this worker may use, shared among xdist workers."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, min(processes, cpus // max(1, workers)))


def child_command(item: pytest.Item, label: str, valgrind: str, out: Path, slot: int) -> list[str]:
    slot_dir = out / f"slot-{slot:02d}"
    slot_dir.mkdir()
    return [
        *callgrind_command(valgrind, out),
        *node_pytest_command(item, label, slot_dir),
        f"--otel-overhead-child={slot_dir / 'spec.json'}",
    ]


def start_children(
    item: pytest.Item,
    settings: MeasureSettings,
    label: str,
    valgrind: str,
    out: Path,
    per_call: float,
    say: Progress,
) -> list[LayoutChild]:
    """Start the child processes under valgrind, each counting its share of the memory layouts."""
    slots = slot_count(PROCESSES)
    # A call this long is one call per block, whatever it counts: no need to count one first.
    calls = 1 if per_call >= ONE_CALL_S else 0
    children = _launch(item, settings, label, valgrind, out, slots, calls)
    say(f"{label}: counting instructions in {PROCESSES} memory layouts, {slots} valgrind process(es) at a time")
    return children


def _launch(
    item: pytest.Item, settings: MeasureSettings, label: str, valgrind: str, out: Path, slots: int, calls: int
) -> list[LayoutChild]:
    children = []
    env = child_environment()
    env["PYTHONHASHSEED"] = "0"  # dict and set layouts, and so the counts, repeat from run to run
    for slot in range(slots):
        layouts = tuple(range(slot, PROCESSES, slots))
        command = child_command(item, label, valgrind, out, slot)
        spec = ChildSpec(label, settings.pipeline, layouts, PAIRS, out, calls)
        slot_dir = out / f"slot-{slot:02d}"
        (slot_dir / "spec.json").write_text(spec.to_json(), encoding="utf-8")
        child = Child.start(command, cwd=item.config.invocation_params.dir, env=env, log=slot_dir / "output.log")
        children.append(LayoutChild(child, layouts))
    return children


def wait_for(children: Sequence[LayoutChild], max_time: float, started: float) -> None:
    """Wait for every child to end, failing the test once ``TIMEOUT_FACTOR`` times ``max_time`` has passed."""
    timeout = max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * max_time)
    for counting in children:
        remaining = max(0.0, started + timeout - time.perf_counter())
        try:
            counting.child.process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"otel-overhead: counting instructions took longer than {timeout:.0f} s; "
                "use mode='time' for workloads this long, or raise max_time",
                pytrace=False,
            )


def collect_layouts(out: Path, children: Sequence[LayoutChild]) -> list[Layout]:
    """Counts per call of every layout the children counted, in layout order; a layout missing fails the test."""
    blocks = _blocks_by_layout(out)
    layouts = []
    for counting in children:
        for layout in counting.layouts:
            status_path = layout_status_path(out, layout)
            if not status_path.exists():
                child = counting.child
                tail = "\n".join(child.output().rstrip().splitlines()[-OUTPUT_LINES:])
                pytest.fail(
                    f"otel-overhead: the child pytest process under valgrind did not count layout {layout} "
                    f"(exit status {child.process.returncode}); its output ends with:\n{tail}",
                    pytrace=False,
                )
            error = json.loads(status_path.read_text(encoding="utf-8"))["error"]
            if error:
                pytest.fail(f"otel-overhead: counting instructions failed in layout {layout}:\n{error}", pytrace=False)
            layouts.append(summarise_layout(layout, blocks.get(layout, [])))
    return sorted(layouts, key=lambda layout: layout.layout)


def _blocks_by_layout(out: Path) -> dict[int, list[tuple[int, int, int, Counts]]]:
    """Every dump the children left, as ``(block, arm, calls, counts)`` per layout; other dumps are left out."""
    blocks: dict[int, list[tuple[int, int, int, Counts]]] = {}
    for dump in read_dumps(out):
        match = _LABEL.fullmatch(dump.label)
        if match is None:
            continue
        layout, block, arm, calls = (int(match.group(key)) for key in ("layout", "block", "arm", "calls"))
        blocks.setdefault(layout, []).append((block, arm, calls, dump.counts))
    return blocks
