"""Where a run was measured: machine, interpreter, package versions, CPU model and git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

__all__ = ["environment", "git_info", "machine_info"]

_PACKAGES = ("pytest-otel-overhead", "pytest", "opentelemetry-api", "opentelemetry-sdk", "psutil")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Where the figures were measured: machine, interpreter and package versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "load_average": list(load) if load else None,
        "packages": {name: _version(name) for name in _PACKAGES},
    }


def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(cwd: Path) -> dict[str, Any] | None:
    """Commit, branch and whether tracked files differ from it; ``None`` outside a git work tree."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return None
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    # Untracked files are left out: the store itself is usually one of them.
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {
        "commit": commit,
        "branch": None if branch in (None, "HEAD") else branch,
        "dirty": None if status is None else bool(status),
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """What ``environment()`` leaves out and comparisons need: the CPU model."""
    return {"cpu_model": _cpu_model()}
