"""docs/json-schema.md documents every field the JSON report and saved runs contain."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_otel_overhead.history.document import SCHEMA_VERSION
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.results import PipelineHealth, ProcessProbe, TestResult

DOC = Path(__file__).resolve().parent.parent / "docs" / "json-schema.md"
# Objects keyed by data (metric names, span names, settings, package names): their keys are not fields.
DATA_KEYED = {"metrics", "budgets", "sources", "spans_per_call_by_name", "packages", "operations"}


def _fields(value: Any, parent: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if parent not in DATA_KEYED:
                yield key
            yield from _fields(inner, key)
    elif isinstance(value, list):
        for inner in value:
            yield from _fields(inner, parent)


def _documented() -> set[str]:
    return set(re.findall(r"`([a-z_0-9]+)`", DOC.read_text(encoding="utf-8")))


def test_every_field_of_a_saved_run_is_documented(make_result: Callable[..., TestResult]) -> None:
    full = dataclasses.replace(
        make_result("t.py::t"),
        health=PipelineHealth(calls=10, started=20, sampled=20, exported=18, export_calls=1, by_name=(("s", 20),)),
        process=ProcessProbe(1, 2, 1, 2, 3.0, 4.0),
    )
    results = [full]
    if "instruction_samples" in {f.name for f in dataclasses.fields(TestResult)}:
        results.append(dataclasses.replace(full, mode="instructions", instruction_samples=((1.0, 2.0),)))  # type: ignore[call-arg]
    run = RunRecord(
        results=tuple(results),
        environment={},
        created="2025-01-01T00:00:00+00:00",
        name="n",
        git={"commit": "c", "branch": "b", "dirty": False},
        machine={"cpu_model": "x"},
        settings=full.settings.as_dict(),
    )
    data = json.loads(json.dumps(run.to_document()))
    missing = sorted(set(_fields(data)) - _documented())
    assert missing == [], f"fields missing from {DOC.name}: {missing}"


def test_the_schema_version_is_stated() -> None:
    assert f"currently **{SCHEMA_VERSION}**" in DOC.read_text(encoding="utf-8")
