"""Everything but the plugin: the reference A/B, and what a careful user would do today.

- The reference: ``real_workloads/reference.py`` in a fresh process per job, a plain interleaved
  A/B with no code of the plugin; its per-process estimates are pooled by the report.
- pyperf: the workload benchmarked in a baseline process tree and an instrumented one (pyperf's
  own worker processes each), then ``python -m pyperf compare_to -v``: its verdict is FAIL when
  pyperf calls the difference significant and the instrumented mean is above the budget.
- pytest-benchmark's two-run gate: a baseline run saved with ``--benchmark-save``, then an
  instrumented run with ``--benchmark-compare --benchmark-compare-fail=median:<budget>``: FAIL for
  the tests it reports as regressed.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.real.plan import Job, Plan, shuffled_workloads
from benchmarks.real.processes import Outcome, Record, Workspace, combined_load, run_command

REFERENCE_SETUP_S = 60.0
PYPERF_TIMEOUT_S = 900.0
BENCHMARK_TIMEOUT_S = 900.0

# pytest-benchmark: "\ttest_flask (0001_baseline) - Field 'median' has failed PercentageRegressionCheck: 9.8 > 5.0"
REGRESSED = re.compile(r"^\s+test_(?P<workload>\w+) \(.*\) - Field 'median' has failed")
# pyperf compare_to -v: "Not significant!" or "Significant (t=-7.86)"
SIGNIFICANCE = re.compile(r"^(Not significant!|Significant \(t=(?P<t>[-+0-9.einf]+)\))", re.MULTILINE)


def budget_fraction(budget: str | None) -> float:
    """The plan's budget as a fraction, for the tools that only know percentages (5% by default).

    Raises ValueError for anything but a percentage; the command line checks it when parsing.
    """
    if budget is None:
        return 0.05
    text = budget.strip()
    if not text.endswith("%"):
        raise ValueError(f"{budget!r}: pyperf and pytest-benchmark take relative budgets only, e.g. 5%")
    try:
        return float(text[:-1]) / 100
    except ValueError:
        raise ValueError(f"{budget!r} is not a percentage, e.g. 5%") from None


def failure(outcome: Outcome) -> Record:
    return {"verdict": "ERROR", "error": outcome.error or "no result", "log_tail": outcome.tail()}


def run_reference(job: Job, plan: Plan, space: Workspace) -> list[Record]:
    """One fresh process of the plain A/B for one workload (``reference_frozen``: with the heap frozen)."""
    assert job.workload is not None
    label = f"{job.kind}-{job.workload}-{job.index:03d}"
    seconds = plan.counts.reference_seconds
    command = [sys.executable, "reference.py", job.workload, f"--seconds={seconds:g}", f"--block-ms={plan.block_ms:g}"]
    if job.kind == "reference_frozen":
        command.append("--frozen-heap")
    outcome = run_command(
        "reference.py", command, space.root, space.env(), space.root / f"{label}.log", seconds + REFERENCE_SETUP_S
    )
    record: Record = {"type": job.kind, "workload": job.workload, "process": job.index, "load": outcome.load}
    result = last_json_line(outcome.log) if outcome.error is None else None
    record.update(result if result is not None else failure(outcome))
    return [record]


def last_json_line(path: Path) -> Record | None:
    for line in reversed(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                value: Any = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def pyperf_verdict(compare_text: str, baseline_mean: float, instrumented_mean: float, budget: float) -> Record:
    """pyperf's answer read as a gate: FAIL when significant and slower than the budget allows."""
    match = SIGNIFICANCE.search(compare_text)
    if match is None:
        return {"verdict": "ERROR", "error": "no significance line in compare_to's output"}
    significant = match.group(1) != "Not significant!"
    estimate = instrumented_mean / baseline_mean - 1
    return {
        "verdict": "FAIL" if significant and estimate > budget else "PASS",
        "significant": significant,
        "t": float(match["t"]) if match["t"] else None,
        "estimate": estimate,
        "baseline_mean_s": baseline_mean,
        "instrumented_mean_s": instrumented_mean,
    }


def pyperf_mean(path: Path) -> float:
    import pyperf  # type: ignore[import-untyped]  # only the pyperf jobs need it (the bench extra)

    return float(pyperf.Benchmark.load(str(path)).mean())


def run_pyperf(job: Job, plan: Plan, space: Workspace) -> list[Record]:
    """One round of pyperf for one workload: both arms, then ``compare_to``."""
    assert job.workload is not None
    label = f"pyperf-{job.workload}-{job.index:03d}"
    record: Record = {"type": "pyperf", "workload": job.workload, "round": job.index}
    files: dict[str, Path] = {}
    outcomes: list[Outcome] = []
    for arm in ("baseline", "instrumented"):
        files[arm] = space.root / f"{label}-{arm}.json"
        files[arm].unlink(missing_ok=True)  # pyperf refuses to overwrite
        command = [sys.executable, "pyperf_bench.py", f"--workload={job.workload}", f"--arm={arm}", "--quiet"]
        command += [*plan.pyperf_args, f"--output={files[arm]}"]
        log = space.root / f"{label}-{arm}.log"
        outcomes.append(run_command("pyperf", command, space.root, space.env(), log, PYPERF_TIMEOUT_S))
        if outcomes[-1].error is not None:
            return [record | failure(outcomes[-1]) | {"arm": arm, "load": combined_load(outcomes)}]
    command = [sys.executable, "-m", "pyperf", "compare_to", "-v", str(files["baseline"]), str(files["instrumented"])]
    compared = run_command("pyperf compare_to", command, space.root, space.env(), space.root / f"{label}.log", 120)
    if compared.error is not None:
        return [record | failure(compared) | {"load": combined_load(outcomes)}]
    text = compared.log.read_text(encoding="utf-8", errors="replace")
    means = {arm: pyperf_mean(path) for arm, path in files.items()}
    verdict = pyperf_verdict(text, means["baseline"], means["instrumented"], budget_fraction(plan.budget))
    return [record | verdict | {"load": combined_load(outcomes)}]


def benchmark_medians(path: Path) -> dict[str, float]:
    """Median seconds per call by workload, from a pytest-benchmark JSON file (saved or ``--benchmark-json``)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {b["name"].removeprefix("test_"): b["stats"]["median"] for b in document.get("benchmarks", [])}


def regressed_workloads(text: str) -> set[str]:
    return {m["workload"] for m in map(REGRESSED.match, text.splitlines()) if m}


def benchmark_arms(label: str, plan: Plan, space: Workspace, common: Sequence[str]) -> dict[str, Outcome]:
    """The saved baseline run, then (unless it failed) the instrumented run compared with it."""
    storage = space.root / label
    budget = budget_fraction(plan.budget)
    runs = {
        "baseline": ["--benchmark-save=baseline"],
        "instrumented": [
            "--benchmark-compare=0001",
            f"--benchmark-compare-fail=median:{budget * 100:g}%",
            f"--benchmark-json={storage / 'instrumented.json'}",
        ],
    }
    outcomes: dict[str, Outcome] = {}
    for arm, args in runs.items():
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
        command += ["-p", "no:otel_overhead", f"--benchmark-storage=file://{storage}", *common]
        # A regression makes pytest-benchmark raise at the end of the session: exit code 1, the verdict.
        ok = (0,) if arm == "baseline" else (0, 1)
        log = space.root / f"{label}-{arm}.log"
        env = space.env({"REAL_ARM": arm})
        outcomes[arm] = run_command("pytest-benchmark", command, space.root, env, log, BENCHMARK_TIMEOUT_S, ok)
        if outcomes[arm].error is not None:
            break
    return outcomes


def run_benchmark(job: Job, plan: Plan, space: Workspace) -> list[Record]:
    """One round of pytest-benchmark's two-run gate over every workload, in a shuffled order."""
    order = shuffled_workloads(plan, job)
    label = f"benchmark{job.index:03d}"
    outcomes = benchmark_arms(label, plan, space, [*plan.benchmark_args, *(f"test_bench.py::test_{w}" for w in order)])
    storage = space.root / label
    baseline = next(iter(sorted(storage.rglob("0001_baseline.json"))), None)
    base = benchmark_medians(baseline) if baseline else {}
    inst = benchmark_medians(storage / "instrumented.json")
    instrumented = outcomes.get("instrumented")
    regressed = (
        regressed_workloads(instrumented.log.read_text(encoding="utf-8", errors="replace")) if instrumented else set()
    )
    load = combined_load(list(outcomes.values()))
    records = []
    for workload in order:
        record: Record = {"type": "benchmark", "workload": workload, "round": job.index, "load": load}
        if workload in base and workload in inst:
            record.update(
                verdict="FAIL" if workload in regressed else "PASS",
                estimate=inst[workload] / base[workload] - 1,
                baseline_median_s=base[workload],
                instrumented_median_s=inst[workload],
            )
        else:
            failed = next((o for o in outcomes.values() if o.error is not None), outcomes["baseline"])
            record.update(failure(failed))
        records.append(record)
    return records
