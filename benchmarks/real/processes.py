"""Child processes of the harness: their environment, their load-average record, and the load generator.

Every measuring process runs in the harness's work directory (a copy of the workload project with
an empty ``pytest.ini``, so no outer configuration leaks in), with ``PYTHONHASHSEED``,
``PYTEST_ADDOPTS``, ``PYTEST_PLUGINS`` and ``OTEL_*`` removed from its environment. While it runs,
the harness samples the 1-minute load average once a second.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.verdicts import package_dir, source_digest

Record = dict[str, Any]

WORKLOAD_PROJECT = Path(__file__).resolve().parent.parent / "real_workloads"
"""The workload project's sources, copied into each run's work directory."""

DROPPED_ENV = ("PYTHONHASHSEED", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
PACKAGES = (
    "pytest-otel-overhead",
    "pytest",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "flask",
    "fastapi",
    "starlette",
    "requests",
    "pyperf",
    "pytest-benchmark",
)
LOAD_SAMPLE_S = 1.0


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> Record:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {p: version(p) for p in PACKAGES},
        "load_average": load_average(),
        "valgrind": shutil.which("valgrind") is not None,
    }


def prepare_workdir(workdir: Path, freeze: bool) -> Path | None:
    """Copy the workload project into ``workdir``; with ``freeze``, a copy of the package too.

    Returns the directory to put first on the children's ``PYTHONPATH`` (the frozen package), if any.
    """
    for source in sorted(WORKLOAD_PROJECT.glob("*.py")):
        shutil.copy2(source, workdir / source.name)
    (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # keep any outer config out
    if not freeze:
        return None
    engine = workdir / "engine"
    shutil.copytree(package_dir(), engine / "pytest_otel_overhead", ignore=shutil.ignore_patterns("__pycache__"))
    return engine


def child_env(frozen: Path | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the measuring processes: the tools' defaults, a random hash seed."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV and not k.startswith("OTEL")}
    if frozen is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(frozen), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Workspace:
    """The run's work directory (the workload project) and, with ``--freeze``, the frozen package."""

    root: Path
    frozen: Path | None
    saved: Path | None = None
    """A store of saved runs kept from an earlier harness run (``--compare-saved``), instead of the run's own."""

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return child_env(self.frozen, extra)

    @property
    def store(self) -> Path:
        """Where the plugin runs are saved, for the A/A comparison."""
        return self.saved or self.root / "store"

    def engine_digest(self) -> str:
        return source_digest(self.frozen / "pytest_otel_overhead" if self.frozen else package_dir())


@dataclass
class Outcome:
    returncode: int | None
    wall_s: float
    log: Path
    error: str | None = None
    load_before: list[float] | None = None
    load_after: list[float] | None = None
    load_samples: list[float] = field(default_factory=list)

    @property
    def load(self) -> Record:
        return load_summary(self.load_before, self.load_samples, self.load_after)

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def load_summary(before: list[float] | None, samples: Sequence[float], after: list[float] | None) -> Record:
    """The 1-minute load average while a process ran: at start and end, and sampled once a second."""
    return {
        "before": before,
        "after": after,
        "samples": len(samples),
        "min": min(samples) if samples else None,
        "median": statistics.median(samples) if samples else None,
        "max": max(samples) if samples else None,
    }


def run_command(
    label: str,
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float,
    ok_codes: Sequence[int] = (0,),
) -> Outcome:
    """Run ``command`` with its output in ``log``, sampling the load average until it ends.

    ``label`` names the command in the error of a time-out or an exit code not in ``ok_codes``.
    """
    before = load_average()
    samples: list[float] = []
    started = time.perf_counter()
    error = None
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    process.wait(timeout=LOAD_SAMPLE_S)
                    break
                except subprocess.TimeoutExpired:
                    current = load_average()
                    if current:
                        samples.append(current[0])
                    if time.perf_counter() - started > timeout:
                        process.kill()
                        process.wait()
                        error = f"{label} timed out after {timeout:g} s"
                        break
        except BaseException:
            process.kill()
            process.wait()
            raise
    wall = time.perf_counter() - started
    if error is None and process.returncode not in ok_codes:
        error = f"{label} exited with {process.returncode}"
    return Outcome(process.returncode, wall, log, error, before, load_average(), samples)


def combined_load(outcomes: Sequence[Outcome]) -> Record:
    """The load while several processes of one job ran, one after the other."""
    samples = [x for outcome in outcomes for x in outcome.load_samples]
    return (
        load_summary(outcomes[0].load_before, samples, outcomes[-1].load_after)
        if outcomes
        else load_summary(None, [], None)
    )
