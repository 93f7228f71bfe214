"""The versioned JSON document: every measured test, plus the machine and package versions.

The layout is documented in ``docs/json-schema.md``; ``SCHEMA_VERSION`` changes whenever a field
changes meaning or is removed (adding fields keeps the version).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_otel_overhead.history.environment import environment
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.results import TestResult

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "compact",
    "document",
    "document_chunks",
    "encode_test",
    "environment",
    "write_json",
]

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


def compact(value: Any) -> str:
    """``value`` as compact JSON: the layout of a saved run, and of each test in a JSON report."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def encode_test(test: Mapping[str, Any]) -> str:
    """A test's document (``TestResult.as_dict``) as a saved run and a JSON report hold it."""
    return compact(test)


def document_chunks(head: Mapping[str, Any], tests: Iterable[Sequence[str]], *, report: bool = False) -> Iterator[str]:
    """A document's text, in pieces: ``head`` (the document; its ``tests`` member only says where they go) and
    ``tests`` (each one's compact text, in pieces). Compact throughout, as the store saves a run; or, with
    ``report``, as a JSON report: ``head`` indented by two, each test compact on a line of its own.

    A test compact rather than indented: its raw rows are most of a report's size, a number a line when
    indented, and a merge reads a compact test as it stands, where an indented one must be read into its
    values and written again."""
    marker = secrets.token_hex(16)
    placed = {**head, "tests": marker}
    text = json.dumps(placed, indent=2, allow_nan=False) if report else compact(placed)
    before, after = text.split(f'"{marker}"')
    first, between, last = ("\n    ", ",\n    ", "\n  ]") if report else ("", ",", "]")
    yield before + "["
    separator = None
    for pieces in tests:
        yield first if separator is None else separator
        yield from pieces
        separator = between
    yield ("]" if separator is None else last) + after


def write_json(
    path: str | os.PathLike[str], results: Sequence[TestResult], sections: Mapping[str, Any] | None = None
) -> Path:
    """Write the document to ``path`` (atomically: readers never see half a document)."""
    data = document(results, sections)
    tests = [(encode_test(test),) for test in data["tests"]]
    return write_text_file(path, [*document_chunks(data, tests, report=True), "\n"])
