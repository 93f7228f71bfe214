"""What the installed plugin costs a pytest run that does not measure: ``python -m benchmarks.startup``.

Every pytest run in an environment with the package installed loads the plugin's entry point,
measuring or not. This runs pytest on a folder of trivial tests (200 by default) many times, each
in a fresh process, alternating the plugin loaded (as installed) and blocked (``-p no:otel_overhead``)
in ABBA order, so that a drift of the machine's load falls on both alike, and reports the median
wall time of each and their difference: the median of the paired differences, and the
Hodges–Lehmann estimate with its 95% Wilcoxon interval.

Results go to ``benchmarks/results/startup-<date>.json`` (every run's time) and ``.log`` (what was
printed). The figure means something only on a quiet machine; a loaded one widens the interval.
This is a benchmark, not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_otel_overhead.stats.intervals import wilcoxon_interval

RESULTS = Path(__file__).resolve().parent / "results"
TESTS_PER_FILE = 20
_DROPPED_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE")


def write_tests(folder: Path, count: int) -> None:
    """``count`` trivial passing tests, in files of ``TESTS_PER_FILE``."""
    for start in range(0, count, TESTS_PER_FILE):
        names = range(start, min(count, start + TESTS_PER_FILE))
        body = "".join(f"def test_{n}():\n    assert {n} + 1 == {n + 1}\n\n\n" for n in names)
        (folder / f"test_trivial_{start // TESTS_PER_FILE:03d}.py").write_text(body, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # no rootdir search above it


def child_env(pycache: Path) -> dict[str, str]:
    """This environment without what would change pytest's start-up or the plugin's settings.

    Bytecode is cached, as in an installed environment (compiling the sources in every run would
    be most of what is measured), in ``pycache`` rather than next to the sources.
    """
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV and not k.startswith("OTEL_")}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_once(folder: Path, env: dict[str, str], *, loaded: bool, count: int) -> float:
    """Seconds of one pytest process over the folder, the plugin loaded or blocked."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)]
    if not loaded:
        command[3:3] = ["-p", "no:otel_overhead"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or f"{count} passed" not in done.stdout:
        raise SystemExit(f"pytest failed ({' '.join(command)}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def entry_point_import_ms(folder: Path, env: dict[str, str]) -> float:
    """Milliseconds to import the entry point after pytest itself, in a fresh process.

    Run in ``folder``, as pytest is: from the source tree, ``python -c`` would import the package there
    (the current folder comes first on ``sys.path``) rather than the one installed.
    """
    script = (
        "import time, pytest\nstart = time.perf_counter()\nimport pytest_otel_overhead.plugin\n"
        "print((time.perf_counter() - start) * 1000)"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout)


def measure(folder: Path, env: dict[str, str], pairs: int, count: int, say: Any) -> dict[str, list[float]]:
    """``pairs`` pairs of runs in ABBA order, after one unrecorded run of each to warm the caches."""
    run_once(folder, env, loaded=True, count=count)
    run_once(folder, env, loaded=False, count=count)
    times: dict[str, list[float]] = {"loaded": [], "blocked": [], "import_ms": []}
    for index in range(pairs):
        order = (True, False) if index % 4 in (0, 3) else (False, True)
        for loaded in order:
            times["loaded" if loaded else "blocked"].append(run_once(folder, env, loaded=loaded, count=count))
        times["import_ms"].append(entry_point_import_ms(folder, env))
        if (index + 1) % 10 == 0 or index + 1 == pairs:
            say(f"  {index + 1}/{pairs} pairs; median loaded {statistics.median(times['loaded']):.3f} s")
    return times


def summary(times: dict[str, list[float]]) -> dict[str, Any]:
    differences = [a - b for a, b in zip(times["loaded"], times["blocked"], strict=True)]
    low, estimate, high = wilcoxon_interval(differences, 0.95)
    return {
        "median_loaded_s": statistics.median(times["loaded"]),
        "median_blocked_s": statistics.median(times["blocked"]),
        "median_difference_s": statistics.median(differences),
        "difference_hl_s": estimate,
        "difference_ci95_s": [low, high],
        "median_entry_point_import_ms": statistics.median(times["import_ms"]),
    }


def figure_lines(figures: dict[str, Any]) -> list[str]:
    low, high = figures["difference_ci95_s"]
    return [
        f"median with the plugin installed: {figures['median_loaded_s'] * 1000:.1f} ms",
        f"median with -p no:otel_overhead:  {figures['median_blocked_s'] * 1000:.1f} ms",
        f"difference: median {figures['median_difference_s'] * 1000:+.1f} ms, "
        f"Hodges–Lehmann {figures['difference_hl_s'] * 1000:+.1f} ms "
        f"(95% CI {low * 1000:+.1f} … {high * 1000:+.1f} ms)",
        f"entry point import after pytest: median {figures['median_entry_point_import_ms']:.1f} ms",
    ]


def pool(paths: Sequence[Path]) -> int:
    """The figures of several runs' pairs taken together (each run's pairs are ABBA-ordered already)."""
    times: dict[str, list[float]] = {"loaded": [], "blocked": [], "import_ms": []}
    for path in paths:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        times["loaded"] += runs["loaded_s"]
        times["blocked"] += runs["blocked_s"]
        times["import_ms"] += runs["import_ms"]
    print(f"startup, pooled: {len(times['loaded'])} pairs from {len(paths)} runs ({', '.join(p.name for p in paths)})")
    for line in figure_lines(summary(times)):
        print(line)
    return 0


def environment() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: version(p) for p in ("pytest-otel-overhead", "pytest", "opentelemetry-sdk")},
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def output_stem(now: dt.datetime, suffix: str = "") -> Path:
    """``startup-<date>[-suffix]``, with the time added when a run of that name is there already."""
    stem = RESULTS / f"startup-{now:%Y%m%d}{suffix and '-' + suffix}"
    return stem if not stem.with_suffix(".json").exists() else RESULTS / f"startup-{now:%Y%m%d-%H%M%S}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40, help="pairs of runs, loaded and blocked (default 40)")
    parser.add_argument("--tests", type=int, default=200, help="trivial tests per run (default 200)")
    parser.add_argument("--suffix", default="", help="added to the output name: startup-<date>-SUFFIX")
    parser.add_argument(
        "--pool", nargs="+", type=Path, metavar="JSON", help="print the figures of these runs' pairs together, run none"
    )
    args = parser.parse_args(argv)
    if args.pool:
        return pool(args.pool)
    if args.pairs < 1 or args.tests < 1:
        parser.error("--pairs and --tests must be at least 1")
    if not any(e.name == "otel_overhead" for e in metadata.entry_points(group="pytest11")):
        raise SystemExit("pytest-otel-overhead is not installed: both arms would be the same")
    now = dt.datetime.now()
    stem = output_stem(now, args.suffix)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    env = environment()
    say(f"startup: {args.tests} trivial tests, {args.pairs} pairs, {env['nproc']} CPUs, load {env['load_average']}")
    with tempfile.TemporaryDirectory(prefix="otel-overhead-startup-") as scratch:
        folder = Path(scratch, "tests")
        folder.mkdir()
        write_tests(folder, args.tests)
        times = measure(folder, child_env(Path(scratch, "pycache")), args.pairs, args.tests, say)
    figures = summary(times)
    for line in figure_lines(figures):
        say(line)
    document = {
        "benchmark": "startup",
        "date": now.isoformat(timespec="seconds"),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "tests": args.tests,
        "pairs": args.pairs,
        "environment": env,
        **figures,
        "runs": {"loaded_s": times["loaded"], "blocked_s": times["blocked"], "import_ms": times["import_ms"]},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    stem.with_suffix(".log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"results → {stem.with_suffix('.json')}, {stem.with_suffix('.log')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
