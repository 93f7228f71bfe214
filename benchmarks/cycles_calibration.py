"""Fit instructions mode's weights (cache misses, mispredicted branches) to time, from recorded counts: no valgrind.

``python -m benchmarks.cycles_calibration [FILES...] [--run NAME]`` reads JSON-lines records
(``benchmarks/results/cycles-*.jsonl`` by default): ``counts`` records (``benchmarks.cycles_runs``:
per workload, each process's instructions, first- and last-level misses and mispredicted branches
per call, per arm) and ``time`` records (a time reference per workload: the overhead in CPU time,
frozen-heap regime). It chooses the weights ``w1`` (cycles per first-level miss), ``wLL`` (per
last-level miss) and ``wB`` (per mispredicted branch) that bring the estimated-cycles overhead
closest to the time reference by least squares on the log ratios, ``ln(1 + cycles overhead) -
ln(1 + time reference)``, over every workload with both (but those whose time reference says
``"fit": false``: measured on a busy machine, they are only checked against the fit); checks them
by leaving each workload out in turn (fit on the others, predict it); and prints the table: time reference, instructions
overhead, estimated-cycles overhead with the classic weights (10, 100, 0) and the fitted ones, and
each one's miss. ``--repeat RUN1 RUN2`` prints instead how two counts runs of the same workloads agree.

A workload's overhead is computed as the plugin computes it: the Hodges–Lehmann estimate of the
per-process log ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL
from pytest_otel_overhead.stats.intervals import hodges_lehmann

__all__ = ["Workload", "fit_weights", "leave_one_out", "load_workloads", "main", "overhead", "repeatability"]

RESULTS = Path(__file__).parent / "results"
Weights = tuple[float, float, float]
"""Cycles per first-level miss, per last-level miss, per mispredicted branch."""
CLASSIC: Weights = (10.0, 100.0, 0.0)
"""Cachegrind's classic model: 10 cycles to the last level, 100 to memory, branches not weighed."""
NONE: Weights = (0.0, 0.0, 0.0)
UPPER: Weights = (40.0, 300.0, 30.0)
"""What a miss or a mispredict can cost on an x86-64 server core, the grid's upper ends: a
first-level miss served by the last level, 10 to 40 cycles; a last-level miss served by memory, 100
to 300; a mispredict's flush, 15 to 30. Beyond them the weights stop describing a cache and stand
in for what the model does not see (the kernel's work, instructions run in parallel)."""
STEPS = 8
ROUNDS = 6
TARGET_POINTS = 0.015
TARGET_SHARE = 0.25
"""The issue's target: within 1.5 points of the time reference, or 25% of it where that is larger."""

Row = tuple[float, ...]
"""Per process and call, each (baseline, instrumented): instructions, first-level misses, last-level
misses, mispredicted branches (records without branch simulation stop after the last-level misses)."""


@dataclass(frozen=True)
class Workload:
    name: str
    rows: tuple[Row, ...]
    time: float
    """The time reference: CPU-time overhead as a fraction."""
    fitted: bool = True
    """Whether the fit uses it; a reference measured on a busy machine is only checked against."""


def overhead(rows: Sequence[Row], weights: Sequence[float]) -> float:
    """The estimated-cycles overhead as a fraction: Hodges–Lehmann over the processes' log ratios."""
    ratios = []
    for row in rows:
        baseline, instrumented = row[0], row[1]
        for k, weight in enumerate(weights):
            if 2 * k + 3 < len(row):
                baseline += weight * row[2 * k + 2]
                instrumented += weight * row[2 * k + 3]
        ratios.append(math.log(instrumented / baseline))
    return math.expm1(hodges_lehmann(sorted(ratios)))


def _loss(workloads: Sequence[Workload], weights: Sequence[float]) -> float:
    return math.fsum((math.log1p(overhead(w.rows, weights)) - math.log1p(w.time)) ** 2 for w in workloads)


def fit_weights(
    workloads: Sequence[Workload], upper: Sequence[float] = UPPER, steps: int = STEPS, rounds: int = ROUNDS
) -> Weights:
    """Least squares on the log ratios over a grid of non-negative weights, refined around its best point."""
    low, high = [0.0] * len(upper), list(upper)
    best: tuple[float, ...] = tuple(low)
    for _ in range(rounds):
        axes = [[lo + (hi - lo) * i / steps for i in range(steps + 1)] for lo, hi in zip(low, high, strict=True)]
        best = min(itertools.product(*axes), key=lambda weights: _loss(workloads, weights))
        widths = [(hi - lo) / steps for lo, hi in zip(low, high, strict=True)]
        low = [max(0.0, b - w) for b, w in zip(best, widths, strict=True)]
        high = [min(top, b + w) for top, b, w in zip(upper, best, widths, strict=True)]
    return (best[0], best[1], best[2])


def leave_one_out(workloads: Sequence[Workload], **grid: Any) -> dict[str, tuple[Weights, float]]:
    """Per workload: the weights fitted without it and its estimated-cycles overhead under them."""
    held_out = {}
    for workload in workloads:
        weights = fit_weights([w for w in workloads if w is not workload], **grid)
        held_out[workload.name] = (weights, overhead(workload.rows, weights))
    return held_out


def meets_target(estimate: float, reference: float) -> bool:
    return abs(estimate - reference) <= max(TARGET_POINTS, TARGET_SHARE * abs(reference))


def read_records(paths: Sequence[Path]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def load_workloads(records: Sequence[dict[str, Any]], run: str | None) -> list[Workload]:
    """Workloads with counts (of ``run``, else the first run recorded) and a time reference (median of its records)."""
    counts = [r for r in records if r["type"] == "counts"]
    run = run or (counts[0]["run"] if counts else None)
    times: dict[str, list[float]] = {}
    fitted: dict[str, bool] = {}
    for record in records:
        if record["type"] == "time":
            times.setdefault(record["workload"], []).append(record["reference"])
            fitted[record["workload"]] = record.get("fit", True)
    workloads = []
    for record in counts:
        if record["run"] == run and record["workload"] in times:
            rows = tuple(tuple(row) for row in record["per_process_per_call"])
            reference = sorted(times[record["workload"]])[len(times[record["workload"]]) // 2]
            workloads.append(Workload(record["workload"], rows, reference, fitted[record["workload"]]))  # type: ignore[arg-type]
    return workloads


def _points(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _weights(weights: Weights) -> str:
    return "/".join(f"{w:.1f}" if w < 100 else f"{w:.0f}" for w in weights)


def report(workloads: Sequence[Workload], **grid: Any) -> list[str]:
    """The fit on the workloads marked ``fitted``, left out one at a time; the others checked against it."""
    used = [w for w in workloads if w.fitted]
    fitted = fit_weights(used, **grid)
    held_out = leave_one_out(used, **grid)
    lines = [
        f"fitted weights: w1 = {fitted[0]:.2f} cycles per first-level miss, wLL = {fitted[1]:.1f} per last-level "
        f"miss, wB = {fitted[2]:.2f} per mispredicted branch",
        f"on {', '.join(w.name for w in used)}; loss (sum of squared log misses): fitted {_loss(used, fitted):.5f}, "
        f"classic {_loss(used, CLASSIC):.5f}, instructions alone {_loss(used, NONE):.5f}",
        "",
        "| workload | time reference | instructions | miss | cycles, classic | miss | cycles, fitted | miss "
        "| cycles, left out (its w1/wLL/wB) | miss | fitted within target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in workloads:
        instructions, classic, fit = (overhead(w.rows, weights) for weights in (NONE, CLASSIC, fitted))
        weights, out = held_out.get(w.name, (fitted, fit))  # not fitted on: out of sample already
        lines.append(
            f"| {w.name}{'' if w.fitted else ' (checked, not fitted)'} | {_points(w.time)} | {_points(instructions)} "
            f"| {_points(instructions - w.time)} | {_points(classic)} | {_points(classic - w.time)} | {_points(fit)} "
            f"| {_points(fit - w.time)} | {_points(out)} ({_weights(weights)}) | {_points(out - w.time)} "
            f"| {'yes' if meets_target(fit, w.time) else 'no'} |"
        )
    return lines


def repeatability(records: Sequence[dict[str, Any]], first: str, second: str) -> list[str]:
    """Two counts runs side by side: each workload's overheads under the plugin's weights, and how far apart."""
    model = CYCLE_MODEL
    shipped = (model.l1_miss_cycles, model.ll_miss_cycles, model.mispredict_cycles)
    runs: dict[str, dict[str, tuple[Row, ...]]] = {first: {}, second: {}}
    loads: dict[str, list[float]] = {}
    for record in records:
        if record["type"] == "counts" and record["run"] in runs:
            runs[record["run"]][record["workload"]] = tuple(tuple(row) for row in record["per_process_per_call"])
            loads[record["run"]] = record["load_average"]
    lines = [
        f"weights {_weights(shipped)}; load average {first} {loads.get(first)}, {second} {loads.get(second)}",
        "",
        f"| workload | cycles, {first} | cycles, {second} | difference | within 0.1 point or 1% "
        f"| instructions, {first} | instructions, {second} | difference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, a in runs[first].items():
        b = runs[second].get(name)
        if b is None:
            continue
        cycles = [overhead(rows, shipped) for rows in (a, b)]
        counted = [overhead(rows, NONE) for rows in (a, b)]
        held = abs(cycles[1] - cycles[0]) <= max(0.001, 0.01 * abs(cycles[0]))
        lines.append(
            f"| {name} | {cycles[0] * 100:+.3f}% | {cycles[1] * 100:+.3f}% | {(cycles[1] - cycles[0]) * 100:+.3f} "
            f"| {'yes' if held else 'no'} | {counted[0] * 100:+.3f}% | {counted[1] * 100:+.3f}% "
            f"| {(counted[1] - counted[0]) * 100:+.3f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cycles_calibration", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--run", help="the counts run to fit (the first recorded by default)")
    parser.add_argument("--repeat", nargs=2, metavar="RUN", help="compare two counts runs instead of fitting")
    parser.add_argument("--upper", nargs=3, type=float, default=UPPER, metavar=("W1", "WLL", "WB"), help="grid ends")
    args = parser.parse_args(argv)
    files = args.files or sorted(RESULTS.glob("cycles-*.jsonl"))
    if args.repeat:
        print("\n".join(repeatability(read_records(files), *args.repeat)))
        return 0
    workloads = load_workloads(read_records(files), args.run)
    if len(workloads) < 3:
        parser.error(f"{len(workloads)} workloads have both counts and a time reference; the fit needs 3")
    print("\n".join(report(workloads, upper=tuple(args.upper))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
