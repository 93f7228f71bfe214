"""The measurements behind the estimated-cycles calibration: counts per workload, and time references.

``python -m benchmarks.cycles_runs counts --run NAME --out FILE [--load N]`` runs the real workloads
(``real_workloads/test_counted.py``, opened again in each forked process) and the memory-heavy ones
(``test_memory.py``) in instructions mode, in a copy of that project with an empty ``pytest.ini``,
and appends one record per workload to ``FILE`` (JSON lines): each process's counts per call
(instructions, first- and last-level misses, per arm), the simulated caches and weights, the time
per test, the load average while it ran.

``python -m benchmarks.cycles_runs time --out FILE [TESTS...]`` measures time references in time
mode (``processes=3``, the engine's frozen-heap regime) and appends one record per workload.

``--load N`` keeps N busy processes (``while True: pass``) running beside the run; they are
stopped when it ends. :mod:`benchmarks.cycles_calibration` reads the records and fits the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["WORKLOAD_TESTS", "counts_records", "main", "time_records"]

PROJECT = Path(__file__).parent / "real_workloads"
WORKLOAD_TESTS = {
    "flask": "test_counted.py::test_flask",
    "fastapi": "test_counted.py::test_fastapi",
    "requests": "test_counted.py::test_requests",
    "sqlite3": "test_counted.py::test_sqlite3",
    "manual": "test_counted.py::test_manual",
    "attributes": "test_memory.py::test_attributes",
    "many_spans": "test_memory.py::test_many_spans",
    "batch_queue": "test_memory.py::test_batch_queue",
}
LOAD_EVERY_S = 5.0


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` processes spinning on a CPU each, stopped (by their own ids) on the way out."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@contextmanager
def load_sampler() -> Iterator[list[float]]:
    """The 1-minute load average, sampled every ``LOAD_EVERY_S`` while the block runs."""
    samples: list[float] = [os.getloadavg()[0]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(LOAD_EVERY_S):
            samples.append(os.getloadavg()[0])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()
        samples.append(os.getloadavg()[0])


def run_pytest(args: Sequence[str], tests: Sequence[str], log: Path) -> dict[str, Any]:
    """The project's tests in a temporary copy; returns the JSON report's tests by workload name."""
    with tempfile.TemporaryDirectory(prefix="cycles-") as directory:
        root = Path(directory)
        for source in PROJECT.glob("*.py"):
            shutil.copy(source, root / source.name)
        (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        report = root / "report.json"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-v"]
        command += ["--otel-overhead", f"--otel-overhead-json={report}", *args, *tests]
        with log.open("a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            subprocess.run(command, cwd=root, stdout=out, stderr=subprocess.STDOUT, check=False)
        by_node = {test["nodeid"]: test for test in json.loads(report.read_text(encoding="utf-8"))["tests"]}
    return {name: by_node[node] for name, node in WORKLOAD_TESTS.items() if node in by_node}


def counts_records(run: str, tests: dict[str, Any], load: Sequence[float], busy: int) -> list[dict[str, Any]]:
    records = []
    for name, test in tests.items():
        samples = test["instruction_samples"]
        records.append(
            {
                "type": "counts",
                "run": run,
                "workload": name,
                "busy_processes": busy,
                "load_average": [min(load), max(load)],
                "duration_s": test["duration_s"],
                "cycle_model": test["cycle_model"],
                "columns": samples["columns"],
                "per_process_per_call": samples["per_process_per_call"],
                "plugin_cycles": test["metrics"]["cycles"]["overhead"],
                "plugin_instructions": test["metrics"]["instructions"]["overhead"],
            }
        )
    return records


def time_records(run: str, tests: dict[str, Any], load: Sequence[float]) -> list[dict[str, Any]]:
    records = []
    for name, test in tests.items():
        cpu = test["metrics"]["cpu"]
        records.append(
            {
                "type": "time",
                "run": run,
                "workload": name,
                "regime": "frozen",
                "source": "plugin, time mode, processes=3",
                "reference": cpu["overhead"],
                "ci": [cpu["ci_low"], cpu["ci_high"]],
                "load_average": [min(load), max(load)],
            }
        )
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cycles_runs", description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("counts", "time"))
    parser.add_argument("workloads", nargs="*", default=list(WORKLOAD_TESTS), help="workload names (all by default)")
    parser.add_argument("--run", default=time.strftime("%Y%m%d-%H%M"))
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file the records are appended to")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the run")
    args = parser.parse_args(argv)
    tests = [WORKLOAD_TESTS[name] for name in args.workloads]
    mode = ["--otel-overhead-mode=instructions"] if args.kind == "counts" else ["--otel-overhead-processes=3"]
    log = args.out.with_suffix(".log")
    with busy_processes(args.load), load_sampler() as load:
        measured = run_pytest(mode, tests, log)
    if args.kind == "counts":
        records = counts_records(args.run, measured, load, args.load)
    else:
        records = time_records(args.run, measured, load)
    with args.out.open("a", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    print(f"{len(records)} records appended to {args.out}; load average {min(load):.2f}-{max(load):.2f}")
    return 0 if len(records) == len(tests) else 1


if __name__ == "__main__":
    raise SystemExit(main())
