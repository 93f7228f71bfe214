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
import json
import math
import os
import platform
import re
import secrets
import subprocess
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_otel_overhead.flags import DEFAULT_STORAGE  # declared with --otel-overhead-storage
from pytest_otel_overhead.history.document import SCHEMA_VERSION, document
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, TestResult
from pytest_otel_overhead.settings.layers import MeasureSettings, PipelineSettings
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.verdict import Verdict

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
    "result_from_dict",
    "valid_name",
]

SCHEMA = "pytest-otel-overhead"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP_LENGTH = len("20250101T000000000000Z")


class HistoryError(Exception):
    """A run cannot be saved, found or read; the message is one line and names the file."""


def valid_name(name: str) -> bool:
    """Names become part of file names: letters, digits, ``.``, ``_``, ``-``; at most 64 characters."""
    return bool(_NAME.match(name))


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


def _num(value: Any, missing: float = math.nan) -> float:
    """Numbers as written by ``as_dict``: ``None`` stands for a value JSON cannot hold."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _budget(value: Any) -> Budget | None:
    if value is None:
        return None
    kind = _str(value["kind"])
    if kind not in ("relative", "absolute"):
        raise ValueError(f"budget kind {kind!r}")
    return Budget(kind, _num(value["value"]))  # type: ignore[arg-type]


def _metric(data: Mapping[str, Any]) -> MetricResult:
    verdict = data.get("verdict")
    resolution = data.get("resolution")
    note = data.get("note")
    return MetricResult(
        metric=_str(data["metric"]),
        baseline=_num(data["baseline"]),
        instrumented=_num(data["instrumented"]),
        overhead=_num(data["overhead"]),
        ci_low=_num(data["ci_low"], -math.inf),
        ci_high=_num(data["ci_high"], math.inf),
        kind=_str(data["overhead_kind"]),
        n=_int(data["n"]),
        spread=_num(data["spread"]),
        confidence=_num(data["confidence"]),
        budget=_budget(data.get("budget")),
        verdict=None if verdict is None else Verdict(verdict),
        resolution=None if resolution is None else _num(resolution),
        note=None if note is None else _str(note),
    )


def _accepts(hint: Any, value: Any) -> tuple[bool, Any]:
    """Whether a JSON value fits a simple field type (scalars, optional, tuples of them), and the value to pass."""
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
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        return fits, float(value) if fits else None
    if hint in (int, str, bool):
        return type(value) is hint, value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_accepts(args[0], v) for v in value]
            if all(fits for fits, _ in items):
                return True, tuple(v for _, v in items)
    return False, None


def _extra_fields(cls: type, data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Fields beyond the ones read explicitly, where the document holds them under the field's own name.

    Documents and record types both grow; a field of a simple type carries over, anything else
    keeps its default (reports then show less about it, nothing breaks).
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a hint that cannot be resolved here: keep the defaults
        return {}
    extra = {}
    for name in _field_names(cls) - known:
        if name in data:
            fits, value = _accepts(hints.get(name), data[name])
            if fits:
                extra[name] = value
    return extra


def _settings(data: Mapping[str, Any]) -> MeasureSettings:
    rate = data.get("sample_rate")
    core: dict[str, Any] = {
        "sampler": _str(data["sampler"]),
        "sample_rate": None if rate is None else _num(rate),
        "processor": _str(data["processor"]),
        "batch_size": _int(data["batch_size"]),
        "schedule_delay_ms": _num(data["schedule_delay_ms"]),
        "queue_size": _int(data["queue_size"]),
        "export_timeout_ms": _num(data["export_timeout_ms"]),
        "exporter": _str(data["exporter"]),
    }
    pipeline = PipelineSettings(**core, **_extra_fields(PipelineSettings, data, frozenset(core)))
    budgets = tuple((_str(name), b) for name, value in dict(data["budgets"]).items() if (b := _budget(value)))
    sources = tuple((_str(k), _str(v)) for k, v in dict(data.get("sources") or {}).items())
    settings: dict[str, Any] = {
        "pipeline": pipeline,
        "budgets": budgets,
        "metric": _str(data["metric"]),
        "max_time": _num(data["max_time_s"]),
        "inconclusive": _str(data["inconclusive"]),
        "sources": sources,
    }
    return MeasureSettings(**settings, **_extra_fields(MeasureSettings, data, frozenset(settings)))


def _field_names(cls: type) -> frozenset[str]:
    """Fields a record type has: documents written by other versions may carry more or fewer."""
    return frozenset(f.name for f in dataclasses.fields(cls))


# PipelineHealth fields that documents give per call or under another name: field -> (key, how).
# "count": a per-call figure of a whole count; "amount": a per-call figure of a total; "as is".
_HEALTH_RENAMED = {
    "ended": ("spans_ended_per_call", "count"),
    "spans_failed": ("spans_dropped_failed_export", "as is"),
    "export_latency_p50": ("export_latency_p50_s", "as is"),
    "export_latency_p95": ("export_latency_p95_s", "as is"),
    "export_cpu_s": ("export_cpu_per_call_s", "amount"),
    "bytes_sent": ("bytes_sent_per_call", "count"),
    "bytes_uncompressed": ("bytes_uncompressed_per_call", "count"),
}


def _health(data: Mapping[str, Any] | None) -> PipelineHealth | None:
    if data is None:
        return None
    calls = _int(data["calls"])

    def count(per_call: Any) -> int:
        value = _num(per_call)
        return round(value * calls) if math.isfinite(value) else 0

    core: dict[str, Any] = {
        "calls": calls,
        "started": count(data["spans_started_per_call"]),
        "sampled": count(data["spans_sampled_per_call"]),
        "exported": count(data["spans_exported_per_call"]),
        "export_calls": _int(data["export_calls"]),
        "by_name": tuple((_str(name), count(v)) for name, v in dict(data.get("spans_per_call_by_name") or {}).items()),
    }
    fields = _field_names(PipelineHealth)
    for name, (key, how) in _HEALTH_RENAMED.items():
        if name in fields and data.get(key) is not None:
            if how == "count":
                core[name] = count(data[key])
            elif how == "amount":
                core[name] = _num(data[key]) * calls
            else:
                core[name] = data[key]
    return PipelineHealth(**core, **_extra_fields(PipelineHealth, data, frozenset(core)))


def _process(data: Mapping[str, Any] | None) -> ProcessProbe | None:
    if data is None:
        return None
    return ProcessProbe(
        rss_baseline=_int(data["rss_baseline_bytes"]),
        rss_instrumented=_int(data["rss_instrumented_bytes"]),
        threads_baseline=_int(data["threads_baseline"]),
        threads_instrumented=_int(data["threads_instrumented"]),
        heap_retained_baseline=_num(data.get("heap_retained_per_call_baseline_bytes")),
        heap_retained_instrumented=_num(data.get("heap_retained_per_call_instrumented_bytes")),
    )


def _samples(data: Mapping[str, Any] | None) -> tuple[tuple[float, float, float, float], ...]:
    if not data:
        return ()
    columns = list(data["columns"])
    expected = ["cpu_baseline", "cpu_instrumented", "wall_baseline", "wall_instrumented"]
    if columns != expected:
        raise ValueError(f"sample columns {columns}")
    rows = []
    for row in data["per_call_seconds"]:
        if len(row) != 4:
            raise ValueError("a sample row without 4 values")
        rows.append((_num(row[0]), _num(row[1]), _num(row[2]), _num(row[3])))
    return tuple(rows)


def _instruction_samples(data: Mapping[str, Any] | None) -> tuple[tuple[float, float], ...]:
    if not data:
        return ()
    rows = []
    for row in data["per_process_per_call"]:
        if len(row) != 2:
            raise ValueError("an instruction sample row without 2 values")
        rows.append((_num(row[0]), _num(row[1])))
    return tuple(rows)


def result_from_dict(data: Mapping[str, Any]) -> TestResult:
    """The inverse of ``TestResult.as_dict``; raises ``KeyError``/``TypeError``/``ValueError`` when malformed."""
    core: dict[str, Any] = {
        "nodeid": _str(data["nodeid"]),
        "settings": _settings(data["settings"]),
        "metrics": tuple(_metric(m) for m in dict(data["metrics"]).values()),
        "health": _health(data.get("pipeline")),
        "process": _process(data.get("process")),
        "pairs": _int(data["pairs"]),
        "calls_per_block": _int(data["calls_per_block"]),
        "looks": _int(data["looks"]),
        "duration_s": _num(data["duration_s"]),
        "stop_reason": _str(data["stop_reason"]),
        "throughput_baseline": _num(data.get("throughput_baseline_per_s")),
        "throughput_instrumented": _num(data.get("throughput_instrumented_per_s")),
        "samples": _samples(data.get("samples")),
    }
    if "instruction_samples" in data and "instruction_samples" in _field_names(TestResult):
        core["instruction_samples"] = _instruction_samples(data["instruction_samples"])
    return TestResult(**core, **_extra_fields(TestResult, data, frozenset(core)))


def parse_run(data: Any, source: str, path: Path | None = None) -> RunRecord:
    """A run from a decoded JSON document (a saved run or an ``--otel-overhead-json`` report)."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise HistoryError(f'{source}: not a pytest-otel-overhead run (no "schema": "{SCHEMA}")')
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise HistoryError(f"{source}: schema_version {version!r} is not a whole number")
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{source}: written with schema version {version}, newer than this pytest-otel-overhead reads "
            f"({SCHEMA_VERSION}); upgrade pytest-otel-overhead"
        )
    tests = data.get("tests")
    if not isinstance(tests, list):
        raise HistoryError(f'{source}: "tests" is not a list')
    results = []
    for index, test in enumerate(tests):
        try:
            results.append(result_from_dict(test))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            where = test.get("nodeid") if isinstance(test, dict) else None
            detail = f"missing field {error}" if isinstance(error, KeyError) else str(error)
            raise HistoryError(
                f"{source}: test #{index + 1}{f' ({where})' if isinstance(where, str) else ''} is malformed: {detail}"
            ) from None
    run = _mapping(data.get("run"))
    name = run.get("name")
    created = run.get("saved") or data.get("created")
    return RunRecord(
        results=tuple(results),
        environment=_mapping(data.get("environment")),
        created=created if isinstance(created, str) else "",
        name=name if isinstance(name, str) else None,
        path=path,
        git=run.get("git") if isinstance(run.get("git"), dict) else None,
        machine=_mapping(run.get("machine")),
        settings=_mapping(run.get("settings")),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
        found = [p for p in self.root.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()]
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
            except OSError:
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
        match = re.fullmatch(r"latest(?:~(\d+))?", spec)
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
        for path in self.files():
            try:
                runs.append(load_run(path))
            except HistoryError as error:
                errors.append(str(error))
        return runs, errors
