"""Saved runs: one JSON document per run in a store directory, read back into the records reports use.

A saved run is the JSON report (``history.document.document``) plus a ``run`` section: its name, when
it was saved, the git commit, the machine and the session's settings. Each run goes to a file of
its own, named ``<UTC time>_<name>_<random>.json`` and written by ``outputs.write_text_file``
(a temporary file first, then linked into place), so readers never see half a file and processes
saving at once never collide.

Anything in the store that cannot be read as a run is reported as one line naming the file
(:class:`HistoryError`), never as a traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import math
import os
import platform
import re
import secrets
import subprocess
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_otel_overhead.history.document import SCHEMA_VERSION, document
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, TestResult
from pytest_otel_overhead.settings.flags import DEFAULT_STORAGE  # declared with --otel-overhead-storage
from pytest_otel_overhead.settings.layers import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

__all__ = [
    "DEFAULT_STORAGE",
    "SCHEMA",
    "HistoryError",
    "RunRecord",
    "Store",
    "git_info",
    "load_run",
    "machine_info",
    "parse_run",
    "printable",
    "result_from_dict",
    "valid_name",
]

SCHEMA = "pytest-otel-overhead"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP_LENGTH = len("20250101T000000000000Z")


class HistoryError(Exception):
    """A run cannot be saved, found or read; the message is one line and names the file."""


def valid_name(name: str) -> bool:
    """Names become part of file names: letters, digits, ``.``, ``_``, ``-``; at most 64 characters.

    The whole name must match: no trailing newline, no control characters, nothing else.
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


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


@dataclass(frozen=True)
class RunRecord:
    """One run, live or loaded: its measured tests and where and when they were measured."""

    results: tuple[TestResult, ...]
    environment: Mapping[str, Any]
    created: str
    name: str | None = None
    path: Path | None = None
    git: Mapping[str, Any] | None = None
    machine: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How reports name this run: its name, else its file, else when it was made."""
        if self.name:
            return self.name
        if self.path is not None:
            return self.path.stem
        return f"run of {self.created}"

    @property
    def commit(self) -> str | None:
        commit = (self.git or {}).get("commit")
        if not isinstance(commit, str):
            return None
        dirty = (self.git or {}).get("dirty")
        return commit[:10] + (" (uncommitted changes)" if dirty else "")

    def result(self, nodeid: str) -> TestResult | None:
        return next((r for r in self.results if r.nodeid == nodeid), None)

    def to_document(self) -> dict[str, Any]:
        """The saved form: the JSON report of the results plus the ``run`` section."""
        data = document(self.results)
        data["created"] = self.created
        data["environment"] = dict(self.environment)
        data["run"] = {
            "name": self.name,
            "saved": self.created,
            "git": None if self.git is None else dict(self.git),
            "machine": dict(self.machine),
            "settings": dict(self.settings),
        }
        return data


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Reading documents back
#
# Readers check every value against what ``as_dict`` writes, so a loaded run holds nothing that
# reports and comparisons could trip over: whole numbers are counts no larger than _LARGEST_COUNT,
# other numbers are finite (``null`` stands for NaN or an unbounded end, as written), texts are
# texts. A value that does not fit raises _Malformed, whose message names the field it was in.

_LARGEST_COUNT = 2**53
"""Whole numbers above this are no measurement's, and floats could no longer hold them exactly."""
_MISSING = object()

_T = typing.TypeVar("_T")


class _Malformed(ValueError):
    """A value that does not fit its field; ``where`` is the path of keys to it."""

    def __init__(self, problem: str, where: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.where = where

    def within(self, key: str) -> _Malformed:
        return _Malformed(self.problem, (_clip(key, 60), *self.where))

    def __str__(self) -> str:
        return f"{'.'.join(self.where)}: {self.problem}" if self.where else self.problem


def _describe(value: Any) -> str:
    """A JSON value in a few characters: error messages stay one short line whatever the file holds."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 128:  # about 39 digits: longer ones are described, not shown
            return f"a whole number of about {round(value.bit_length() * math.log10(2))} digits"
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return repr(_clip(value, 40))
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field(data: Mapping[str, Any], key: str, read: Callable[[Any], _T], *, required: bool = True) -> _T:
    """``read(data[key])``; an absent optional field reads as ``null``."""
    value = data.get(key, _MISSING)
    if value is _MISSING:
        if required:
            raise _Malformed("missing", (key,))
        value = None
    try:
        return read(value)
    except _Malformed as error:
        raise error.within(key) from None


def _optional(read: Callable[[Any], _T]) -> Callable[[Any], _T | None]:
    return lambda value: None if value is None else read(value)


def _read_number(value: Any, missing: float = math.nan) -> float:
    """A finite number as ``as_dict`` writes it; ``null`` stands for a value JSON cannot hold (``missing``)."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Malformed(f"{_describe(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Malformed(f"{_describe(value)} is too large for a number") from None
    if not math.isfinite(number):
        raise _Malformed(f"{_describe(value)} is not a finite number")
    return number


def _read_interval_low(value: Any) -> float:
    return _read_number(value, -math.inf)


def _read_interval_high(value: Any) -> float:
    return _read_number(value, math.inf)


def _read_amount(value: Any) -> float:
    """A time, size or rate: finite and not negative."""
    number = _read_number(value)
    if number < 0:
        raise _Malformed(f"{_describe(value)} is negative")
    return number


def _read_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{_describe(value)} is not a whole number")
    if not 0 <= value <= _LARGEST_COUNT:
        raise _Malformed(f"{_describe(value)} is not a count (0 to 2**53)")
    return value


def _read_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{_describe(value)} is not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # "\ud800" is valid JSON but no text: printing or writing it would fail
        raise _Malformed(f"{_describe(value)} holds a lone surrogate, not text") from None
    return value


def _read_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{_describe(value)} is not an object")
    return value


def _read_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Malformed(f"{_describe(value)} is not a list")
    return value


def _read_entries(value: Any, read: Callable[[Any], _T]) -> list[tuple[str, _T]]:
    """The members of an object, each value read by ``read``; errors name the member."""
    entries = []
    for key, item in _read_object(value).items():
        try:
            entries.append((_read_text(key), read(item)))
        except _Malformed as error:
            raise error.within(key) from None
    return entries


def _read_items(value: Any, read: Callable[[Any], _T]) -> list[_T]:
    """The items of a list, each read by ``read``; errors name the item (``#1`` is the first)."""
    items = []
    for index, item in enumerate(_read_list(value)):
        try:
            items.append(read(item))
        except _Malformed as error:
            raise error.within(f"#{index + 1}") from None
    return items


def _read_row(width: int) -> Callable[[Any], tuple[float, ...]]:
    def read(value: Any) -> tuple[float, ...]:
        row = _read_list(value)
        if len(row) != width:
            raise _Malformed(f"a row of {len(row)} values, not {width}")
        return tuple(_read_number(v) for v in row)

    return read


def _read_rows(width: int) -> Callable[[Any], list[tuple[float, ...]]]:
    """A list of rows of ``width`` numbers; rows of finite floats (nearly all) are taken in one pass."""

    def read(value: Any) -> list[tuple[float, ...]]:
        rows = _read_list(value)
        if all(type(row) is list and len(row) == width for row in rows):
            flat = [v for row in rows for v in row]
            # A NaN or infinity makes the sum not finite, and so does an overflow: those take the slow path.
            if all(type(v) is float for v in flat) and math.isfinite(math.fsum(flat)):
                return [tuple(row) for row in rows]
        return _read_items(rows, _read_row(width))

    return read


def _read_budget(value: Any) -> Budget | None:
    if value is None:
        return None
    data = _read_object(value)
    kind = _field(data, "kind", _read_text)
    if kind not in ("relative", "absolute"):
        raise _Malformed(f"{_describe(kind)} is not a budget kind (relative or absolute)", ("kind",))
    amount = _field(data, "value", _read_number)
    if not amount > 0:
        raise _Malformed(f"{_describe(amount)} is not a budget (above 0)", ("value",))
    return Budget(kind, amount)  # type: ignore[arg-type]


def _read_verdict(value: Any) -> Verdict | None:
    if value is None:
        return None
    text = _read_text(value)
    try:
        return Verdict(text)
    except ValueError:
        raise _Malformed(f"{_describe(text)} is not a verdict ({', '.join(v.value for v in Verdict)})") from None


def _read_confidence(value: Any) -> float:
    confidence = _read_number(value)
    if not 0 < confidence < 1:
        raise _Malformed(f"{_describe(value)} is not a confidence (between 0 and 1)")
    return confidence


def _metric(value: Any) -> MetricResult:
    data = _read_object(value)
    return MetricResult(
        metric=_field(data, "metric", _read_text),
        baseline=_field(data, "baseline", _read_number),
        instrumented=_field(data, "instrumented", _read_number),
        overhead=_field(data, "overhead", _read_number),
        ci_low=_field(data, "ci_low", _read_interval_low),
        ci_high=_field(data, "ci_high", _read_interval_high),
        kind=_field(data, "overhead_kind", _read_text),
        n=_field(data, "n", _read_count),
        spread=_field(data, "spread", _read_number),
        confidence=_field(data, "confidence", _read_confidence),
        budget=_field(data, "budget", _read_budget, required=False),
        verdict=_field(data, "verdict", _read_verdict, required=False),
        resolution=_field(data, "resolution", _optional(_read_number), required=False),
        note=_field(data, "note", _optional(_read_text), required=False),
        between_process_spread=_field(data, "between_process_spread", _optional(_read_number), required=False),
    )


def _accepts(hint: Any, value: Any) -> tuple[bool, Any]:
    """Whether a JSON value fits a simple field type (scalars, optional, tuples of them), and the value to pass.

    Numbers fit only when finite, and whole numbers only up to ``_LARGEST_COUNT`` either way.
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            fits, converted = _accepts(option, value)
            if fits:
                return True, converted
        return False, None
    if hint is type(None):
        return value is None, None
    if hint is float:
        if value is None:
            return False, None
        try:
            return True, _read_number(value)
        except _Malformed:
            return False, None
    if hint is int:
        fits = type(value) is int and -_LARGEST_COUNT <= value <= _LARGEST_COUNT
        return fits, value if fits else None
    if hint is str:
        try:
            return True, _read_text(value)
        except _Malformed:
            return False, None
    if hint is bool:
        return type(value) is bool, value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_accepts(args[0], v) for v in value]
            if all(fits for fits, _ in items):
                return True, tuple(v for _, v in items)
    return False, None


@functools.cache
def _type_hints(cls: type) -> dict[str, Any] | None:
    """A record type's resolved hints, resolved once: per test, they took most of the time a large run took to read."""
    try:
        return typing.get_type_hints(cls)
    except Exception:
        return None


def _extra_fields(cls: type, data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Fields beyond the ones read explicitly, where the document holds them under the field's own name.

    Documents and record types both grow; a field of a simple type carries over, anything else
    keeps its default (reports then show less about it, nothing breaks).
    """
    hints = _type_hints(cls)
    if hints is None:  # a hint that cannot be resolved here: keep the defaults
        return {}
    extra = {}
    for name in _field_names(cls) - known:
        if name in data:
            fits, value = _accepts(hints.get(name), data[name])
            if fits:
                extra[name] = value
    return extra


def _field_names(cls: type) -> frozenset[str]:
    """Fields a record type has: documents written by other versions may carry more or fewer."""
    return frozenset(f.name for f in dataclasses.fields(cls))


def _settings(value: Any) -> MeasureSettings:
    data = _read_object(value)
    core: dict[str, Any] = {
        "sampler": _field(data, "sampler", _read_text),
        "sample_rate": _field(data, "sample_rate", _optional(_read_number), required=False),
        "processor": _field(data, "processor", _read_text),
        "batch_size": _field(data, "batch_size", _read_count),
        "schedule_delay_ms": _field(data, "schedule_delay_ms", _read_amount),
        "queue_size": _field(data, "queue_size", _read_count),
        "export_timeout_ms": _field(data, "export_timeout_ms", _read_amount),
        "exporter": _field(data, "exporter", _read_text),
    }
    pipeline = PipelineSettings(**core, **_extra_fields(PipelineSettings, data, frozenset(core)))
    budgets = _field(data, "budgets", lambda v: _read_entries(v, _read_budget))
    settings: dict[str, Any] = {
        "pipeline": pipeline,
        "budgets": tuple((name, budget) for name, budget in budgets if budget is not None),
        "metric": _field(data, "metric", _read_text),
        "max_time": _field(data, "max_time_s", _read_amount),
        "inconclusive": _field(data, "inconclusive", _read_text),
        "sources": tuple(
            _field(data, "sources", lambda v: _read_entries(v if v is not None else {}, _read_text), required=False)
        ),
    }
    return MeasureSettings(**settings, **_extra_fields(MeasureSettings, data, frozenset(settings)))


# PipelineHealth fields that documents give per call or under another name: field -> (key, how).
# "per call count": a per-call figure of a whole count; "per call total": of a total (seconds);
# "count" and "seconds": as they are.
_HEALTH_RENAMED = {
    "ended": ("spans_ended_per_call", "per call count"),
    "spans_failed": ("spans_dropped_failed_export", "count"),
    "export_latency_p50": ("export_latency_p50_s", "seconds"),
    "export_latency_p95": ("export_latency_p95_s", "seconds"),
    "export_cpu_s": ("export_cpu_per_call_s", "per call total"),
    "bytes_sent": ("bytes_sent_per_call", "per call count"),
    "bytes_uncompressed": ("bytes_uncompressed_per_call", "per call count"),
}


def _health(value: Any) -> PipelineHealth | None:
    if value is None:
        return None
    data = _read_object(value)
    calls = _field(data, "calls", _read_count)

    def total(per_call: Any) -> float:
        """A per-call figure times the calls; ``null`` (no calls to divide by) counts as none."""
        amount = _read_amount(per_call) * calls if per_call is not None else 0.0
        if amount > _LARGEST_COUNT:
            raise _Malformed(f"{_describe(per_call)} per call over {calls} calls is more than any run counts")
        return amount

    def count(per_call: Any) -> int:
        return round(total(per_call))

    core: dict[str, Any] = {
        "calls": calls,
        "started": _field(data, "spans_started_per_call", count),
        "sampled": _field(data, "spans_sampled_per_call", count),
        "exported": _field(data, "spans_exported_per_call", count),
        "export_calls": _field(data, "export_calls", _read_count),
        "by_name": tuple(
            _field(
                data,
                "spans_per_call_by_name",
                lambda v: _read_entries(v if v is not None else {}, count),
                required=False,
            )
        ),
    }
    readers: dict[str, Callable[[Any], Any]] = {
        "per call count": count,
        "per call total": total,
        "count": _read_count,
        "seconds": _read_amount,
    }
    fields = _field_names(PipelineHealth)
    for name, (key, how) in _HEALTH_RENAMED.items():
        if name in fields and data.get(key) is not None:
            core[name] = _field(data, key, readers[how])
    return PipelineHealth(**core, **_extra_fields(PipelineHealth, data, frozenset(core)))


def _process(value: Any) -> ProcessProbe | None:
    if value is None:
        return None
    data = _read_object(value)
    return ProcessProbe(
        rss_baseline=_field(data, "rss_baseline_bytes", _read_count),
        rss_instrumented=_field(data, "rss_instrumented_bytes", _read_count),
        threads_baseline=_field(data, "threads_baseline", _read_count),
        threads_instrumented=_field(data, "threads_instrumented", _read_count),
        heap_retained_baseline=_field(data, "heap_retained_per_call_baseline_bytes", _read_number, required=False),
        heap_retained_instrumented=_field(
            data, "heap_retained_per_call_instrumented_bytes", _read_number, required=False
        ),
    )


_SAMPLE_COLUMNS = ["cpu_baseline", "cpu_instrumented", "wall_baseline", "wall_instrumented"]


def _samples(value: Any) -> tuple[tuple[float, float, float, float], ...]:
    """Raw per-pair times. Any finite number or ``null`` is read: comparisons say which they cannot use."""
    data = _read_object(value) if value is not None else {}
    if not data:
        return ()
    columns = _field(data, "columns", _read_list)
    if columns != _SAMPLE_COLUMNS:
        raise _Malformed(f"columns are not {', '.join(_SAMPLE_COLUMNS)}", ("columns",))
    return tuple(_field(data, "per_call_seconds", _read_rows(4)))  # type: ignore[arg-type]


def _instruction_samples(value: Any) -> tuple[tuple[float, float], ...]:
    data = _read_object(value) if value is not None else {}
    if not data:
        return ()
    return tuple(_field(data, "per_process_per_call", _read_rows(2)))  # type: ignore[arg-type]


def _metrics(value: Any) -> tuple[MetricResult, ...]:
    return tuple(metric for _, metric in _read_entries(value, _metric))


def result_from_dict(data: Mapping[str, Any]) -> TestResult:
    """The inverse of ``TestResult.as_dict``; raises ``ValueError`` naming the field when malformed."""
    data = _read_object(data)
    core: dict[str, Any] = {
        "nodeid": _field(data, "nodeid", _read_text),
        "settings": _field(data, "settings", _settings),
        "metrics": _field(data, "metrics", _metrics),
        "health": _field(data, "pipeline", _health, required=False),
        "process": _field(data, "process", _process, required=False),
        "pairs": _field(data, "pairs", _read_count),
        "calls_per_block": _field(data, "calls_per_block", _read_count),
        "looks": _field(data, "looks", _read_count),
        "duration_s": _field(data, "duration_s", _read_amount),
        "stop_reason": _field(data, "stop_reason", _read_text),
        "throughput_baseline": _field(data, "throughput_baseline_per_s", _read_number, required=False),
        "throughput_instrumented": _field(data, "throughput_instrumented_per_s", _read_number, required=False),
        "samples": _field(data, "samples", _samples, required=False),
    }
    if "instruction_samples" in data and "instruction_samples" in _field_names(TestResult):
        core["instruction_samples"] = _field(data, "instruction_samples", _instruction_samples)
    return TestResult(**core, **_extra_fields(TestResult, data, frozenset(core)))


def _read_name(value: Any) -> str:
    name = _read_text(value)
    if not valid_name(name):
        raise _Malformed(f"{_describe(name)} is not a run name")
    return name


def _read_git(value: Any) -> dict[str, Any]:
    data = _read_object(value)
    return {
        "commit": _field(data, "commit", _optional(_read_text), required=False),
        "branch": _field(data, "branch", _optional(_read_text), required=False),
        "dirty": _field(data, "dirty", _optional(_read_flag), required=False),
    }


def _read_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Malformed(f"{_describe(value)} is not true or false")
    return value


def _read_machine(value: Any) -> dict[str, Any]:
    data = _read_object(value if value is not None else {})
    return {**data, "cpu_model": _field(data, "cpu_model", _optional(_read_text), required=False)}


_ENVIRONMENT_READERS: dict[str, Callable[[Any], Any]] = {
    "python": _read_text,
    "implementation": _read_text,
    "platform": _read_text,
    "machine": _read_text,
    "cpu_count": _read_count,
    "memory_bytes": _read_count,
    "load_average": lambda v: _read_items(v, _read_amount),
    "packages": lambda v: dict(_read_entries(v, _optional(_read_text))),
}


def _read_environment(value: Any) -> dict[str, Any]:
    """Where the run was measured; the fields reports and comparisons show must have their types."""
    data = _read_object(value if value is not None else {})
    known = {key: _field(data, key, _optional(read)) for key, read in _ENVIRONMENT_READERS.items() if key in data}
    return {**data, **known}


def _read_tests(value: Any) -> tuple[TestResult, ...]:
    results = []
    for index, test in enumerate(_read_list(value)):
        try:
            results.append(result_from_dict(test))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            where = test.get("nodeid") if isinstance(test, dict) else None
            which = f"#{index + 1}" + (f" ({_clip(where, 200)})" if isinstance(where, str) else "")
            raise _Malformed(f"test {which} is malformed: {error}") from None
    return tuple(results)


def parse_run(data: Any, source: str, path: Path | None = None) -> RunRecord:
    """A run from a decoded JSON document (a saved run or an ``--otel-overhead-json`` report).

    Any document, however damaged, either gives a run whose every value has its field's type and
    range, or raises :class:`HistoryError` with one line that starts with ``source``.
    """
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise HistoryError(f'{source}: not a pytest-otel-overhead run (no "schema": "{SCHEMA}")')
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise HistoryError(f"{source}: schema_version {_describe(version)} is not a whole number")
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{source}: written with schema version {_describe(version)}, newer than this pytest-otel-overhead "
            f"reads ({SCHEMA_VERSION}); upgrade pytest-otel-overhead"
        )
    if not isinstance(data.get("tests"), list):
        raise HistoryError(f'{source}: "tests" is not a list')
    try:
        results = _read_tests(data["tests"])
        run = _field(data, "run", _read_run_section, required=False)
        created = run["saved"] or _field(data, "created", _optional(_read_text), required=False)
        return RunRecord(
            results=results,
            environment=_field(data, "environment", _read_environment, required=False),
            created=created or "",
            name=run["name"],
            path=path,
            git=run["git"],
            machine=run["machine"],
            settings=run["settings"],
        )
    except _Malformed as error:
        raise HistoryError(f"{source}: {printable(str(error))}") from None


def _read_run_section(value: Any) -> dict[str, Any]:
    """The ``run`` section of a saved run (absent from ``--otel-overhead-json`` reports)."""
    data = _read_object(value if value is not None else {})
    return {
        "name": _field(data, "name", _optional(_read_name), required=False),
        "saved": _field(data, "saved", _optional(_read_text), required=False),
        "git": _field(data, "git", _optional(_read_git), required=False),
        "machine": _field(data, "machine", _read_machine, required=False),
        "settings": _field(data, "settings", lambda v: _read_object(v if v is not None else {}), required=False),
    }


def printable(text: str) -> str:
    """Text from a file made safe for one line of a terminal: control characters (a newline, an
    escape sequence) and lone surrogates are shown escaped, not obeyed."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def load_run(path: Path) -> RunRecord:
    """Read one run file; every failure is a :class:`HistoryError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
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


# ---------------------------------------------------------------------------------------------
# The store


class Store:
    """A directory of saved runs; file names sort by the time they were saved."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> list[Path]:
        """Saved runs, oldest first. Hidden files (including unfinished writes) are not runs."""
        if not self.root.is_dir():
            return []
        try:
            found = [
                p for p in self.root.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
            ]
        except OSError as error:
            raise HistoryError(f"{self.root}: cannot list the run store ({error.strerror or error})") from None
        return sorted(found, key=self._sort_key)

    @staticmethod
    def _sort_key(path: Path) -> tuple[str, str]:
        """Saved runs sort by the time in their name; files named otherwise by when they were modified."""
        stamp = path.name[:_STAMP_LENGTH]
        try:
            dt.datetime.strptime(stamp, _STAMP_FORMAT)
        except ValueError:
            try:
                stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime(_STAMP_FORMAT)
            except (OSError, ValueError, OverflowError):  # gone, or a modification time no calendar holds
                stamp = ""
        return (stamp, path.name)

    def save(self, run: RunRecord, name: str) -> Path:
        """Write ``run`` under a new unique file name; never replaces an existing run."""
        if not valid_name(name):
            raise HistoryError(f"{name!r} cannot name a run: use letters, digits, '.', '_' and '-' (at most 64)")
        text = json.dumps(dataclasses.replace(run, name=name).to_document(), separators=(",", ":"), allow_nan=False)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HistoryError(f"{self.root}: cannot create the run store ({error.strerror or error})") from None
        stamp = dt.datetime.now(dt.timezone.utc).strftime(_STAMP_FORMAT)
        for _ in range(8):
            target = self.root / f"{stamp}_{name}_{secrets.token_hex(4)}.json"
            try:
                return write_text_file(target, text + "\n", replace=False)
            except FileExistsError:
                continue  # another process saved under this very name a moment ago: draw another
            except OSError as error:
                raise HistoryError(f"{self.root}: cannot write a run there ({error.strerror or error})") from None
        raise HistoryError(f"{self.root}: could not find a free file name for run {name!r}")

    @staticmethod
    def name_of(path: Path) -> str:
        """The run name inside a store file name (``<stamp>_<name>_<random>.json``)."""
        stem = path.stem
        if len(stem) > _STAMP_LENGTH + 1 and stem[_STAMP_LENGTH] == "_" and "_" in stem[_STAMP_LENGTH + 1 :]:
            return stem[_STAMP_LENGTH + 1 :].rsplit("_", 1)[0]
        return stem

    def resolve(self, spec: str, *, base: Path | None = None) -> Path:
        """The file meant by ``spec``: ``latest``, ``latest~N``, a run name, a file-name prefix or a path."""
        files = self.files()
        match = re.fullmatch(r"latest(?:~([0-9]{1,9}))?", spec)
        if match:
            back = int(match.group(1) or 0)
            if back >= len(files):
                have = f"only {len(files)} saved" if files else "none saved"
                raise HistoryError(f"{self.root}: no run {spec!r} ({have})")
            return files[-1 - back]
        candidate = Path(spec)
        if not candidate.is_absolute() and base is not None:
            candidate = base / candidate
        if candidate.suffix == ".json" or os.sep in spec or (os.altsep and os.altsep in spec):
            if candidate.is_file():
                return candidate
            raise HistoryError(f"{candidate}: no such file")
        named = [p for p in files if self.name_of(p) == spec]
        if named:
            return named[-1]
        prefixed = [p for p in files if p.stem.startswith(spec)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise HistoryError(f"{self.root}: {spec!r} matches {len(prefixed)} saved runs; give more of the file name")
        names = sorted({self.name_of(p) for p in files})
        known = f"saved names: {', '.join(names[-10:])}" if names else "no runs saved there"
        raise HistoryError(f"{self.root}: no saved run named {spec!r} ({known})")

    def load_all(self) -> tuple[list[RunRecord], list[str]]:
        """Every readable run, oldest first, and one error line for each file that is not one."""
        runs: list[RunRecord] = []
        errors: list[str] = []
        try:
            files = self.files()
        except HistoryError as error:
            return runs, [str(error)]
        for path in files:
            try:
                runs.append(load_run(path))
            except HistoryError as error:
                errors.append(str(error))
        return runs, errors
