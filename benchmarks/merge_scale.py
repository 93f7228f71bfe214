"""What merging shards costs: ``python -m benchmarks.merge_scale`` (50 shards of 100 tests by default).

Writes generated shard runs (each test with 200 pairs of raw samples by default, pipeline health and a
budgeted CPU metric, as a session of the installed version writes them; ``--layout`` lays the files out
as the store saves runs, as a session writes its JSON report, as sessions wrote it before (``indented``),
or, by default, as ``json.dumps`` writes them, the layout of the earlier records), then runs ``python -m
pytest_otel_overhead merge`` on them in a fresh process, writing the merged JSON and Markdown reports
(``--html`` adds the HTML report, and its size and the time it took to write), and reports its wall
time, the CPU time it took, the load average after it and its peak resident memory (the child's
``ru_maxrss``). A few tests are measured in two shards, so the combination across shards is part of
the cost. This is a benchmark, not part of the test suite; the figure means most on a quiet machine.
``--write DIR`` only writes the shards and prints the command, to merge them under ``valgrind``, whose
instruction counts a busy machine does not move (docs/sharding.md)."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_otel_overhead.history.document import compact, document_chunks, encode_test
from pytest_otel_overhead.history.merge import plugin_version_here
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.results import MetricResult, PipelineHealth, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

PAIRS = 200
# The installed version, as a session records it: a merge writes the tests of shards of its own version as read.
ENVIRONMENT = {"python": "3.11", "packages": {"pytest-otel-overhead": plugin_version_here() or "unknown"}}


def _result(nodeid: str, rng: random.Random, pairs: int) -> TestResult:
    overhead = rng.uniform(0.0, 0.08)
    low, high = overhead - 0.006, overhead + 0.006
    verdict = Verdict.FAIL if low > 0.05 else Verdict.PASS if high < 0.05 else Verdict.INCONCLUSIVE
    cpu = MetricResult(
        metric="cpu", baseline=1e-3, instrumented=1e-3 * (1 + overhead), overhead=overhead, ci_low=low, ci_high=high,
        kind="relative", n=pairs, spread=0.01, confidence=0.95, budget=Budget("relative", 0.05), verdict=verdict,
    )  # fmt: skip
    samples = []
    for _ in range(pairs):
        base = 1e-3 * math.exp(rng.gauss(0, 0.1))
        samples.append((base, base * (1 + overhead), base * 1.1, base * 1.1 * (1 + overhead)))
    return TestResult(
        nodeid=nodeid, settings=MeasureSettings(), metrics=(cpu,),
        health=PipelineHealth(calls=1000, started=3000, sampled=3000, exported=3000, export_calls=6),
        process=None, pairs=pairs, calls_per_block=10, looks=3, duration_s=2.0, stop_reason="decided",
        throughput_baseline=1000.0, throughput_instrumented=950.0, samples=tuple(samples),
    )  # fmt: skip


def _report(document: dict[str, Any]) -> str:
    """As a session writes its ``--otel-overhead-json`` report: indented, a compact test a line."""
    return "".join(document_chunks(document, [(encode_test(test),) for test in document["tests"]], report=True))


LAYOUTS: dict[str, Callable[[dict[str, Any]], str]] = {
    # As the store saves a run (``--otel-overhead-save``): compact.
    "saved": compact,
    # json.dumps's default, a space after each comma and colon (the layout of the earlier records).
    "spaced": lambda document: json.dumps(document, allow_nan=False),
    "report": _report,
    # A JSON report as sessions wrote it before its tests were written compact, a line each: indented throughout.
    "indented": lambda document: json.dumps(document, indent=2, allow_nan=False),
}


def write_shards(
    folder: Path, shards: int, tests: int, pairs: int = PAIRS, seed: int = 0, layout: str = "spaced"
) -> list[Path]:
    """``shards`` run files of ``tests`` tests each, laid out as ``LAYOUTS[layout]``; the first test of each
    shard is also in the next one."""
    rng = random.Random(seed)
    paths = []
    for shard in range(shards):
        ids = [f"tests/test_{shard}.py::test_{k}" for k in range(tests - 1)]
        ids.append(f"tests/test_{(shard + 1) % shards}.py::test_0")  # measured on two machines
        run = RunRecord(
            tuple(_result(nodeid, rng, pairs) for nodeid in ids),
            ENVIRONMENT,
            "2026-12-05T00:00:00+00:00",
            machine={"cpu_model": f"CPU {shard % 3}"},
        )
        path = folder / f"shard-{shard:03d}.json"
        path.write_text(LAYOUTS[layout](run.to_document()), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=50)
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=PAIRS, help="raw pairs kept per test")
    parser.add_argument("--html", action="store_true", help="also write the HTML report, and time it alone")
    parser.add_argument(
        "--layout", choices=sorted(LAYOUTS), default="spaced",
        help="how the shards' files are laid out: saved runs (compact), JSON reports (a test a line), JSON reports "
        "as sessions wrote them before (indented) or spaced",
    )  # fmt: skip
    parser.add_argument(
        "--write", metavar="DIR", type=Path,
        help="only write the shards into DIR (to merge them under valgrind, for instance) and print the command",
    )  # fmt: skip
    args = parser.parse_args()
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        paths = write_shards(args.write, args.shards, args.tests, args.pairs, layout=args.layout)
        print(f"python -m pytest_otel_overhead merge {args.write}/shard-*.json --expect {len(paths)}", end=" ")
        print("--json merged.json --markdown merged.md")
        return 0
    with tempfile.TemporaryDirectory(prefix="otel-overhead-merge-") as tmp:
        folder = Path(tmp)
        paths = write_shards(folder, args.shards, args.tests, args.pairs, layout=args.layout)
        size = sum(p.stat().st_size for p in paths)
        command = [sys.executable, "-m", "pytest_otel_overhead", "merge", *map(str, paths), "--expect", str(len(paths))]
        outputs = ["--json", str(folder / "merged.json"), "--markdown", str(folder / "merged.md")]
        if args.html:
            outputs += ["--html", str(folder / "merged.html")]
        began = time.perf_counter()
        done = subprocess.run([*command, *outputs], capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - began
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mib, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
        if done.returncode not in (0, 1):
            print(done.stderr, file=sys.stderr)
            return 2
        shape = f"{args.shards} shards x {args.tests} tests x {args.pairs} pairs ({size / 2**20:.1f} MiB of runs"
        shape += f", {args.layout})"
        print(f"{shape}: merged in {elapsed:.2f} s ({cpu:.2f} s of CPU; load average {os.getloadavg()[0]:.1f})")
        print(f"peak resident memory {peak_mib:.0f} MiB; {done.stdout.splitlines()[-4]}")
        if args.html:  # the page alone, from the merged run: its size and the time to write it
            report = [sys.executable, "-m", "pytest_otel_overhead", "report", str(folder / "merged.json")]
            began = time.perf_counter()
            subprocess.run([*report, "--html", str(folder / "alone.html")], capture_output=True, check=True)
            alone = time.perf_counter() - began
            page = (folder / "merged.html").stat().st_size / 2**20
            print(f"HTML report {page:.1f} MiB; written alone from the merged run in {alone:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
