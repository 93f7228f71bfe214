"""Saved runs read back: a JSON document, however damaged, becomes a ``RunRecord`` or one ``HistoryError`` line.

The measured tests parse themselves (``wire.document``, driven by the records' fields); what is
read here is the document around them: its schema, where the run was measured and the ``run``
section of a saved run. Any failure is one line that names the file and the field. A file larger
than ``MAX_RUN_BYTES`` is refused before it is read whole: a run of this plugin is far smaller, and
decoding a huge one would take many times its size in memory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_otel_overhead.formatting import format_bytes
from pytest_otel_overhead.history.document import SCHEMA, SCHEMA_VERSION
from pytest_otel_overhead.history.run import HistoryError, Incomplete, RunRecord, printable, valid_name
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.wire.checks import (
    Malformed,
    clip,
    describe,
    optional,
    read_amount,
    read_count,
    read_entries,
    read_field,
    read_flag,
    read_items,
    read_list,
    read_object,
    read_text,
)
from pytest_otel_overhead.wire.document import from_document

__all__ = ["MAX_RUN_BYTES", "load_run", "parse_run", "result_from_dict"]

MAX_RUN_BYTES = 20 * 1024 * 1024
"""The largest saved run or JSON report read, and saved (20 MiB, see docs/limits.md)."""


def result_from_dict(data: Mapping[str, Any]) -> TestResult:
    """The inverse of ``TestResult.as_dict``; raises ``ValueError`` naming the field when malformed."""
    return from_document(TestResult, data)


def _read_name(value: Any) -> str:
    name = read_text(value)
    if not valid_name(name):
        raise Malformed(f"{describe(name)} is not a run name")
    return name


def _read_git(value: Any) -> dict[str, Any]:
    data = read_object(value)
    return {
        "commit": read_field(data, "commit", optional(read_text), required=False),
        "branch": read_field(data, "branch", optional(read_text), required=False),
        "dirty": read_field(data, "dirty", optional(read_flag), required=False),
    }


def _read_machine(value: Any) -> dict[str, Any]:
    data = read_object(value if value is not None else {})
    return {**data, "cpu_model": read_field(data, "cpu_model", optional(read_text), required=False)}


_ENVIRONMENT_READERS: dict[str, Callable[[Any], Any]] = {
    "python": read_text,
    "implementation": read_text,
    "platform": read_text,
    "machine": read_text,
    "cpu_count": read_count,
    "memory_bytes": read_count,
    "load_average": lambda v: read_items(v, read_amount),
    "packages": lambda v: dict(read_entries(v, optional(read_text))),
}


def _read_environment(value: Any) -> dict[str, Any]:
    """Where the run was measured; the fields reports and comparisons show must have their types."""
    data = read_object(value if value is not None else {})
    known = {key: read_field(data, key, optional(read)) for key, read in _ENVIRONMENT_READERS.items() if key in data}
    return {**data, **known}


def _read_tests(value: Any) -> tuple[TestResult, ...]:
    results = []
    for index, test in enumerate(read_list(value)):
        try:
            results.append(result_from_dict(test))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            where = test.get("nodeid") if isinstance(test, dict) else None
            which = f"#{index + 1}" + (f" ({clip(where, 200)})" if isinstance(where, str) else "")
            raise Malformed(f"test {which} is malformed: {error}") from None
    return tuple(results)


def _read_run_section(value: Any) -> dict[str, Any]:
    """The ``run`` section of a saved run (absent from ``--otel-overhead-json`` reports)."""
    data = read_object(value if value is not None else {})
    return {
        "name": read_field(data, "name", optional(_read_name), required=False),
        "saved": read_field(data, "saved", optional(read_text), required=False),
        "git": read_field(data, "git", optional(_read_git), required=False),
        "machine": read_field(data, "machine", _read_machine, required=False),
        "settings": read_field(data, "settings", lambda v: read_object(v if v is not None else {}), required=False),
        "incomplete": read_field(data, "incomplete", optional(lambda v: from_document(Incomplete, v)), required=False),
    }


def _check_schema(data: Any, source: str) -> None:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise HistoryError(f'{source}: not a pytest-otel-overhead run (no "schema": "{SCHEMA}")')
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise HistoryError(f"{source}: schema_version {describe(version)} is not a whole number")
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{source}: written with schema version {describe(version)}, newer than this pytest-otel-overhead "
            f"reads ({SCHEMA_VERSION}); upgrade pytest-otel-overhead"
        )
    if not isinstance(data.get("tests"), list):
        raise HistoryError(f'{source}: "tests" is not a list')


def parse_run(data: Any, source: str, path: Path | None = None) -> RunRecord:
    """A run from a decoded JSON document (a saved run or an ``--otel-overhead-json`` report).

    Any document, however damaged, either gives a run whose every value has its field's type and
    range, or raises :class:`HistoryError` with one line that starts with ``source``.
    """
    _check_schema(data, source)
    try:
        results = _read_tests(data["tests"])
        run = read_field(data, "run", _read_run_section, required=False)
        created = run["saved"] or read_field(data, "created", optional(read_text), required=False)
        return RunRecord(
            results=results,
            environment=read_field(data, "environment", _read_environment, required=False),
            created=created or "",
            name=run["name"],
            path=path,
            git=run["git"],
            machine=run["machine"],
            settings=run["settings"],
            incomplete=run["incomplete"],
        )
    except Malformed as error:
        raise HistoryError(f"{source}: {printable(str(error))}") from None


def load_run(path: Path) -> RunRecord:
    """Read one run file; every failure is a :class:`HistoryError` naming the file."""
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            # Never more than the cap, even of a file that grows meanwhile.
            raw = stream.read(MAX_RUN_BYTES + 1) if size <= MAX_RUN_BYTES else b""
        if max(size, len(raw)) > MAX_RUN_BYTES:
            raise HistoryError(
                f"{path}: {format_bytes(max(size, len(raw)))}, more than the {format_bytes(MAX_RUN_BYTES)} "
                "a saved run may hold; not read"
            ) from None
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"{path}: cannot be read ({error.__class__.__name__}: {error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise HistoryError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except RecursionError:
        raise HistoryError(f"{path}: not valid JSON (nested too deeply)") from None
    except ValueError:  # the only other failure of the decoder: Python's limit on digits in a number
        raise HistoryError(
            f"{path}: holds a number too long to read (more than {sys.get_int_max_str_digits()} digits)"
        ) from None
    return parse_run(data, str(path), path)
