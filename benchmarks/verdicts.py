"""How often the plugin's verdicts are right, and how fast: ``python -m benchmarks.verdicts``.

Runs the real plugin end to end (pytest subprocesses with ``--otel-overhead`` and
``--otel-overhead-json``, results read from the JSON) on workloads with a known injected overhead
(0 = A/A, 2.5%, 5%, 6%, 7.5%, 10%) at three workload sizes (~0.1 ms, 1 ms, 20 ms per call), many
trials each, and the same workloads through the naive two-run method (pytest-benchmark style: a
baseline run, then a separate instrumented run, medians of per-call times compared against 5%).
Prints, per true overhead and size, how often each verdict came out and how long it took.

Every trial is written to a JSON-lines file as soon as its pytest process ends, so an interrupted
run keeps what it measured; ``--report FILE`` prints the table of such a file again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import math
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from .workloads import (
    Calibration,
    NaiveCell,
    PluginTrial,
    calibrate,
    naive_test_file,
    plugin_test_file,
)

BUDGET = 0.05
"""The budget every trial is judged against: the plugin's default (5% CPU)."""
DEFAULT_MAX_TIME = 30.0
"""The plugin's default max_time; the harness passes no setting unless --max-time is given."""
SIZES_MS = (0.1, 1.0, 20.0)
OVERHEADS = (0.0, 0.025, 0.05, 0.06, 0.075, 0.10)

# Trials per (true overhead, size in ms) of the full run, fixed before the full run and set by the
# wall-time budget alone (~60 minutes on two shared cores, where one trial takes ~5 s at best because
# of the plugin's fixed costs, and ~30 s when it runs to max_time): 300 A/A trials; 30 per overhead at
# 1 ms, except 6 at exactly 5%, where nearly every trial runs to max_time; fewer at 0.1 ms and 20 ms.
FULL_PLAN: dict[float, dict[float, int]] = {
    0.0: {0.1: 100, 1.0: 100, 20.0: 100},
    0.025: {0.1: 10, 1.0: 30, 20.0: 10},
    0.05: {0.1: 3, 1.0: 6, 20.0: 3},
    0.06: {0.1: 6, 1.0: 30, 20.0: 6},
    0.075: {0.1: 10, 1.0: 30, 20.0: 10},
    0.10: {0.1: 10, 1.0: 30, 20.0: 10},
}
FULL_NAIVE_ROUNDS = 12
QUICK_TRIALS = 1
QUICK_AA_TRIALS = 1
QUICK_NAIVE_ROUNDS = 1
QUICK_MAX_TIME = 10.0
CHUNK = 10
"""Trials per pytest process: amortizes start-up; a crash or time-out loses one chunk only."""

# Prior guesses of seconds per trial, used for the progress line's ETA until real figures come in.
_PRIOR_SECONDS = {0.0: 5.0, 0.025: 6.0, 0.05: 33.0, 0.06: 15.0, 0.075: 6.0, 0.10: 5.0}
_STARTUP_S = 1.5
_DROPPED_ENV = ("PYTHONHASHSEED", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")

Record = dict[str, Any]


# --------------------------------------------------------------------------------------------- plan


@dataclass
class Plan:
    sizes_ms: tuple[float, ...]
    overheads: tuple[float, ...]
    trials: dict[tuple[float, float], int]
    """Trials per (overhead, size_ms)."""
    naive_rounds: int
    naive_seconds: float
    max_time: float | None
    chunk: int
    seed: int
    deadline_min: float | None = None
    freeze: bool = False
    """Run the pytest processes on a copy of the package taken at the start, so edits to the source
    tree during the run cannot mix engine versions."""
    """Start no new pytest process after this many minutes (the trial order is random, so a
    run stopped there holds a random subset of the plan)."""

    def as_dict(self) -> Record:
        return {
            "sizes_ms": list(self.sizes_ms),
            "overheads": list(self.overheads),
            "trials": [{"overhead": o, "size_ms": s, "trials": n} for (o, s), n in sorted(self.trials.items())],
            "naive_rounds": self.naive_rounds,
            "naive_seconds": self.naive_seconds,
            "max_time": self.max_time,
            "chunk": self.chunk,
            "seed": self.seed,
            "deadline_min": self.deadline_min,
            "freeze": self.freeze,
        }


def _parse_list(text: str, scale: float = 1.0) -> tuple[float, ...]:
    values = []
    for part in text.split(","):
        part = part.strip().removesuffix("%").removesuffix("ms").strip()
        if part:
            values.append(round(float(part) * scale, 6))
    if not values:
        raise argparse.ArgumentTypeError(f"no values in {text!r}")
    return tuple(values)


def build_plan(args: argparse.Namespace) -> Plan:
    sizes = args.sizes or SIZES_MS
    overheads = args.overheads or OVERHEADS
    trials: dict[tuple[float, float], int] = {}
    for overhead in overheads:
        for size in sizes:
            if overhead == 0.0 and args.aa_trials is not None:
                n = args.aa_trials
            elif overhead != 0.0 and args.trials is not None:
                n = args.trials
            elif args.quick:
                n = QUICK_AA_TRIALS if overhead == 0.0 else QUICK_TRIALS
            else:
                n = FULL_PLAN.get(overhead, {}).get(size, FULL_PLAN[0.025][1.0])
            if n > 0:
                trials[(overhead, size)] = n
    naive_rounds = args.naive_rounds
    if naive_rounds is None:
        naive_rounds = QUICK_NAIVE_ROUNDS if args.quick else FULL_NAIVE_ROUNDS
    max_time = args.max_time if args.max_time is not None else (QUICK_MAX_TIME if args.quick else None)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    return Plan(
        sizes_ms=tuple(sizes),
        overheads=tuple(overheads),
        trials=trials,
        naive_rounds=naive_rounds,
        naive_seconds=args.naive_seconds,
        max_time=max_time,
        chunk=args.chunk,
        seed=seed,
        deadline_min=args.deadline,
        freeze=args.freeze,
    )


# --------------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _load() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def environment() -> Record:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _memory_bytes(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {
            p: _version(p) for p in ("pytest-otel-overhead", "pytest", "opentelemetry-api", "opentelemetry-sdk")
        },
        "load_average": _load(),
    }


_FROZEN: list[Path] = []
"""Where the frozen copy of the package lives, when --freeze is given (set once by ``run``)."""


def package_dir() -> Path:
    spec = importlib.util.find_spec("pytest_otel_overhead")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pytest_otel_overhead is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def source_digest(directory: Path) -> str:
    """SHA-256 over the package's Python sources: which engine a pytest process loaded."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _engine_digest() -> str:
    return source_digest(_FROZEN[0] / "pytest_otel_overhead" if _FROZEN else package_dir())


def _child_env() -> dict[str, str]:
    """The environment of the pytest processes: the plugin's defaults, a random hash seed."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and not (k.startswith("OTEL_") or k == "OTEL")}
    if _FROZEN:
        env["PYTHONPATH"] = os.pathsep.join([str(_FROZEN[0]), *filter(None, [env.get("PYTHONPATH")])])
    return env


# ---------------------------------------------------------------------------------------- runs


@dataclass
class _Outcome:
    returncode: int | None
    wall_s: float
    log_tail: str
    error: str | None = None


def _run_pytest(workdir: Path, test_file: Path, args: Sequence[str], timeout: float) -> _Outcome:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, test_file.name]
    log = workdir / (test_file.stem + ".log")
    started = time.perf_counter()
    error = None
    returncode: int | None = None
    with log.open("w", encoding="utf-8") as out:
        try:
            completed = subprocess.run(
                command, cwd=workdir, env=_child_env(), stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            )
            returncode = completed.returncode
        except subprocess.TimeoutExpired:
            error = f"timed out after {timeout:.0f} s"
    wall = time.perf_counter() - started
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
    if error is None and returncode not in (0, 1):  # 1: some tests failed, i.e. FAIL verdicts
        error = f"pytest exited with {returncode}"
    return _Outcome(returncode, wall, tail, error)


def _trial_id(nodeid: str) -> str | None:
    if "[" not in nodeid or not nodeid.endswith("]"):
        return None
    return nodeid.rsplit("[", 1)[1][:-1]


def run_plugin_chunk(
    trials: Sequence[PluginTrial], workdir: Path, index: int, plan: Plan, calibration: Calibration
) -> tuple[list[Record], Record]:
    """One pytest process measuring ``trials``; one record per trial, plus the chunk's record."""
    test_file = workdir / f"test_chunk{index:03d}.py"
    report = workdir / f"chunk{index:03d}.json"
    test_file.write_text(plugin_test_file(trials), encoding="utf-8")
    args = ["--otel-overhead", "--otel-overhead-json", str(report)]
    if plan.max_time is not None:
        args += ["--otel-overhead-max-time", f"{plan.max_time:g}"]
    cap = plan.max_time if plan.max_time is not None else DEFAULT_MAX_TIME
    load_before = _load()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    digest = _engine_digest()
    outcome = _run_pytest(workdir, test_file, args, timeout=60 + len(trials) * (cap + 15))
    load_after = _load()
    by_id: dict[str, Record] = {}
    if report.exists():
        document = json.loads(report.read_text(encoding="utf-8"))
        for test in document.get("tests", []):
            trial_id = _trial_id(test["nodeid"])
            if trial_id is not None:
                by_id[trial_id] = test
    records = []
    for trial in trials:
        test = by_id.get(trial.id)
        record: Record = {
            "type": "trial",
            "method": "plugin",
            "id": trial.id,
            "chunk": index,
            "size_ms": trial.size_ms,
            "overhead": trial.overhead,
            "effective_overhead": calibration.effective_overhead(trial.base, trial.extra),
            "base": trial.base,
            "extra": trial.extra,
            "load_before": load_before,
            "engine": digest,
        }
        if test is None:
            record.update(verdict="ERROR", error=outcome.error or "no result in the JSON report")
        else:
            cpu = test["metrics"]["cpu"]
            record.update(
                verdict=test["verdict"],
                duration_s=test["duration_s"],
                estimate=cpu["overhead"],
                ci_low=cpu["ci_low"],
                ci_high=cpu["ci_high"],
                spread=cpu["spread"],
                wall_estimate=test["metrics"]["wall"]["overhead"],
                pairs=test["pairs"],
                looks=test["looks"],
                calls_per_block=test["calls_per_block"],
                stop_reason=test["stop_reason"],
                note=cpu["note"],
                max_time=test["settings"]["max_time_s"],
            )
        records.append(record)
    chunk: Record = {
        "type": "chunk",
        "method": "plugin",
        "index": index,
        "started": started,
        "engine": digest,
        "trials": len(trials),
        "wall_s": outcome.wall_s,
        "returncode": outcome.returncode,
        "error": outcome.error,
        "load_before": load_before,
        "load_after": load_after,
    }
    if outcome.error:
        chunk["log_tail"] = outcome.log_tail
    return records, chunk


def _read_naive(path: Path) -> dict[str, Record]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["cell"]: row for row in rows}


def run_naive_round(
    sizes: Sequence[tuple[float, int]],
    cells: Sequence[NaiveCell],
    workdir: Path,
    index: int,
    plan: Plan,
    rng: random.Random,
) -> tuple[list[Record], Record]:
    """The naive method, one round: a baseline pytest run, then a separate instrumented one.

    The baseline run measures each size once (like a saved pytest-benchmark run that later
    changes are compared against); the instrumented run then measures every (size, overhead) cell,
    in random order. Verdict per cell: FAIL when median(instrumented) / median(baseline) - 1 is above
    the budget, else PASS.
    """
    base_cells = [NaiveCell(f"b{i}", size, 0.0, base, 0) for i, (size, base) in enumerate(sizes)]
    order = list(cells)
    rng.shuffle(order)
    results: dict[bool, dict[str, Record]] = {}
    outcomes: dict[bool, _Outcome] = {}
    load_before = _load()
    for instrumented, run_cells in ((False, base_cells), (True, order)):
        arm = "instrumented" if instrumented else "baseline"
        out = workdir / f"naive{index:03d}-{arm}.jsonl"
        test_file = workdir / f"test_naive{index:03d}_{arm}.py"
        test_file.write_text(
            naive_test_file(run_cells, instrumented=instrumented, seconds=plan.naive_seconds, out=str(out)),
            encoding="utf-8",
        )
        outcomes[instrumented] = _run_pytest(
            workdir, test_file, [], timeout=60 + len(run_cells) * (plan.naive_seconds * 3 + 20)
        )
        results[instrumented] = _read_naive(out)
    baseline_of = {c.size_ms: results[False].get(c.id) for c in base_cells}
    records = []
    for cell in cells:
        b, i = baseline_of.get(cell.size_ms), results[True].get(cell.id)
        record: Record = {
            "type": "trial",
            "method": "naive",
            "id": f"n{index:03d}-{cell.id}",
            "round": index,
            "size_ms": cell.size_ms,
            "overhead": cell.overhead,
            "base": cell.base,
            "extra": cell.extra,
            "load_before": load_before,
        }
        if b is None or i is None:
            error = outcomes[False].error if b is None else outcomes[True].error
            record.update(verdict="ERROR", error=error or "no result")
        else:
            estimate = i["median_s"] / b["median_s"] - 1
            record.update(
                verdict="FAIL" if estimate > BUDGET else "PASS",
                estimate=estimate,
                cpu_estimate=i["cpu_per_call_s"] / b["cpu_per_call_s"] - 1,
                baseline_median_s=b["median_s"],
                instrumented_median_s=i["median_s"],
                baseline_calls=b["calls"],
                instrumented_calls=i["calls"],
                duration_s=2 * plan.naive_seconds,
            )
        records.append(record)
    chunk: Record = {
        "type": "chunk",
        "method": "naive",
        "index": index,
        "trials": len(cells),
        "wall_s": outcomes[False].wall_s + outcomes[True].wall_s,
        "returncode": [outcomes[False].returncode, outcomes[True].returncode],
        "error": outcomes[False].error or outcomes[True].error,
        "load_before": load_before,
        "load_after": _load(),
    }
    if chunk["error"]:
        chunk["log_tail"] = (outcomes[False].log_tail + "\n" + outcomes[True].log_tail).strip()
    return records, chunk


# -------------------------------------------------------------------------------------- driver


@dataclass
class _Progress:
    plan: Plan
    total_plugin: int
    started: float = field(default_factory=time.perf_counter)
    done_plugin: int = 0
    done_rounds: int = 0
    seconds: dict[float, list[float]] = field(default_factory=lambda: defaultdict(list))
    tally: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, records: Iterable[Record]) -> None:
        for r in records:
            if r["method"] == "plugin":
                self.done_plugin += 1
                self.tally[r["verdict"]] += 1
                if "duration_s" in r:
                    self.seconds[r["overhead"]].append(r["duration_s"])

    def eta(self, remaining: Sequence[PluginTrial], naive_round_s: float | None, chunks_left: int) -> float:
        total = 0.0
        for trial in remaining:
            seen = self.seconds.get(trial.overhead)
            total += statistics.mean(seen) if seen else _PRIOR_SECONDS.get(trial.overhead, 10.0)
        rounds_left = self.plan.naive_rounds - self.done_rounds
        per_round = naive_round_s or (2 * _STARTUP_S + self.plan.naive_seconds * 4 * len(self.plan.sizes_ms) * 2)
        return total + rounds_left * per_round + chunks_left * _STARTUP_S

    def line(self, what: str, eta: float) -> str:
        elapsed = time.perf_counter() - self.started
        load = _load()
        tally = " ".join(f"{k} {v}" for k, v in sorted(self.tally.items()))
        return (
            f"[{dt.datetime.now():%H:%M:%S}] {what}; plugin {self.done_plugin}/{self.total_plugin} ({tally}), "
            f"naive rounds {self.done_rounds}/{self.plan.naive_rounds}; elapsed {elapsed / 60:.1f} min, "
            f"ETA {eta / 60:.1f} min; load {' '.join(f'{x:.2f}' for x in load) if load else 'n/a'}"
        )


def _schedule(plan: Plan, calibration: Calibration) -> list[PluginTrial]:
    trials = []
    for (overhead, size), n in sorted(plan.trials.items()):
        base = calibration.iterations(size / 1000)
        extra = round(base * overhead)
        for _ in range(n):
            trials.append(PluginTrial("", size, overhead, base, extra))
    rng = random.Random(plan.seed)
    rng.shuffle(trials)  # cells interleaved over the whole run, so drift and load hit all alike
    return [PluginTrial(f"t{i:04d}", t.size_ms, t.overhead, t.base, t.extra) for i, t in enumerate(trials)]


def _chunks(items: Sequence[PluginTrial], size: int) -> Iterator[list[PluginTrial]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _write(stream: TextIO, record: Record) -> None:
    stream.write(json.dumps(record, allow_nan=False, default=_json_default) + "\n")
    stream.flush()


def _json_default(value: object) -> object:
    raise TypeError(f"not JSON: {value!r}")


def run(plan: Plan, out_path: Path, argv: Sequence[str]) -> list[Record]:
    say = _say
    say(f"calibrating the busy loop ({os.cpu_count()} CPUs, load {_load()}) ...")
    calibration = calibrate()
    sizes = [(s, calibration.iterations(s / 1000)) for s in plan.sizes_ms]
    say(
        f"  {calibration.seconds_per_iteration * 1e9:.1f} ns CPU per iteration, "
        f"{calibration.fixed_seconds_per_call * 1e6:.2f} µs per call outside the loop; iterations per call: "
        + ", ".join(f"{s:g} ms → {n}" for s, n in sizes)
    )
    trials = _schedule(plan, calibration)
    chunks = list(_chunks(trials, plan.chunk))
    naive_cells = [
        NaiveCell(f"c{i}", size, overhead, base, round(base * overhead))
        for i, ((size, base), overhead) in enumerate((s, o) for s in sizes for o in plan.overheads)
    ]
    # Naive rounds spread evenly between the plugin's chunks, so both methods see the same hour.
    naive_after: dict[int, int] = defaultdict(int)
    for k in range(plan.naive_rounds):
        naive_after[min(len(chunks), math.floor((k + 0.5) * len(chunks) / plan.naive_rounds)) if chunks else 0] += 1
    out_path.parent.mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    progress = _Progress(plan, total_plugin=len(trials))
    rng = random.Random(plan.seed + 1)
    naive_round_s: list[float] = []
    interrupted = False
    stopped: str | None = None
    started = time.perf_counter()

    def past_deadline() -> bool:
        return plan.deadline_min is not None and time.perf_counter() - started >= plan.deadline_min * 60

    with out_path.open("w", encoding="utf-8") as stream, tempfile.TemporaryDirectory(prefix="otel-verdicts-") as tmp:
        workdir = Path(tmp)
        if plan.freeze:
            shutil.copytree(package_dir(), workdir / "engine" / "pytest_otel_overhead")
            _FROZEN[:] = [workdir / "engine"]
        (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # keep any outer config out
        _write(
            stream,
            {
                "type": "run",
                "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(["python -m benchmarks.verdicts", shlex.join(argv)]).strip(),
                "budget": BUDGET,
                "plan": plan.as_dict(),
                "calibration": calibration.as_dict(),
                "iterations": {f"{s:g}": n for s, n in sizes},
                "engine": _engine_digest(),
                "environment": environment(),
            },
        )
        say(
            f"{len(trials)} plugin trials in {len(chunks)} pytest processes, {plan.naive_rounds} naive rounds of "
            f"{len(naive_cells)} cells; results → {out_path}"
        )

        def naive_rounds(count: int) -> None:
            for _ in range(count):
                if past_deadline():
                    return
                index = progress.done_rounds
                recs, chunk = run_naive_round(sizes, naive_cells, workdir, index, plan, rng)
                for r in [*recs, chunk]:
                    _write(stream, r)
                records.extend(recs)
                naive_round_s.append(chunk["wall_s"])
                progress.done_rounds += 1
                if chunk["error"]:
                    say(f"  naive round {index}: {chunk['error']}\n{chunk.get('log_tail', '')}")
                remaining = [t for c in chunks[done_chunks:] for t in c]
                eta = progress.eta(remaining, statistics.mean(naive_round_s), len(chunks) - done_chunks)
                say(progress.line(f"naive round {index + 1} in {chunk['wall_s']:.0f} s", eta))

        done_chunks = 0
        try:
            naive_rounds(naive_after.get(0, 0))
            for index, chunk_trials in enumerate(chunks):
                if past_deadline():
                    stopped = f"deadline of {plan.deadline_min:g} min: stopped after {done_chunks}/{len(chunks)} chunks"
                    say(stopped)
                    break
                recs, chunk_record = run_plugin_chunk(chunk_trials, workdir, index, plan, calibration)
                for r in [*recs, chunk_record]:
                    _write(stream, r)
                records.extend(recs)
                progress.add(recs)
                done_chunks = index + 1
                if chunk_record["error"]:
                    say(f"  chunk {index}: {chunk_record['error']}\n{chunk_record.get('log_tail', '')}")
                remaining = [t for c in chunks[done_chunks:] for t in c]
                eta = progress.eta(
                    remaining, statistics.mean(naive_round_s) if naive_round_s else None, len(chunks) - done_chunks
                )
                say(progress.line(f"chunk {done_chunks}/{len(chunks)} in {chunk_record['wall_s']:.0f} s", eta))
                naive_rounds(naive_after.get(done_chunks, 0))
        except KeyboardInterrupt:
            interrupted = True
            say("interrupted: the table below covers the trials finished so far")
        _write(
            stream,
            {
                "type": "end",
                "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "wall_s": time.perf_counter() - started,
                "interrupted": interrupted,
                "stopped": stopped,
                "load_average": _load(),
            },
        )
    return records


def _say(message: str) -> None:
    print(message, flush=True)


# -------------------------------------------------------------------------------------- report


def read_records(path: Path) -> list[Record]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_reports(specs: Sequence[str]) -> list[Record]:
    """Records of several results files; ``FILE@N`` keeps only the plugin's chunks N and later of FILE.

    (One use: leave out the pytest processes that started before a change to the measured code.)
    """
    records: list[Record] = []
    for spec in specs:
        path, _, first = spec.partition("@")
        start = int(first) if first else 0
        for r in read_records(Path(path)):
            if r.get("method") == "plugin" and r.get("type") in ("trial", "chunk"):
                index = r["chunk"] if r["type"] == "trial" else r["index"]
                if index < start:
                    continue
            records.append(r)
    return records


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def _signed(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:+.1f}%"


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _by_cell(trials: Iterable[Record], method: str) -> dict[tuple[float, float], list[Record]]:
    cells: dict[tuple[float, float], list[Record]] = defaultdict(list)
    for r in trials:
        if r.get("type") == "trial" and r["method"] == method:
            cells[(r["overhead"], r["size_ms"])].append(r)
    return cells


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def table_rows(records: Sequence[Record]) -> list[list[str]]:
    plugin = _by_cell(records, "plugin")
    naive = _by_cell(records, "naive")
    rows = []
    for key in sorted(set(plugin) | set(naive)):
        overhead, size = key
        p = [r for r in plugin.get(key, []) if r["verdict"] != "ERROR"]
        n = [r for r in naive.get(key, []) if r["verdict"] != "ERROR"]
        count = defaultdict(int, {v: sum(r["verdict"] == v for r in p) for v in ("PASS", "FAIL", "INCONCLUSIVE")})
        times = [r["duration_s"] for r in p]
        estimates = [r["estimate"] for r in p if r.get("estimate") is not None]
        effective = [r["effective_overhead"] for r in p] or [overhead]
        naive_fail = sum(r["verdict"] == "FAIL" for r in n)
        naive_est = [r["estimate"] for r in n]
        errors = len(plugin.get(key, [])) - len(p) + len(naive.get(key, [])) - len(n)
        rows.append(
            [
                f"{overhead * 100:g}%",
                f"{statistics.median(effective) * 100:.2f}%",
                f"{size:g} ms",
                str(len(p)),
                _pct(count["PASS"], len(p)),
                _pct(count["FAIL"], len(p)),
                _pct(count["INCONCLUSIVE"], len(p)),
                _signed(statistics.median(estimates) if estimates else None),
                _secs(statistics.median(times) if times else None),
                _secs(max(times) if times else None),
                str(len(n)),
                _pct(len(n) - naive_fail, len(n)),
                _pct(naive_fail, len(n)),
                _signed(statistics.median(naive_est) if naive_est else None),
                (f"{_signed(min(naive_est))}…{_signed(max(naive_est))}" if naive_est else "–"),
            ]
            + ([f"{errors} errors"] if errors else [])
        )
    return rows


HEADER = [
    "true",
    "effective",
    "size",
    "n",
    "PASS",
    "FAIL",
    "INCONCL.",
    "est. (median)",
    "time med",
    "time max",
    "naive n",
    "naive PASS",
    "naive FAIL",
    "naive est. (median)",
    "naive est. min…max",
]


def format_table(records: Sequence[Record], markdown: bool = False) -> str:
    rows = table_rows(records)
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---:" for _ in HEADER) + "|"]
        lines += ["| " + " | ".join(row[: len(HEADER)]) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(HEADER)]
    lines = [
        "plugin: paired blocks, sequential looks (budget 5% CPU)".ljust(sum(widths[:10]) + 2 * 9)
        + " | naive: two separate runs, median per-call wall time vs 5%",
        "  ".join(h.rjust(w) for h, w in zip(HEADER, widths, strict=True)),
    ]
    for row in rows:
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=False)) + "".join(row[len(HEADER) :]))
    return "\n".join(lines)


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def targets(records: Sequence[Record]) -> list[str]:
    """Each target of the issue, measured: met or missed, and by how much."""
    plugin = [r for r in records if r.get("type") == "trial" and r["method"] == "plugin" and r["verdict"] != "ERROR"]
    naive = [r for r in records if r.get("type") == "trial" and r["method"] == "naive" and r["verdict"] != "ERROR"]
    lines = []

    def rate(rs: Sequence[Record], verdict: str) -> tuple[int, int]:
        return sum(r["verdict"] == verdict for r in rs), len(rs)

    def check(label: str, overhead: float, verdict: str, at_least: float) -> None:
        for method, pool in (("plugin", plugin), ("naive", naive)):
            rs = [r for r in pool if r["overhead"] == overhead]
            k, n = rate(rs, verdict)
            if not n:
                continue
            low, high = _wilson(k, n)
            per_size = ", ".join(
                f"{s:g} ms {_pct(*rate([r for r in rs if r['size_ms'] == s], verdict))}"
                for s in sorted({r["size_ms"] for r in rs})
            )
            met = "met" if k / n >= at_least else f"MISSED by {100 * (at_least - k / n):.1f} points"
            lines.append(
                f"{label} [{method}]: {k}/{n} = {100 * k / n:.1f}% (95% CI {100 * low:.0f}–{100 * high:.0f}%; "
                f"{per_size}): {met}"
            )

    for method, pool in (("plugin", plugin), ("naive", naive)):
        aa = [r for r in pool if r["overhead"] == 0.0]
        if aa:
            k, n = rate(aa, "FAIL")
            low, high = _wilson(k, n)
            lines.append(
                f"A/A, no FAIL in 300 trials [{method}]: {k} FAIL in {n} "
                f"(95% CI {100 * low:.1f}–{100 * high:.1f}%): {'met' if k == 0 else 'MISSED'}"
                + ("" if n >= 300 else f" (only {n} trials)")
            )
    check("true 7.5% → FAIL ≥95%", 0.075, "FAIL", 0.95)
    check("true 2.5% → PASS ≥95%", 0.025, "PASS", 0.95)
    check("true 6% → FAIL ≥80%", 0.06, "FAIL", 0.80)
    one_ms = [r["duration_s"] for r in plugin if r["size_ms"] == 1.0]
    if one_ms:
        med = statistics.median(one_ms)
        by_overhead: dict[float, list[float]] = defaultdict(list)
        for r in plugin:
            if r["size_ms"] == 1.0:
                by_overhead[r["overhead"]].append(r["duration_s"])
        per = ", ".join(f"{o * 100:g}% {statistics.median(ts):.1f} s" for o, ts in sorted(by_overhead.items()))
        lines.append(
            f"median time to verdict ≤10 s at 1 ms: {med:.1f} s over all {len(one_ms)} trials ({per}): "
            + ("met" if med <= 10 else f"MISSED by {med - 10:.1f} s")
        )
    if plugin:
        worst = max(plugin, key=lambda r: r["duration_s"] - r.get("max_time", DEFAULT_MAX_TIME))
        over = [r for r in plugin if r["duration_s"] > r.get("max_time", DEFAULT_MAX_TIME)]
        lines.append(
            f"never beyond the cap: longest {worst['duration_s']:.2f} s against max_time "
            f"{worst.get('max_time', DEFAULT_MAX_TIME):g} s; {len(over)} trial(s) over: "
            + ("met" if not over else "MISSED")
        )
    return lines


def summary(records: Sequence[Record]) -> list[str]:
    """Run facts: wall time, load averages, errors, stop reasons."""
    run_records = [r for r in records if r.get("type") == "run"]
    end = [r for r in records if r.get("type") == "end"]
    chunks = [r for r in records if r.get("type") == "chunk"]
    lines = []
    if run_records:
        env = run_records[0]["environment"]
        lines.append(
            f"machine: {env['nproc']} CPUs, {env['cpu_model']}, {(env['memory_bytes'] or 0) / 2**30:.1f} GiB, "
            f"Python {env['python']}, " + ", ".join(f"{k} {v}" for k, v in env["packages"].items())
        )
        cal = run_records[0]["calibration"]
        lines.append(
            f"calibration: {cal['seconds_per_iteration'] * 1e9:.2f} ns/iteration, "
            f"{cal['fixed_seconds_per_call'] * 1e6:.2f} µs fixed per call; iterations: {run_records[0]['iterations']}"
        )
        lines.append(f"command: {run_records[0]['command']}")
    if end:
        interrupted = " (interrupted)" if end[-1]["interrupted"] else ""
        if end[-1].get("stopped"):
            interrupted += f" ({end[-1]['stopped']})"
        lines.append(f"wall time: {end[-1]['wall_s'] / 60:.1f} min{interrupted}")
    loads = [c["load_before"][0] for c in chunks if c.get("load_before")]
    if loads:
        lines.append(
            f"1-min load average at the start of each pytest process: min {min(loads):.2f}, "
            f"median {statistics.median(loads):.2f}, p90 {_quantile(loads, 0.9):.2f}, max {max(loads):.2f}"
        )
    errors = [c for c in chunks if c.get("error")]
    if errors:
        lines.append(f"{len(errors)} pytest process(es) with errors: " + "; ".join(str(c["error"]) for c in errors))
    stops: dict[str, int] = defaultdict(int)
    for r in records:
        if r.get("type") == "trial" and r["method"] == "plugin" and "stop_reason" in r:
            stops[r["stop_reason"]] += 1
    if stops:
        lines.append("plugin stop reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(stops.items())))
    return lines


PAIR_BANDS = ((0, 200), (200, 800), (800, None))


def coverage(records: Sequence[Record]) -> list[str]:
    """How often the plugin's final interval missed the true (effective) overhead, by pairs measured,
    and how many trials ran past their max_time."""
    trials = [
        r
        for r in records
        if r.get("type") == "trial" and r["method"] == "plugin" and r.get("ci_low") is not None and r.get("pairs")
    ]
    lines = ["pairs at the end | trials | interval excludes the truth | median half-width (points)"]
    for low, high in PAIR_BANDS:
        band = [r for r in trials if r["pairs"] >= low and (high is None or r["pairs"] < high)]
        if not band:
            continue
        missed = sum(1 for r in band if not r["ci_low"] <= r["effective_overhead"] <= r["ci_high"])
        widths = [(r["ci_high"] - r["ci_low"]) / 2 * 100 for r in band]
        label = f"{low}–{high - 1}" if high is not None else f">= {low}"
        lines.append(f"{label} | {len(band)} | {missed} ({_pct(missed, len(band))}) | {statistics.median(widths):.2f}")
    timed = [r for r in records if r.get("type") == "trial" and r["method"] == "plugin" and r.get("duration_s")]
    over = [r for r in timed if r["duration_s"] > r.get("max_time", 30.0)]
    longest = max((r["duration_s"] for r in timed), default=0.0)
    lines.append(f"over max_time: {len(over)} of {len(timed)} trials; longest {longest:.1f} s")
    return lines


def print_report(records: Sequence[Record], markdown: bool = False) -> None:
    print()
    for line in summary(records):
        print(line)
    print()
    print(format_table(records, markdown=markdown))
    print()
    print("targets:")
    for line in targets(records):
        print("  " + line)
    print()
    print("intervals and the cap:")
    for line in coverage(records):
        print("  " + line)


# ------------------------------------------------------------------------------------------ cli


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.verdicts",
        description="Self-test of pytest-otel-overhead's verdicts: known injected overheads and A/A trials, "
        "through the plugin and through the naive two-run method.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: a few trials per cell, max_time 10 s")
    parser.add_argument("--trials", type=int, help="trials per (overhead, size) cell for overheads above 0")
    parser.add_argument("--aa-trials", type=int, help="A/A trials (overhead 0) per size")
    parser.add_argument("--sizes", type=_parse_list, help="workload sizes in ms, e.g. 0.1,1,20")
    parser.add_argument(
        "--overheads", type=lambda s: _parse_list(s, 0.01), help="true overheads in %%, e.g. 0,2.5,5,6,7.5,10"
    )
    parser.add_argument("--naive-rounds", type=int, help="rounds of the naive method (each: every cell once)")
    parser.add_argument("--naive-seconds", type=float, default=1.0, help="seconds per naive run of a cell (1)")
    parser.add_argument("--max-time", type=float, help="pass --otel-overhead-max-time (default: the plugin's, 30 s)")
    parser.add_argument("--chunk", type=int, default=CHUNK, help=f"trials per pytest process ({CHUNK})")
    parser.add_argument(
        "--deadline", type=float, metavar="MINUTES", help="start no new pytest process after MINUTES (none)"
    )
    parser.add_argument(
        "--freeze", action="store_true", help="measure a copy of the package taken at the start (edits can't mix in)"
    )
    parser.add_argument("--seed", type=int, help="seed of the trial order (default: random, recorded)")
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/verdicts-<date>.jsonl)")
    parser.add_argument(
        "--report",
        nargs="+",
        metavar="FILE[@N]",
        help="print the table of results files (FILE@N: from the plugin's chunk N on) and exit",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _arguments(argv)
    if args.report:
        print_report(read_reports(args.report), markdown=args.markdown)
        return 0
    plan = build_plan(args)
    out = args.out or Path(__file__).parent / "results" / f"verdicts-{dt.datetime.now():%Y%m%d-%H%M}.jsonl"
    records = run(plan, out, argv)
    print_report(read_records(out), markdown=args.markdown)
    return 0 if records else 1


if __name__ == "__main__":
    raise SystemExit(main())
