"""The versioned JSON document: every measured test, plus the machine and package versions.

The layout is documented in ``docs/json-schema.md``; ``SCHEMA_VERSION`` changes whenever a field
changes meaning or is removed (adding fields keeps the version).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.results import TestResult

__all__ = ["SCHEMA_VERSION", "document", "environment", "write_json"]

SCHEMA_VERSION = 1
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


def document(results: Sequence[TestResult], sections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document; ``sections`` adds top-level parts such as ``sweeps``, ``tuning`` and ``explain``."""
    return {
        "schema": "pytest-otel-overhead",
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "tests": [r.as_dict() for r in results],
        **(sections or {}),
    }


def write_json(
    path: str | os.PathLike[str], results: Sequence[TestResult], sections: Mapping[str, Any] | None = None
) -> Path:
    """Write the document to ``path`` (atomically: readers never see half a document)."""
    return write_text_file(path, json.dumps(document(results, sections), indent=2, allow_nan=False) + "\n")
