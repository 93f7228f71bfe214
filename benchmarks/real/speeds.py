"""``python -m benchmarks.real.speeds``: the runner's speeds, read from saved runs, and what they do to overheads.

A saved run keeps, per test, the baseline arm's time per call. On a shared runner that time is not one
figure: the same test took twice as long per call in one run as in the run minutes before. This reads
the saved runs of campaigns (``<out>-saved`` directories) and prints, per workload:

* ``--coverage``: each run's test put in a speed class (``slow`` when its baseline took at least
  ``SLOW`` times as long per call as the fastest run of that workload in the same directory, else
  ``fast``), with the runs per class, their median overhead and how many intervals held the frozen-heap
  reference of ``--references`` (and that reference's own time per call), or, for a workload without one,
  the median of the campaign's own runs;
* ``--verdicts``: per workload, budget and speed class, how many runs said PASS, FAIL and INCONCLUSIVE
  (a near-budget campaign's cells, split by the speed each run was measured at);
* ``--probe LOG``: each test beside the samples ``benchmarks.real.speed_probe`` took while it ran (the
  probe loop's CPU time), and per workload the correlation of the two speeds and of the overhead with
  the probe's;
* always: the least-squares slope of the log ratio on the log of the baseline's time per call, over every
  directory given: how far the overhead moves per unit of log speed (``history.machines.SPEED_SPREAD``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.real.report import read_records

SLOW = 1.4
"""Ratio to a workload's fastest run from which a run counts as measured at the slower speed."""
SMALL = 0.15
"""Workloads below this log ratio give the speed term near zero overhead; larger ones its growth with the ratio."""


@dataclass(frozen=True)
class Point:
    """One test of one saved run: where it came from, its baseline's time per call, its CPU interval (log ratio)."""

    source: str
    workload: str
    baseline: float
    low: float
    estimate: float
    high: float
    budget: float | None = None
    """The CPU budget (relative), when the run had one."""
    verdict: str = ""
    window: tuple[float, float] = (math.nan, math.nan)
    """When the test was measured, in seconds of the day (UTC): its run's end less the tests measured after it."""


def read_points(directory: Path) -> list[Point]:
    """Every test with a CPU figure in the saved runs of ``directory``."""
    points = []
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        created = document.get("created")
        end = _seconds_of_day(dt.datetime.fromisoformat(created)) if created else math.nan
        windows = []
        for test in reversed(document["tests"]):  # measured one after another, the last just before the run ended
            took = float(test.get("duration_s") or 0.0)
            windows.append((end - took, end))
            end -= took
        for test, window in zip(document["tests"], reversed(windows), strict=True):
            cpu = test["metrics"].get("cpu") or {}
            if not cpu.get("baseline") or cpu.get("overhead") is None or cpu.get("ci_low") is None:
                continue
            high = cpu.get("ci_high")
            points.append(
                Point(
                    source=directory.name,
                    workload=test["nodeid"].rsplit("::", 1)[-1].removeprefix("test_"),
                    baseline=cpu["baseline"],
                    low=math.log1p(cpu["ci_low"]),
                    estimate=math.log1p(cpu["overhead"]),
                    high=math.log1p(high) if high is not None else math.inf,
                    budget=(cpu.get("budget") or {}).get("value"),
                    verdict=cpu.get("verdict") or "",
                    window=window,
                )
            )
    return points


def references(paths: Sequence[Path]) -> dict[str, tuple[float, float, float]]:
    """Per workload, the frozen-heap reference processes' median log ratio and their baselines' time per call range."""
    found: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for record in read_records(paths):
        if record.get("type") == "reference_frozen" and record.get("log_ratio") is not None:
            found[record["workload"]].append((record["log_ratio"], record["baseline_per_call_s"]))
    return {
        workload: (statistics.median(r for r, _ in rows), min(b for _, b in rows), max(b for _, b in rows))
        for workload, rows in found.items()
    }


def speeds(points: Sequence[Point]) -> list[str]:
    """Each point's speed class: ``slow`` from ``SLOW`` times the fastest time per call of its workload in its
    directory, else ``fast``."""
    fastest: dict[tuple[str, str], float] = {}
    for p in points:
        key = (p.source, p.workload)
        fastest[key] = min(fastest.get(key, math.inf), p.baseline)
    return ["slow" if p.baseline >= SLOW * fastest[(p.source, p.workload)] else "fast" for p in points]


def slope(points: Sequence[Point]) -> float:
    """Least-squares slope of the log ratio on the log of the baseline's time per call."""
    xs = [math.log(p.baseline) for p in points]
    ys = [p.estimate for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    return math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx > 0 else 0.0


def slopes_table(points: Sequence[Point]) -> list[str]:
    by_workload: dict[str, list[Point]] = defaultdict(list)
    for point in points:
        by_workload[point.workload].append(point)
    lines = ["| workload | runs | time per call (fastest–slowest) | log ratio (median) | slope per unit of log speed |"]
    lines.append("|---|---:|---|---:|---:|")
    for workload, rows in sorted(by_workload.items()):
        times = sorted(p.baseline for p in rows)
        lines.append(
            f"| {workload} | {len(rows)} | {times[0] * 1e6:.0f}–{times[-1] * 1e6:.0f} µs "
            f"| {statistics.median(p.estimate for p in rows):.4f} | {slope(rows):+.4f} |"
        )
    small = [slope(rows) ** 2 for rows in by_workload.values() if _size(rows) < SMALL and len(rows) > 2]
    if small:
        rms = math.sqrt(statistics.fmean(small))
        lines.append(f"\nroot mean square of the slopes below a log ratio of {SMALL:g}: {rms:.4f}")
    for workload, rows in sorted(by_workload.items()):
        if _size(rows) >= SMALL:
            lines.append(f"{workload}: slope per unit of log ratio {abs(slope(rows)) / _size(rows):.4f}")
    return lines


def _size(rows: Sequence[Point]) -> float:
    return abs(statistics.median(p.estimate for p in rows))


def coverage_table(points: Sequence[Point], refs: dict[str, tuple[float, float, float]]) -> list[str]:
    lines = [
        "| campaign | workload | reference (time per call) | speed | runs | overhead (median) | held the reference |"
    ]
    lines.append("|---|---|---|---|---:|---:|---:|")
    groups: dict[tuple[str, str, str], list[Point]] = defaultdict(list)
    for point, speed in zip(points, speeds(points), strict=True):
        groups[(point.source, point.workload, speed)].append(point)
    own = {  # per campaign and workload, its runs' median: the reference where none was measured
        key: statistics.median(p.estimate for p in points if (p.source, p.workload) == key)
        for key in {(p.source, p.workload) for p in points}
    }
    for (source, workload, speed), chosen in sorted(groups.items()):
        if workload in refs:
            reference, fastest_ref, slowest_ref = refs[workload]
            said = f"{math.expm1(reference) * 100:+.1f}% ({fastest_ref * 1e6:.0f}–{slowest_ref * 1e6:.0f} µs)"
        else:
            reference = own[(source, workload)]
            said = f"{math.expm1(reference) * 100:+.1f}% (the runs' median)"
        held = sum(p.low <= reference <= p.high for p in chosen)
        lines.append(
            f"| {source} | {workload} | {said} | {speed} | {len(chosen)} "
            f"| {math.expm1(statistics.median(p.estimate for p in chosen)) * 100:+.1f}% | {held}/{len(chosen)} |"
        )
    return lines


def verdicts_table(points: Sequence[Point]) -> list[str]:
    lines = ["| workload | budget | speed | runs | PASS | FAIL | INCONCLUSIVE | overhead (median) |"]
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|")
    groups: dict[tuple[str, float, str], list[Point]] = defaultdict(list)
    for point, speed in zip(points, speeds(points), strict=True):
        if point.budget is not None:
            groups[(point.workload, point.budget, speed)].append(point)
    for (workload, budget, speed), rows in sorted(groups.items()):
        counts = Counter(p.verdict for p in rows)
        lines.append(
            f"| {workload} | {budget * 100:.2f}% | {speed} | {len(rows)} | {counts['PASS']} | {counts['FAIL']} "
            f"| {counts['INCONCLUSIVE']} | {math.expm1(statistics.median(p.estimate for p in rows)) * 100:+.1f}% |"
        )
    return lines


def _seconds_of_day(moment: dt.datetime) -> float:
    moment = moment.astimezone(dt.timezone.utc)
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


PROBE_LINE = re.compile(r"^(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) cpu_ms=(?P<cpu>[\d.]+) ")


def read_probe(path: Path) -> list[tuple[float, float]]:
    """The probe's samples (``benchmarks.real.speed_probe``): when each was taken (seconds of the day, UTC) and the
    loop's CPU time in ms."""
    samples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PROBE_LINE.match(line)
        if match:
            samples.append((int(match["h"]) * 3600 + int(match["m"]) * 60 + int(match["s"]), float(match["cpu"])))
    return samples


def _correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    return statistics.correlation(xs, ys) if len(xs) > 2 and len(set(xs)) > 1 and len(set(ys)) > 1 else math.nan


def _signed(value: float) -> str:
    return f"{value:+.2f}" if math.isfinite(value) else "—"


def probe_table(points: Sequence[Point], samples: Sequence[tuple[float, float]]) -> list[str]:
    """Each test beside the probe's samples taken while it was measured; per workload, the correlations."""
    lines = ["| measured (UTC) | workload | baseline per call | overhead | verdict | probe loop (ms, samples) |"]
    lines.append("|---|---|---:|---:|---|---|")
    paired: dict[str, list[tuple[Point, float]]] = defaultdict(list)
    for point in sorted(points, key=lambda p: p.window[0]):
        taken = [cpu for at, cpu in samples if point.window[0] <= at <= point.window[1]]
        if not taken:
            continue
        probe = statistics.median(taken)
        paired[point.workload].append((point, probe))
        start = int(point.window[0])
        lines.append(
            f"| {start // 3600:02d}:{start // 60 % 60:02d}:{start % 60:02d} | {point.workload} "
            f"| {point.baseline * 1e6:.0f} µs | {math.expm1(point.estimate) * 100:+.1f}% | {point.verdict} "
            f"| {probe:.0f} ({', '.join(f'{cpu:.0f}' for cpu in taken)}) |"
        )
    lines += ["", "| workload | tests with samples | r(log baseline, log probe) | r(log ratio, log probe) |"]
    lines.append("|---|---:|---:|---:|")
    for workload, rows in sorted(paired.items()):
        probes = [math.log(probe) for _, probe in rows]
        r_speed = _correlation([math.log(p.baseline) for p, _ in rows], probes)
        r_overhead = _correlation([p.estimate for p, _ in rows], probes)
        lines.append(f"| {workload} | {len(rows)} | {_signed(r_speed)} | {_signed(r_overhead)} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real.speeds", description=__doc__.splitlines()[0])
    parser.add_argument("saved", nargs="+", type=Path, help="<out>-saved directories of campaigns")
    parser.add_argument("--references", nargs="*", type=Path, default=[], help="results files with reference_frozen")
    parser.add_argument("--coverage", action="store_true", help="also the runs per speed and their coverage")
    parser.add_argument("--verdicts", action="store_true", help="also the verdicts per budget and speed")
    parser.add_argument("--probe", type=Path, help="benchmarks.real.speed_probe's output, taken beside the runs")
    args = parser.parse_args(argv)
    points = [point for directory in args.saved for point in read_points(directory)]
    lines = slopes_table(points)
    if args.coverage:
        lines += ["", *coverage_table(points, references(args.references))]
    if args.verdicts:
        lines += ["", *verdicts_table(points)]
    if args.probe is not None:
        lines += ["", *probe_table(points, read_probe(args.probe))]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
