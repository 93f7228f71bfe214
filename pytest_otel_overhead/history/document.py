"""The versioned JSON document: every measured test, plus the machine and package versions.

The layout is documented in ``docs/json-schema.md``; ``SCHEMA_VERSION`` changes whenever a field
changes meaning or is removed (adding fields keeps the version).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_otel_overhead.history.environment import environment
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.results import TestResult

__all__ = ["SCHEMA", "SCHEMA_VERSION", "document", "environment", "write_json"]

SCHEMA = "pytest-otel-overhead"
SCHEMA_VERSION = 1


def document(results: Sequence[TestResult], sections: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document; ``sections`` adds top-level parts such as ``sweeps``, ``tuning`` and ``explain``."""
    return {
        "schema": SCHEMA,
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
