"""Records in the document form: one path out and back, driven by their fields, and the schema page made from them."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
from conftest import build_metric, build_result, docs_script

from pytest_otel_overhead.history.store import result_from_dict
from pytest_otel_overhead.results import PipelineHealth, ProcessProbe, Replica, TestResult
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire.checks import Malformed
from pytest_otel_overhead.wire.document import from_document, to_document
from pytest_otel_overhead.wire.fields import Derived
from pytest_otel_overhead.wire.form import form

ROOT = Path(__file__).resolve().parent.parent
BEFORE = Path(__file__).resolve().parent / "data" / "results_as_written_before.json"
"""Two results (time and instructions mode) as ``TestResult.as_dict`` wrote them when each record had
its own hand-written ``as_dict`` and the store its own reader."""


def _full_result(mode: str = "time") -> TestResult:
    """A result with every field set, all figures finite so that the records compare equal."""
    result = build_result("a.py::t[x]")
    metrics = tuple(
        dataclasses.replace(m, resolution=0.001, note="n", between_process_spread=0.01) for m in result.metrics
    )
    heap = build_metric("heap", overhead=0.2, budget=Budget("absolute", 2048.0), verdict=Verdict.INCONCLUSIVE)
    health = PipelineHealth(
        calls=100,
        started=300,
        sampled=300,
        exported=290,
        export_calls=2,
        by_name=(("s", 300),),
        ended=300,
        export_latency_p50=0.001,
        export_cpu_s=0.02,
        bytes_sent=4000,
        max_dropped=20,
        exports_timed_out=1,
        foreign_origins=("tracer x",),
        export_left_running=True,
    )
    return dataclasses.replace(
        result,
        metrics=(*metrics, heap),
        mode=mode,
        health=health,
        process=ProcessProbe(50_000_000, 52_000_000, 1, 2, 10.0, 30.0),
        samples=((1e-3, 1.1e-3, 2e-3, 2.1e-3),),
        instruction_samples=((1e6, 1.1e6),) if mode == "instructions" else (),
        processes=2,
        replicas=(Replica(11, 5, 64, 10, 1.5, Verdict.PASS, (("cpu", 0.01, -0.01, 0.02),)),),
        no_telemetry="nothing recorded",
        failed_exports="every export failed",
        notes=("tracemalloc paused",),
    )


@pytest.mark.parametrize("mode", ["time", "instructions"])
def test_a_result_reads_back_as_it_was_written(mode: str) -> None:
    result = _full_result(mode)
    text = json.dumps(result.as_dict(), allow_nan=False)
    assert result_from_dict(json.loads(text)) == result


def _kept(before: Any, after: Any) -> Any:
    """``after`` reduced to the keys ``before`` has, at every depth: fields added since may be written too."""
    if isinstance(before, dict) and isinstance(after, dict):
        return {key: _kept(value, after.get(key)) for key, value in before.items()}
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [_kept(b, a) for b, a in zip(before, after, strict=True)]
    return after


def test_documents_written_before_read_back_and_write_again_unchanged() -> None:
    written = json.loads(BEFORE.read_text(encoding="utf-8"))
    for document in written.values():
        again = json.loads(json.dumps(result_from_dict(document).as_dict(), allow_nan=False))
        assert _kept(document, again) == document


def test_an_unbounded_interval_is_written_as_null_and_read_back_unbounded() -> None:
    result = build_result(metrics=(build_metric("cpu", ci_low=-math.inf, ci_high=math.inf),))
    document = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert document["metrics"]["cpu"]["ci_low"] is None and document["metrics"]["cpu"]["ci_high"] is None
    cpu = result_from_dict(document).metric("cpu")
    assert cpu is not None and cpu.ci_low == -math.inf and cpu.ci_high == math.inf


# -- the form itself, on a record made for the test --------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Inner:
    name: str
    size: int


@dataclasses.dataclass(frozen=True)
class Outer:
    calls: int
    seen: int = dataclasses.field(default=0, metadata=form(key="seen_per_call", per="calls"))
    colour: Colour = Colour.RED
    ratio: float = math.nan
    inner: Inner | None = None
    tags: tuple[str, ...] = ()
    items: tuple[Inner, ...] = dataclasses.field(default=(), metadata=form(keyed_by="name"))

    DERIVED: ClassVar[tuple[Derived, ...]] = (Derived("double", "integer", "twice the calls", lambda o: 2 * o.calls),)


def test_a_record_needs_no_code_to_be_written_and_read() -> None:
    record = Outer(4, 8, Colour.BLUE, 0.5, Inner("a", 1), ("x", "y"), (Inner("b", 2), Inner("c", 3)))
    document = to_document(record)
    assert document == {
        "calls": 4,
        "seen_per_call": 2.0,
        "colour": "blue",
        "ratio": 0.5,
        "inner": {"name": "a", "size": 1},
        "tags": ["x", "y"],
        "items": {"b": {"name": "b", "size": 2}, "c": {"name": "c", "size": 3}},
        "double": 8,
    }
    assert from_document(Outer, json.loads(json.dumps(document))) == record


def test_absent_fields_keep_their_defaults_and_null_numbers_read_as_nan() -> None:
    record = from_document(Outer, {"calls": 1, "ratio": None, "tags": None})
    assert record.tags == () and math.isnan(record.ratio) and record.colour is Colour.RED


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, "calls: missing"),
        ({"calls": -1}, "calls: -1 is not a count (0 to 2**53)"),
        ({"calls": 1, "colour": "green"}, "colour: 'green' is not a colour (red, blue)"),
        ({"calls": 1, "inner": {"name": "a", "size": "big"}}, "inner.size: 'big' is not a whole number"),
        ({"calls": 1, "items": {"b": {"name": 3, "size": 1}}}, "items.b.name: 3 is not a string"),
        ({"calls": 1, "tags": ["x", 2]}, "tags.#2: 2 is not a string"),
        (
            {"calls": 2, "seen_per_call": 1e300},
            "seen_per_call: 1e+300 per call over 2 calls is more than any run counts",
        ),
        ({"calls": 1, "ratio": "high"}, "ratio: 'high' is not a number"),
    ],
)
def test_a_value_that_does_not_fit_names_its_field(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(Malformed) as caught:
        from_document(Outer, document)
    assert str(caught.value) == expected


@dataclasses.dataclass(frozen=True)
class Beside:
    inner: Inner = dataclasses.field(default=Inner("a", 1), metadata=form(inline=True))
    pairs: tuple[tuple[str, int], ...] = dataclasses.field(default=(), metadata=form(entries=True))


def test_a_nested_record_may_stand_among_the_fields_and_pairs_are_an_object() -> None:
    record = Beside(Inner("b", 2), (("x", 1), ("y", 2)))
    document = to_document(record)
    assert document == {"name": "b", "size": 2, "pairs": {"x": 1, "y": 2}}
    assert from_document(Beside, json.loads(json.dumps(document))) == record
    with pytest.raises(Malformed, match=r"^pairs\.y: 'two' is not a whole number"):
        from_document(Beside, {"name": "b", "size": 2, "pairs": {"y": "two"}})
    with pytest.raises(Malformed, match=r"^size: missing"):
        from_document(Beside, {"name": "b"})


# -- the schema page ---------------------------------------------------------------------------------


def _schema_tables() -> ModuleType:
    return docs_script("schema_tables")


def test_the_committed_schema_page_matches_what_the_records_generate() -> None:
    tables = _schema_tables()
    page = tables.PAGE.read_text(encoding="utf-8")
    assert tables.page_with_tables(page) == page, "run: python docs/schema_tables.py"


def test_every_key_a_result_writes_has_a_row_in_the_schema_page() -> None:
    tables = _schema_tables()
    page = tables.PAGE.read_text(encoding="utf-8")
    document = _full_result("instructions").as_dict()
    nested = [document, document["metrics"]["cpu"], document["pipeline"], document["process"], document["replicas"][0]]
    nested.append(document["settings"])
    for part in nested:
        for key in part:
            assert f"| `{key}` |" in page, key


def test_the_schema_check_fails_on_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = _schema_tables()
    stale = tmp_path / "json-schema.md"
    markers = "\n".join(f"{tables.begin(name)}\n| old |\n{tables.end(name)}\n" for name in tables.TABLES)
    stale.write_text(f"# JSON\n\n{markers}", encoding="utf-8")
    monkeypatch.setattr(tables, "PAGE", stale)
    assert tables.main(["--check"]) == 1
    assert tables.main([]) == 0  # rewrites it
    assert tables.main(["--check"]) == 0
    assert "| `between_process_spread` | number or null |" in stale.read_text(encoding="utf-8")


def test_a_field_without_a_docstring_stops_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = _schema_tables()
    monkeypatch.setitem(tables.TABLES, "metrics", Inner)
    with pytest.raises(SystemExit, match=r"Inner\.name: no docstring"):
        tables.page_with_tables(tables.PAGE.read_text(encoding="utf-8"))


def test_settings_recurring_across_tests_are_read_once_and_still_checked_each_time() -> None:
    from pytest_otel_overhead.settings.records import MeasureSettings

    first = build_result("tests/test_a.py::test_1").as_dict()
    other = dataclasses.replace(build_result("tests/test_a.py::test_2"), settings=MeasureSettings(max_time=7.0))
    second = json.loads(json.dumps(first))  # an equal document, not the same object
    read = [result_from_dict(document) for document in (first, second, other.as_dict())]
    assert read[0].settings is read[1].settings  # one record for the documents that are equal
    assert read[2].settings == other.settings and read[2].settings != read[0].settings
    damaged = json.loads(json.dumps(first))
    damaged["settings"]["max_time_s"] = "long"
    for _ in range(2):  # a failure is not kept: the same damage is refused again
        with pytest.raises(Malformed, match=r"settings\.max_time_s"):
            result_from_dict(damaged)
