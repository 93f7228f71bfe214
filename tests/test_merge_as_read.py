"""A merge writes what it read as it read it: tests of compact shards as their files held them, the saved run
and the JSON report from the same pieces, and the run's document decoded member by member as ``json`` does."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import build_metric, build_result

from pytest_otel_overhead.cli import main
from pytest_otel_overhead.history.merge import plugin_version_here
from pytest_otel_overhead.history.reader import decode_with_tests, load_shard
from pytest_otel_overhead.history.store import RunRecord, Store, load_run
from pytest_otel_overhead.results import PipelineHealth, TestResult
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

OURS = {"packages": {"pytest-otel-overhead": plugin_version_here()}}


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _suite() -> list[TestResult]:
    """Twelve results with raw rows, notes and pipeline health; passed, failed and undecided."""
    results = []
    for index in range(12):
        overhead = 0.01 * (index % 7)
        verdict = Verdict.PASS if overhead < 0.045 else Verdict.FAIL if overhead > 0.055 else Verdict.INCONCLUSIVE
        cpu = build_metric(
            "cpu", overhead=overhead, ci_low=overhead - 0.005, ci_high=overhead + 0.005,
            budget=Budget("relative", 0.05), verdict=verdict,
        )  # fmt: skip
        result = dataclasses.replace(
            build_result(f"tests/test_{index // 4}.py::test_{index}", metrics=(cpu,)),
            samples=tuple((1e-3, 1e-3 * (1 + overhead), 1.1e-3, 1.1e-3 * (1 + overhead)) for _ in range(10 + index)),
            notes=(f"note of test {index}",) if index % 3 == 0 else (),
            health=PipelineHealth(calls=100, started=300 + index, sampled=300, exported=290, export_calls=2),
        )
        results.append(result)
    return results


def _spaced(path: Path, results: list[TestResult]) -> Path:
    """A shard laid out as ``json.dumps`` lays it out by default: a space after each comma and colon."""
    run = RunRecord(tuple(results), OURS, "2026-12-05T00:00:00+00:00", machine={"cpu_model": "CPU A"})
    path.write_text(json.dumps(run.to_document(), allow_nan=False), encoding="utf-8")
    return path


def _tests_by_id(document: dict[str, Any]) -> dict[str, Any]:
    return {test["nodeid"]: test for test in document["tests"]}


def _saved(path: Path, results: list[TestResult], cpu_model: str = "CPU A") -> Path:
    """A shard laid out as the store saves a run: compact."""
    run = RunRecord(tuple(results), OURS, "2026-12-05T00:00:00+00:00", machine={"cpu_model": cpu_model})
    path.write_text(json.dumps(run.to_document(), separators=(",", ":"), allow_nan=False), encoding="utf-8")
    return path


def _test_texts(path: Path) -> dict[str, str]:
    """Each test's text as the file holds it, by node id."""
    text = path.read_text(encoding="utf-8")
    decoded = decode_with_tests(text)
    assert decoded is not None
    data, texts = decoded
    return {test["nodeid"]: texts[index] for index, test in enumerate(data["tests"])}


def test_tests_of_compact_shards_are_written_as_their_files_held_them(tmp_path: Path) -> None:
    results = _suite()
    shards = [[*results[k::3], results[0]] for k in range(3)]  # test_0 in all three: combined, so rebuilt
    compact = [_saved(tmp_path / f"c{k}.json", shard) for k, shard in enumerate(shards)]
    spaced = [_spaced(tmp_path / f"s{k}.json", shard) for k, shard in enumerate(shards)]
    for name, files in (("compact", compact), ("spaced", spaced)):
        assert main(["merge", *map(str, files), f"--json={tmp_path / name}.json"]) in (0, 1)
    merged = tmp_path / "compact.json"
    written = _test_texts(merged)
    held = {nodeid: text for path in compact for nodeid, text in _test_texts(path).items()}
    once = [result.nodeid for result in results[1:]]
    assert all(written[nodeid] == held[nodeid] for nodeid in once)  # byte for byte, rows and all
    assert written[results[0].nodeid] != held[results[0].nodeid]  # combined across shards: made anew
    documents = [json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8")) for name in ("compact", "spaced")]
    assert _tests_by_id(documents[0]) == _tests_by_id(documents[1])  # as read or encoded again: the same document
    assert load_run(merged).results == load_run(tmp_path / "spaced.json").results


def test_a_compact_test_whose_document_contradicts_its_record_is_written_from_the_record(tmp_path: Path) -> None:
    path = _saved(tmp_path / "s.json", _suite()[:2])
    document = json.loads(path.read_text(encoding="utf-8"))
    document["tests"][0]["verdict"] = "FAIL"  # edited by hand: the record's metrics still say PASS
    path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    shard = load_shard(path)
    run, carried, documents = shard.run, shard.carried, shard.documents
    assert list(documents) == [run.results[1].nodeid] and len(carried) == 2
    assert '"per_call_seconds":[]' in documents[run.results[1].nodeid]  # its rows left out, carried beside it
    assert main(["merge", str(path), f"--json={tmp_path / 'merged.json'}"]) == 0
    merged = json.loads((tmp_path / "merged.json").read_text(encoding="utf-8"))
    assert merged["tests"][0]["verdict"] == "PASS"
    assert [len(test["samples"]["per_call_seconds"]) for test in merged["tests"]] == [10, 11]


def test_the_saved_run_and_the_json_report_hold_the_same_tests(tmp_path: Path) -> None:
    results = _suite()
    files = [_saved(tmp_path / f"c{k}.json", [*results[k::2], results[0]], f"CPU {k}") for k in range(2)]
    storage, report = tmp_path / "store", tmp_path / "merged.json"
    argv = ["merge", *map(str, files), "--save=merged", f"--storage={storage}", f"--json={report}"]
    assert main(argv) in (0, 1)
    saved = json.loads(Store(storage).resolve("merged").read_text(encoding="utf-8"))
    written = json.loads(report.read_text(encoding="utf-8"))
    assert saved["tests"] == written["tests"] and len(saved["tests"]) == len(results)
    assert saved["run"]["name"] == "merged" and written["run"]["name"] == "merged"


@pytest.mark.parametrize(
    "text",
    [
        '{"schema": "x", "tests": [{"a": 1}, {"b": [1, 2]}], "run": null}',
        ' \n{"tests":[],"z":{"tests":[{"inner":1}]}} \n',
        '{"tests": [ {"a": "]}"} , {"c": "\\"tests\\""} ] , "tests2": []}',
        '{"tests": {"not": "a list"}}',
        '{"tests": [1], "tests": [{"last": true}]}',  # a key twice: the last one, as json reads it
        "{}",
    ],
)
def test_a_document_decoded_member_by_member_is_what_json_reads(text: str) -> None:
    decoded = decode_with_tests(text)
    assert decoded is not None
    data, texts = decoded
    assert data == json.loads(text)
    tests = data.get("tests")
    if isinstance(tests, list):
        assert [json.loads(piece) for piece in texts] == tests


@pytest.mark.parametrize(
    "text",
    ["", "[1, 2]", '{"tests": [1,]}', '{"tests": [1] "x": 2}', '{"a": 1} {"b": 2}', '{"a": }', "{1: 2}", '{"a": 1'],
)
def test_a_document_that_is_not_a_json_object_is_left_to_json(text: str) -> None:
    assert decode_with_tests(text) is None


# -- rows checked as text: exactly JSON's tables, whatever the layout --------------------------------------------------

_WS = " \t\n\r"
_NUMBER = r"(?:-?(?:0|[1-9][0-9]{0,199})(?:\.[0-9]+)?(?:[eE](?:-[0-9]+|\+?[0-9]{1,2}))?|null)"
_S = "[ \t\n\r]*"
_ROW = r"\[" + _S + (_S + "," + _S).join([_NUMBER] * 4) + _S + r"\]"
# The rows a document may hold, written out whole: whitespace between any two tokens, none inside one.
_TABLE = re.compile(r"\[" + _S + _ROW + "(?:" + _S + "," + _S + _ROW + ")*" + _S + r"\]")
_TOKENS = ["0", "-0", "1.5", "12", "1e5", "1E+99", "1e-300", "null", "01", "1.", ".5", "-", "1e100", "1e+100", "nul"]
_TOKENS += ["9" * 200, "9" * 201, "9" * 200 + ".5", "NaN", "+1", "1 2", "1e 5", "nu ll", "1\x0b", "1.0e", ""]


def _random_table(rng: random.Random) -> str:
    def gap() -> str:
        return rng.choice(["", "", "", " ", "\n   ", "\t", "\r\n", "\x0b"]) if rng.random() < 0.6 else ""

    rows = [
        "[" + gap() + (gap() + "," + gap()).join(rng.choice(_TOKENS) for _ in range(rng.choice([4, 4, 4, 3, 5])))
        + gap() + "]"
        for _ in range(rng.randint(0, 3))
    ]  # fmt: skip
    table = "[" + gap() + (gap() + "," + gap()).join(rows) + gap() + "]"
    return gap() + table + gap() if rng.random() < 0.1 else table


def test_rows_as_text_are_taken_exactly_when_they_are_json_rows_in_any_layout() -> None:
    """Rows carried as text are the tables a document may hold, no more (the strict reader says what is wrong
    with the rest), with their whitespace dropped; the indented and spaced layouts take other paths."""
    from pytest_otel_overhead.wire.checks import rows_text

    rng = random.Random(24)
    taken = 0
    for _ in range(20_000):
        text = _random_table(rng)
        stripped = "".join(c for c in text if c not in _WS)
        expected = stripped if _TABLE.fullmatch(text) or (len(text) < 64 and stripped == "[]") else None
        assert rows_text(text.encode(), 4) == (None if expected is None else expected.encode()), repr(text)
        taken += expected is not None
    assert 2_000 < taken < 18_000  # both kinds were tried
