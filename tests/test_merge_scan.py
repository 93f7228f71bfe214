"""How a merge reads a shard fast and as strictly as before: row tables matched where they start in the layouts
``json.dumps`` writes, a run's document decoded with a suite's settings decoded once, and readers compiled per
record type that take and refuse what the strict reader did."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from typing import Any

import pytest
from conftest import build_result

from pytest_otel_overhead.results import PipelineHealth, TestResult
from pytest_otel_overhead.wire.checks import Malformed, rows_at, rows_text
from pytest_otel_overhead.wire.document import from_document, to_document
from pytest_otel_overhead.wire.scan import decode_sharing, decode_with_tests

# -- row tables matched where they start ------------------------------------------------------------------------------

_TOKENS = ["0", "-0", "1.5", "12", "1e5", "1E+99", "1e-300", "null", "0.0010052328425726093", "9.5e-05", "-2.5E-7"]
_WRONG = ["01", "1.", ".5", "-", "1e100", "1e+100", "nul", "NaN", "+1", "1 2", "1e 5", "Infinity", '"x"', "[]", ""]
_LAYOUTS: list[dict[str, Any]] = [
    {"separators": (",", ":")},
    {},
    {"indent": 2},
    {"indent": 4},
    {"indent": 1},
    {"indent": "\t"},
    {"indent": 0},
]


def _table(rng: random.Random, wrong: float) -> list[list[Any]]:
    """Rows of four tokens, as JSON values where they are numbers and as marked text where they are not."""
    return [
        [rng.choice(_WRONG if rng.random() < wrong else _TOKENS) for _ in range(rng.choice([4, 4, 4, 4, 3, 5]))]
        for _ in range(rng.randint(0, 4))
    ]


def _laid_out(rows: list[list[Any]], layout: dict[str, Any], depth: int) -> str:
    """The table as ``json.dumps`` lays it out ``depth`` levels into a document, its tokens written as they are."""
    marked = [[f"@{token}@" for token in row] for row in rows]
    document: Any = marked
    for _ in range(depth):
        document = {"k": document}
    text = json.dumps(document, **layout)
    for row in marked:
        for token in row:
            text = text.replace(json.dumps(token), token[1:-1], 1)
    return text


def test_a_table_matched_where_it_starts_is_one_the_general_check_takes_and_ends_where_it_ends() -> None:
    """``rows_at`` answers only for rows ``rows_text`` takes, with the same compact text, ending at the table's
    end; and it answers for every such table in the compact, spaced and space-indented layouts."""
    rng = random.Random(6)
    answered = 0
    for _ in range(6_000):
        rows = _table(rng, wrong=0.02)
        layout = rng.choice(_LAYOUTS)
        text = _laid_out(rows, layout, rng.randint(0, 3)).encode()
        start = text.find(b"[")
        found = rows_at(text, start, 4)
        closing = text.rstrip(b"}\n\t ")  # the table ends where the objects around it close
        if found is None:
            regular = bool(rows) and all(len(row) == 4 and set(row) <= set(_TOKENS) for row in rows)
            indent = layout.get("indent")
            assert not (regular and (indent is None or (isinstance(indent, int) and indent > 0))), text
            continue
        end, compact = found
        answered += 1
        assert end == len(closing), text
        assert rows_text(text[start:end], 4) == compact, text
    assert answered > 800  # a few of each layout


def test_a_table_of_samples_edited_anywhere_is_taken_only_as_rows_of_finite_numbers() -> None:
    """Tables of samples below a second (checked in passes over their bytes rather than by the pattern), with a byte
    inserted, removed or changed anywhere in them: ``rows_at`` takes one only when it is rows of four finite JSON
    numbers, gives their compact text, and the general check takes it too; unedited, it takes every one."""
    rng = random.Random(8)
    alphabet = b"0123456789.,[] \n\t-eE+"
    answered = 0
    for trial in range(12_000):
        rows = [[repr(round(rng.random(), rng.randint(1, 17))) for _ in range(4)] for _ in range(rng.randint(1, 4))]
        layout = rng.choice(_LAYOUTS[:5])
        text = _laid_out(rows, layout, rng.randint(0, 3)).encode()
        start = text.find(b"[")
        closing = len(text.rstrip(b"}\n\t "))
        edits = trial % 3
        for _ in range(edits):
            at = rng.randrange(start + 1, closing)
            byte = bytes([rng.choice(alphabet)])
            put, kept = rng.choice([(byte, at), (byte, at + 1), (b"", at + 1)])  # inserted, changed or removed
            text = text[:at] + put + text[kept:]
        found = rows_at(text, start, 4)
        if found is None:
            assert edits, text  # every unedited table is rows of numbers
            continue
        end, compact = found
        answered += not edits
        values = json.loads(text[start:end])
        assert all(len(row) == 4 for row in values), text
        assert all(type(v) in (int, float) and math.isfinite(v) for row in values for v in row), text
        assert json.loads(compact) == values and rows_text(text[start:end], 4) == compact, text
    assert answered > 3_000


def test_a_table_in_another_layout_is_left_to_the_general_check() -> None:
    tabbed = b"[\n\t[\n\t\t1.5,\n\t\t2,\n\t\t3,\n\t\t4\n\t]\n]"
    assert rows_at(tabbed, 0, 4) is None
    assert rows_text(tabbed, 4) == b"[[1.5,2,3,4]]"
    split = b"[\n  [\n    1.5,\n    2 5,\n    3,\n    4\n  ]\n]"
    assert rows_at(split, 0, 4) is None
    assert rows_text(split, 4) is None


# -- a run's document, a suite's settings decoded once ----------------------------------------------------------------


def _document(layout: dict[str, Any], tests: int = 5, **run: Any) -> tuple[str, dict[str, Any]]:
    results = [build_result(f"tests/test_a.py::test_{index}") for index in range(tests)]
    data = {"schema": "pytest-otel-overhead", "tests": [result.as_dict() for result in results], "run": run}
    return json.dumps(data, **layout), data


@pytest.mark.parametrize("layout", _LAYOUTS[:4])
def test_the_settings_of_a_suite_are_decoded_once_and_the_document_is_as_json_reads_it(layout: dict[str, Any]) -> None:
    text, data = _document(layout)
    decoded = decode_sharing(text, "settings", "0123abcd:settings")
    assert decoded is not None
    found, texts, shared = decoded
    assert found == json.loads(text) == data
    assert shared is not None
    assert all(test["settings"] is found["tests"][0]["settings"] for test in found["tests"])
    assert [json.loads(shared.restore(test)) for test in texts] == data["tests"]
    assert all(shared.restore(test) in text for test in texts)
    assert decode_with_tests(text) == (data, [shared.restore(test) for test in texts])


def test_settings_written_elsewhere_too_are_read_where_they_stand() -> None:
    """The run's own settings, written as the tests' after the tests, and a test holding the same object in
    another member: each value is where ``json`` reads it (the second: the tests decoded as written)."""
    settings = build_result("tests/test_a.py::test_0").as_dict()["settings"]
    text, data = _document({"separators": (",", ":")}, settings=settings)
    decoded = decode_sharing(text, "settings", "0123abcd:settings")
    assert decoded is not None and decoded[0] == data and decoded[2] is not None
    data["tests"][2]["process"] = settings
    text = json.dumps(data)
    decoded = decode_sharing(text, "settings", "0123abcd:settings")
    assert decoded is not None and decoded[0] == json.loads(text) and decoded[2] is None


def test_a_document_that_is_not_json_is_none_whatever_its_settings() -> None:
    text, _ = _document({})
    assert decode_sharing(text[:-1], "settings", "0123abcd:settings") is None
    broken = text.replace('"sampler"', "sampler", 3)  # the third test's settings, not the first's
    assert decode_sharing(broken, "settings", "0123abcd:settings") is None
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)


# -- readers compiled per record type ---------------------------------------------------------------------------------


def test_a_compiled_reader_takes_each_value_as_the_strict_reader_did() -> None:
    health = to_document(PipelineHealth(calls=100, started=300, sampled=300, exported=290, export_calls=2))
    assert from_document(PipelineHealth, health) == PipelineHealth(100, 300, 300, 290, 2)
    document = build_result("tests/test_a.py::test_0").as_dict()
    read = from_document(TestResult, {**document, "duration_s": 2, "throughput_baseline_per_s": None})
    assert type(read.duration_s) is float and read.duration_s == 2.0
    assert math.isnan(read.throughput_baseline)
    assert from_document(TestResult, {**document, "duration_s": -0.0}).duration_s == 0.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pairs", True, "pairs: true is not a whole number"),
        ("pairs", 2**53 + 1, "pairs: 9007199254740993 is not a count (0 to 2**53)"),
        ("duration_s", -1.0, "duration_s: -1.0 is negative"),
        ("duration_s", 1e400, "duration_s: Infinity is not a finite number"),
        ("nodeid", 5, "nodeid: 5 is not a string"),
        ("nodeid", "\ud800", "nodeid: '\\ud800' holds a lone surrogate, not text"),
        ("mode", None, None),
    ],
)
def test_a_compiled_reader_refuses_what_the_strict_reader_refused(field: str, value: Any, message: str | None) -> None:
    document = {**build_result("tests/test_a.py::test_0").as_dict(), field: value}
    if message is None:  # a null where the type has no None keeps the default
        assert from_document(TestResult, document).mode == "time"
        return
    with pytest.raises(Malformed) as refused:
        from_document(TestResult, document)
    assert str(refused.value) == message


def test_a_record_read_is_the_record_its_init_makes_of_the_same_fields() -> None:
    """Records read are made without calling ``__init__``: the same fields in the same order, defaults too."""
    result = build_result("tests/test_a.py::test_0")
    read = from_document(TestResult, {**result.as_dict(), "notes": ["a note"]})
    seen = 0
    for record in (read, read.settings, read.settings.pipeline, *read.metrics, read.health):
        kind = type(record)
        made = kind(**{field.name: getattr(record, field.name) for field in dataclasses.fields(kind)})
        assert list(vars(record).items()) == list(vars(made).items())
        assert record == made and hash(record) == hash(made)
        seen += 1
    assert seen == 4 + len(read.metrics)
