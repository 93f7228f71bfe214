"""Saved runs read back: a JSON document, however damaged, becomes a ``RunRecord`` or one ``HistoryError`` line.

The measured tests parse themselves (``wire.document``, driven by the records' fields); what is
read here is the document around them: its schema, where the run was measured and the ``run``
section of a saved run. Any failure is one line that names the file and the field. A file larger
than ``MAX_RUN_BYTES`` is refused before it is read whole, and a string longer than
``wire.checks.MAX_TEXT_CHARS`` anywhere in it is refused by field: the cap on the file is sized for
the largest merged runs (docs/sharding.md), the cap on strings keeps what reports make of a run
proportional to it (a few huge strings took many times the file's size to report).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    read_free,
    read_items,
    read_list,
    read_object,
    read_text,
    rows_at,
    rows_text,
)
from pytest_otel_overhead.wire.document import derived_of, from_document
from pytest_otel_overhead.wire.scan import Shared, decode_sharing, decode_with_tests

__all__ = [
    "MAX_RUN_BYTES",
    "ROWS_KEY",
    "UNMEASURED",
    "Carried",
    "Documents",
    "Shard",
    "decode_with_tests",
    "load_run",
    "load_run_carrying_rows",
    "load_shard",
    "parse_run",
    "result_from_dict",
]

UNMEASURED = "unmeasured"
"""The JSON report's section of tests that were to be measured and were not (``plugins/unmeasured.py``)."""
MAX_RUN_BYTES = 128 * 1024 * 1024
"""The largest saved run or JSON report read, and saved (128 MiB, see docs/limits.md): a merged run
of 50 shards of 100 tests keeping 200 pairs each takes 101 MiB."""


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
    data = read_free(read_object(value if value is not None else {}))
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
    data = read_free(read_object(value if value is not None else {}))
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


def _read_settings(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = read_free(read_object(value if value is not None else {}))
    return data


def _read_run_section(value: Any) -> dict[str, Any]:
    """The ``run`` section of a saved run (absent from ``--otel-overhead-json`` reports)."""
    data = read_object(value if value is not None else {})
    return {
        "name": read_field(data, "name", optional(_read_name), required=False),
        "saved": read_field(data, "saved", optional(read_text), required=False),
        "git": read_field(data, "git", optional(_read_git), required=False),
        "machine": read_field(data, "machine", _read_machine, required=False),
        "settings": read_field(data, "settings", _read_settings, required=False),
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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, never more than the cap, even of a file that grows meanwhile."""
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        raw = stream.read(MAX_RUN_BYTES + 1) if size <= MAX_RUN_BYTES else b""
    if max(size, len(raw)) > MAX_RUN_BYTES:
        raise HistoryError(
            f"{path}: {format_bytes(max(size, len(raw)))}, more than the {format_bytes(MAX_RUN_BYTES)} "
            "a saved run may hold; not read"
        )
    return raw


def _text(path: Path, raw: bytes | None = None) -> str:
    """The file's text; its bytes are let go as soon as they are text, to keep the peak of a large file lower."""
    try:
        return (_read_bytes(path) if raw is None else raw).decode("utf-8")
    except FileNotFoundError:
        raise HistoryError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"{path}: cannot be read ({error.__class__.__name__}: {error})") from None


def _parse(path: Path, text: str) -> Any:
    """The text's JSON, or one line naming the file and what is wrong."""
    try:
        return json.loads(text)
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


def _decode(path: Path, raw: bytes | None = None) -> Any:
    """The file's JSON (``_text``, then ``_parse``)."""
    return _parse(path, _text(path, raw))


def load_run(path: Path) -> RunRecord:
    """Read one run file; every failure is a :class:`HistoryError` naming the file."""
    return parse_run(_decode(path), str(path), path)


SETTINGS_KEY = "settings"
"""A test's settings (``results.records``): the same object in most tests of a suite."""
ROWS_KEY = "per_call_seconds"
"""The table of raw rows in a test's ``samples`` (``results.records``), four numbers a row."""
Carried = dict[str, str]
"""Per node id, the compact JSON text of the test's raw rows as its file held them, not read into the record."""


_WHITESPACE = b" \t\n\r"
_SPACES = (b" ", b"\t", b"\n", b"\r")


def _table_end(raw: bytes, start: int) -> tuple[int, bytes | None]:
    """Where the row table starting at ``start`` ends, as far as its brackets tell (its rows hold no other):
    after the first ``]]``, else after the first ``]`` followed, past whitespace, by another; -1 when neither
    comes before the next string. With it, the table without its whitespace when that was made to find its
    end. A table holds no string: looking no further than the next one keeps the search to the table (a
    search to the file's end at each table made a merge of JSON reports quadratic)."""
    limit = raw.find(b'"', start)
    limit = len(raw) if limit < 0 else limit
    if raw[start + 1 : start + 2] not in _SPACES:  # compact, as saved runs hold them: ends at its ]]
        end = raw.find(b"]]", start, limit)
        if end >= 0:
            return end + 2, None
    region = raw[start:limit]
    compact = region.translate(None, _WHITESPACE)
    found = compact.find(b"]]")
    if found < 0:
        return -1, None
    # The second bracket of that pair as written: counted back from the region's last bracket.
    end = len(region)
    for _ in range(compact.count(b"]", found + 1)):
        end = region.rfind(b"]", 0, end)
    if region[end - 1 : end] != b"]":  # whitespace between the two: a ]] further on comes first
        later = region.find(b"]]", end)
        if later >= 0:
            return start + later + 2, None
    return start + end + 1, compact[: found + 2]


def _rows_at(raw: bytes, start: int) -> tuple[int, bytes | None, bool]:
    """The row table starting at ``start``: where it ends, its compact text when ``rows_text`` accepts it, and
    whether it stood compact in ``raw``. A table in a layout ``json.dumps`` writes is matched where it starts
    (``rows_at``); any other is found by ``_table_end`` and checked by ``rows_text``, which decide the same for
    those: a table not ending in a literal ``]]`` ends at a later one when one comes before the next string."""
    found = rows_at(raw, start, 4)
    if found is not None:
        end, table = found
        if raw[end - 2 : end] == b"]]":
            return end, table, end - start == len(table)
        limit = raw.find(b'"', end)
        if raw.find(b"]]", end - 1, len(raw) if limit < 0 else limit) < 0:
            return end, table, False
    end, compacted = _table_end(raw, start)
    if end < 0:
        return end, None, False
    held = raw[start:end]
    checked = rows_text(held, 4, compacted)
    return end, checked, checked is held


def _cut_rows(raw: bytes, token: bytes) -> tuple[bytes, list[bytes], bool]:
    """``raw`` with each row table that ``rows_text`` accepts replaced by a marker string, the tables, and
    whether there were tables and each stood compact in the file (as a saved run holds them)."""
    pieces: list[bytes] = []
    tables: list[bytes] = []
    compact = True
    quoted = json.dumps(ROWS_KEY).encode()
    done = 0
    at = raw.find(quoted)
    while at >= 0:
        start = raw.find(b"[", at)
        end, table, held = _rows_at(raw, start) if start > 0 else (-1, None, False)
        if table is None or table == b"[]" or raw[at + len(quoted) : start].strip() != b":":
            at = raw.find(quoted, at + 1)  # left for the strict reader, which says what is wrong
            continue
        pieces += [raw[done:start], b'"' + token + str(len(tables)).encode() + b'"']
        tables.append(table)
        compact = compact and held and raw[at + len(quoted) : start] == b":"
        done = end
        at = raw.find(quoted, done)
    pieces.append(raw[done:])
    return b"".join(pieces), tables, compact and bool(tables)


Documents = dict[str, str]
"""Per node id, a test's compact JSON text as its file held it, its rows left out (``"per_call_seconds":[]``;
``Carried`` holds them)."""


def _says_what_it_holds(result: TestResult, test: dict[str, Any]) -> bool:
    """Whether the figures the document derives for its readers (verdict, outcome) are its record's."""
    return all(test.get(derived.key) == derived.compute(result) for derived in derived_of(TestResult))


# Where a test's shared settings stand while the rest of it is encoded (a string no document holds).
_STANDS_FOR = secrets.token_hex(16)
_STAND_IN = json.dumps(_STANDS_FOR)


# json.dumps(..., separators=(",", ":"), allow_nan=False), with one encoder for every test: a decoded document
# holds no cycle to check for.
_COMPACT = json.JSONEncoder(separators=(",", ":"), allow_nan=False, check_circular=False).encode


def _as_read(test: dict[str, Any], text: str | None, marker: str | None, shared: Shared | None, settings: str) -> str:
    """A test's compact text with its rows left out: ``text`` as read from a compact file, else encoded again
    (the settings the tests share, ``shared.value``, encoded once: ``settings``)."""
    if text is None:
        if shared is None or test.get(SETTINGS_KEY) is not shared.value:
            return _COMPACT(test)
        return _COMPACT({**test, SETTINGS_KEY: _STANDS_FOR}).replace(_STAND_IN, settings, 1)
    text = text if shared is None else shared.restore(text)
    return text if marker is None else text.replace(json.dumps(marker), "[]", 1)


@dataclass(frozen=True)
class Shard:
    """A run as a merge reads it (``load_shard``)."""

    run: RunRecord
    carried: Carried
    """Per node id, the test's raw rows as text, checked and not read into the records."""
    documents: Documents
    """Per node id, the test's compact text as read."""
    sections: Mapping[str, Any] | None = None
    """The document's top-level sections a merge reads besides the tests (``unmeasured``), as decoded and not
    yet checked; ``None`` when the file was not decoded here (the merge then reads them from the file)."""


def load_shard(path: Path) -> Shard:
    """A run whose raw rows are checked (``wire.checks.rows_text``) and kept as text, not read into records,
    and each test's document as read (every value checked, as ``load_run`` checks it), and the document's
    ``unmeasured`` section as decoded with the rest: the file read once.

    For a merge, which writes a test measured once as it was read: its records then hold no ``samples``,
    and the text of each test's rows comes back beside the run, by node id, with the test's compact text
    (left out when its derived figures are not its record's: a file edited by hand). The text is the
    file's own when its rows were compact (a saved run), and encoded from what was read otherwise.
    """
    marker = secrets.token_hex(8) + ":"
    raw = _read_bytes(path)
    cut, tables, compact = _cut_rows(raw, marker.encode())
    del raw
    text = _text(path, cut)
    del cut
    decoded = decode_sharing(text, SETTINGS_KEY, marker + SETTINGS_KEY)  # a suite's settings decoded once
    data, texts, shared = decoded if decoded is not None else (_parse(path, text), [], None)
    found: dict[int, str] = {}
    markers: dict[int, str] = {}
    tests = data.get("tests") if isinstance(data, dict) else None
    for index, test in enumerate(tests if isinstance(tests, list) else []):
        samples = test.get("samples") if isinstance(test, dict) else None
        value = samples.get(ROWS_KEY) if isinstance(samples, dict) else None
        if isinstance(samples, dict) and isinstance(value, str) and value.startswith(marker):
            found[index] = tables[int(value[len(marker) :])].decode("ascii")
            markers[index] = value
            samples[ROWS_KEY] = []
    if len(found) != len(tables):  # a table stood outside a test's samples: read the file as it is
        return Shard(load_run(path), {}, {})
    run = parse_run(data, str(path), path)
    as_read = compact and len(texts) == len(run.results)
    settings = _COMPACT(shared.value) if shared is not None and not as_read else ""
    documents = {
        result.nodeid: _as_read(test, texts[index] if as_read else None, markers.get(index), shared, settings)
        for index, (result, test) in enumerate(zip(run.results, data["tests"], strict=True))
        if _says_what_it_holds(result, test)
    }
    carried = {run.results[index].nodeid: rows for index, rows in found.items()}
    return Shard(run, carried, documents, {key: data[key] for key in (UNMEASURED,) if key in data})


def load_run_carrying_rows(path: Path) -> tuple[RunRecord, Carried]:
    """``load_shard`` without the documents: the run, and its rows as text by node id."""
    shard = load_shard(path)
    return shard.run, shard.carried
