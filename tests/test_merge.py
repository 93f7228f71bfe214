"""Merging the runs of shards into one run: same document as one run, refusals, tests measured on several machines."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import build_metric, build_result

from pytest_otel_overhead.cli import main
from pytest_otel_overhead.history.merge import MERGED_STOP_REASON, merge_runs
from pytest_otel_overhead.history.store import RunRecord, Store, load_run
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL
from pytest_otel_overhead.results import CycleModel, PipelineHealth, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire.document import to_document

BUDGET = Budget("relative", 0.05)
VERSION = {"packages": {"pytest-otel-overhead": "1.0.0"}, "python": "3.11.9"}


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _cpu(overhead: float, half: float, verdict: Verdict | None = Verdict.PASS) -> Any:
    return build_metric(
        "cpu", overhead=overhead, ci_low=overhead - half, ci_high=overhead + half, budget=BUDGET, verdict=verdict
    )


def _suite() -> list[TestResult]:
    """Twelve recorded results of every kind a session writes: passed, failed, undecided, no telemetry, notes."""
    results = []
    for index in range(12):
        overhead = 0.01 * (index % 7)
        verdict = Verdict.PASS if overhead + 0.005 < 0.05 else Verdict.FAIL if overhead - 0.005 > 0.05 else None
        result = build_result(
            f"tests/test_{index // 4}.py::test_{index}",
            metrics=(_cpu(overhead, 0.005, verdict or Verdict.INCONCLUSIVE),),
        )
        result = dataclasses.replace(
            result,
            samples=tuple((1e-3, 1e-3 * (1 + overhead), 1e-3, 1e-3 * (1 + overhead)) for _ in range(10 + index)),
            notes=(f"note of test {index}",) if index % 3 == 0 else (),
            health=PipelineHealth(calls=100, started=300 + index, sampled=300, exported=290, export_calls=2),
        )
        if index == 5:
            result = dataclasses.replace(result, no_telemetry="the instrumented arm recorded no spans")
        results.append(result)
    return results


def _write_run(path: Path, results: list[TestResult], cpu_model: str = "CPU A", **environment: Any) -> Path:
    run = RunRecord(
        tuple(results), {**VERSION, **environment}, "2026-12-05T00:00:00+00:00", machine={"cpu_model": cpu_model}
    )
    path.write_text(json.dumps(run.to_document()), encoding="utf-8")
    return path


def _tests_by_id(document: dict[str, Any]) -> dict[str, Any]:
    return {test["nodeid"]: test for test in document["tests"]}


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_shards_merged_give_the_document_of_one_run_test_by_test(tmp_path: Path, shards: int) -> None:
    results = _suite()
    # pytest-split and node-id lists do not cut the suite into contiguous blocks: deal the tests out.
    files = [_write_run(tmp_path / f"shard-{k}.json", results[k::shards]) for k in range(shards)]
    one = load_run(_write_run(tmp_path / "one.json", results))

    assert main(["merge", *map(str, files), "--json", str(tmp_path / "merged.json")]) == 1  # test_6 is over budget
    merged = json.loads((tmp_path / "merged.json").read_text(encoding="utf-8"))

    assert _tests_by_id(merged) == _tests_by_id(one.to_document())
    assert sorted(_tests_by_id(merged)) == sorted(r.nodeid for r in results)
    assert merged["run"]["machine"]["shards"][0]["tests"] == len(results[0::shards])


def test_notes_health_and_no_telemetry_of_each_shard_arrive(tmp_path: Path) -> None:
    results = _suite()
    files = [_write_run(tmp_path / f"s{k}.json", results[k::3]) for k in range(3)]
    runs = [load_run(f) for f in files]
    merged, summary = merge_runs(runs, created="now")
    by_id = {r.nodeid: r for r in merged.results}
    assert by_id["tests/test_0.py::test_3"].notes == ("note of test 3",)
    assert by_id["tests/test_1.py::test_5"].no_telemetry is not None
    assert by_id["tests/test_2.py::test_11"].health == results[11].health
    assert summary.shards == 3 and summary.tests == 12 and not summary.combined


def test_all_passing_shards_exit_zero_and_write_every_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passing = [r for r in _suite() if r.verdict is Verdict.PASS]
    assert len(passing) == 10
    files = [_write_run(tmp_path / f"s{k}.json", passing[k::2]) for k in range(2)]
    storage = tmp_path / "store"
    code = main(
        [
            "merge",
            *map(str, files),
            "--expect=2",
            "--save=merged-main",
            f"--storage={storage}",
            f"--markdown={tmp_path / 'summary.md'}",
            f"--html={tmp_path / 'report.html'}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    saved = load_run(Store(storage).resolve("merged-main"))
    assert saved.name == "merged-main" and len(saved.results) == len(passing)
    assert "10 measured: 10 PASS" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "<html" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "merged 2 shards" in capsys.readouterr().out


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["merge", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_a_missing_shard_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(_write_run(tmp_path / f"s{k}.json", _suite()[k::3])) for k in range(2)]
    err = _refused(capsys, *files, "--expect", "3")
    assert "expected 3 shards, got 2" in err and files[0] in err


def test_runs_of_different_plugin_versions_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write_run(tmp_path / "a.json", _suite()[:2])
    b = _write_run(tmp_path / "b.json", _suite()[2:4], packages={"pytest-otel-overhead": "2.0.0"})
    err = _refused(capsys, str(a), str(b))
    assert "different pytest-otel-overhead versions" in err and str(a) in err and "b.json (2.0.0)" in err


def test_one_test_with_different_settings_in_two_shards_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _suite()[0]
    other = dataclasses.replace(result, settings=MeasureSettings(pipeline=PipelineSettings(batch_size=64)))
    a, b = _write_run(tmp_path / "a.json", [result]), _write_run(tmp_path / "b.json", [other])
    err = _refused(capsys, str(a), str(b))
    assert result.nodeid in err and "a.json" in err and "b.json" in err and "batch_size" in err


def _counted(overhead: float, model: CycleModel, seed: int) -> TestResult:
    """A test counted in instructions mode: eight layouts' rows of cache counts, weighed by ``model``."""
    rows = tuple(
        (1e6 + 100 * k, 1e6 * (1 + overhead) + 100 * ((k * seed) % 8), 1e3, 1.1e3, 10.0, 11.0, 0.0, 0.0)
        for k in range(8)
    )
    cycles = build_metric("cycles", overhead=overhead, ci_low=overhead - 0.002, ci_high=overhead + 0.002)
    return dataclasses.replace(
        build_result("tests/test_c.py::test_counted", metrics=(dataclasses.replace(cycles, budget=BUDGET),)),
        mode="instructions",
        samples=(),
        pairs=8,
        instruction_samples=rows,
        cycle_model=model,
    )


def test_a_test_counted_in_several_shards_keeps_its_cycle_model(tmp_path: Path) -> None:
    a = _write_run(tmp_path / "a.json", [_counted(0.02, CYCLE_MODEL, 1)], cpu_model="CPU A")
    b = _write_run(tmp_path / "b.json", [_counted(0.03, CYCLE_MODEL, 2)], cpu_model="CPU B")
    assert main(["merge", str(a), str(b), f"--json={tmp_path / 'merged.json'}"]) == 0
    (test,) = json.loads((tmp_path / "merged.json").read_text(encoding="utf-8"))["tests"]
    assert test["stop_reason"] == str(MERGED_STOP_REASON)
    assert len(test["instruction_samples"]["per_process_per_call"]) == 16  # both shards' processes
    assert test["cycle_model"] == to_document(CYCLE_MODEL)
    merged = load_run(tmp_path / "merged.json").results[0]
    assert merged.cycle_model == CYCLE_MODEL


def test_shards_that_estimate_cycles_with_different_models_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    heavier = dataclasses.replace(CYCLE_MODEL, ll_miss_cycles=CYCLE_MODEL.ll_miss_cycles + 100)
    a = _write_run(tmp_path / "a.json", [_counted(0.02, CYCLE_MODEL, 1)])
    b = _write_run(tmp_path / "b.json", [_suite()[0]])  # time mode: no cycle model of its own
    c = _write_run(tmp_path / "c.json", [dataclasses.replace(_counted(0.02, heavier, 1), nodeid="t.py::other")])
    err = _refused(capsys, str(a), str(b), str(c))
    assert "different cycle models" in err and str(a) in err and str(c) in err and str(b) not in err
    assert "last-level miss" in err


def test_an_unreadable_file_is_refused_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write_run(tmp_path / "good.json", _suite()[:2])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    err = _refused(capsys, str(good), str(bad))
    assert "bad.json" in err and "not valid JSON" in err


def _shard_of(overhead: float, model: str, tmp_path: Path, name: str, seed: int) -> RunRecord:
    result = build_result("tests/test_x.py::test_across", metrics=(_cpu(overhead, 0.004),))
    rows = tuple((1e-3, 1e-3 * (1 + overhead) * (1 + 1e-4 * ((i * seed) % 7)), 1e-3, 1e-3) for i in range(20))
    result = dataclasses.replace(result, samples=rows, notes=(f"shard {name}",))
    return load_run(_write_run(tmp_path / f"{name}.json", [result], cpu_model=model))


def test_a_test_measured_on_several_machines_is_combined_across_them(tmp_path: Path) -> None:
    # Each shard alone is sure: [+1.6%, +2.4%] and [+7.6%, +8.4%] PASS and FAIL a 5% budget.
    runs = [
        _shard_of(0.02, "CPU A", tmp_path, "a", 1),
        _shard_of(0.08, "CPU B", tmp_path, "b", 2),
        _shard_of(0.05, "CPU B", tmp_path, "c", 3),
    ]
    merged, summary = merge_runs(runs, created="now")
    (result,) = merged.results
    cpu = result.metric("cpu")
    assert cpu is not None and cpu.n == 3
    # The machines disagree by far more than each one's interval: the combination says so by its width,
    # several times each one's own, and by a between-machine spread far above the prior's.
    assert cpu.ci_low < 0.03 and cpu.ci_high > 0.07 and cpu.verdict is Verdict.INCONCLUSIVE
    assert cpu.between_process_spread is not None and cpu.between_process_spread > 0.015
    assert result.notes[0] == "measured in 3 shards on 2 machine(s) (CPU A; CPU B)"
    assert {"shard a", "shard b", "shard c"} <= set(result.notes)
    assert result.processes == 3 and result.pairs == 120 and len(result.samples) == 60
    assert result.stop_reason == MERGED_STOP_REASON
    assert summary.combined == ("tests/test_x.py::test_across",) and summary.machines == ("CPU A", "CPU B")


def test_combining_shards_needs_neither_the_measuring_engine_nor_the_sdk(tmp_path: Path) -> None:
    runs = [_shard_of(0.02 + 0.01 * k, f"CPU {k}", tmp_path, f"s{k}", k + 1) for k in range(2)]
    files = [str(run.path) for run in runs]
    script = (
        "import sys; from pytest_otel_overhead.cli import main; "
        f"code = main(['merge', *{files!r}, '--json={tmp_path / 'merged.json'}']); "
        "print(code, sorted(m for m in ('pytest', 'opentelemetry.sdk.trace', 'pytest_otel_overhead.engine.runner') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
    (test,) = json.loads((tmp_path / "merged.json").read_text(encoding="utf-8"))["tests"]
    assert test["stop_reason"] == str(MERGED_STOP_REASON)  # combined across the two


def test_machines_that_agree_give_a_decided_combination(tmp_path: Path) -> None:
    runs = [_shard_of(0.02 + 0.001 * k, f"CPU {k}", tmp_path, f"s{k}", k + 1) for k in range(4)]
    merged, _ = merge_runs(runs, created="now")
    cpu = merged.results[0].metric("cpu")
    assert cpu is not None and cpu.verdict is Verdict.PASS and math.isclose(cpu.overhead, 0.0215, abs_tol=1e-3)


def test_a_merged_run_survives_saving_and_loading(tmp_path: Path) -> None:
    runs = [_shard_of(0.02, "CPU A", tmp_path, "a", 1), _shard_of(0.03, "CPU B", tmp_path, "b", 2)]
    merged, _ = merge_runs(runs, created="now", name="m")
    path = Store(tmp_path / "store").save(merged, "m")
    again = load_run(path)
    assert again.machine["cpu_models"] == ["CPU A", "CPU B"]
    assert _tests_by_id(again.to_document()) == _tests_by_id(merged.to_document())


SHARDED = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("shards")


@pytest.fixture
def broken():
    raise RuntimeError("no database here")


@pytest.mark.otel_overhead(budget="10000%", inconclusive="pass")
@pytest.mark.parametrize("n", range(4))
def test_work(n):
    with tracer.start_as_current_span("work"):
        assert sum(range(2000 + n)) >= 0


@pytest.mark.otel_overhead(budget="5%")
@pytest.mark.skip(reason="needs a collector")
def test_skipped():
    pass


@pytest.mark.otel_overhead(budget="5%")
def test_errored(broken):
    pass


def test_plain():
    pass
"""


def test_real_shards_merge_like_one_run(pytester: pytest.Pytester) -> None:
    """Two real pytest processes, each measuring half of the suite, merged; far from the budget."""
    pytester.makepyfile(test_sharded=SHARDED)
    common = ("-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-max-time=3")
    ids = [f"test_sharded.py::test_work[{n}]" for n in range(4)]
    extra = ("test_sharded.py::test_skipped", "test_sharded.py::test_errored")
    for shard, chosen in enumerate((ids[0::2], ids[1::2])):
        done = pytester.runpytest_subprocess(*common, f"--otel-overhead-json=shard-{shard}.json", *chosen, extra[shard])
        done.assert_outcomes(passed=2, skipped=1 - shard, errors=shard)
    merged = pytester.run(
        __import__("sys").executable,
        "-m",
        "pytest_otel_overhead",
        "merge",
        "shard-0.json",
        "shard-1.json",
        "--expect=2",
        "--json=merged.json",
    )
    assert merged.ret == 0, merged.stderr.str()
    document = json.loads((pytester.path / "merged.json").read_text(encoding="utf-8"))
    shards = [json.loads((pytester.path / f"shard-{k}.json").read_text(encoding="utf-8")) for k in range(2)]
    assert _tests_by_id(document) == {**_tests_by_id(shards[0]), **_tests_by_id(shards[1])}
    assert sorted(_tests_by_id(document)) == sorted(ids)
    # Tests that were to be measured and were not arrive too, with why.
    assert document["unmeasured"] == [
        {"nodeid": "test_sharded.py::test_skipped", "outcome": "skipped", "reason": "needs a collector"},
        {
            "nodeid": "test_sharded.py::test_errored",
            "outcome": "error",
            "reason": "RuntimeError: no database here",
        },
    ]
    assert "not measured in any shard: test_sharded.py::test_skipped (skipped: needs a collector)" in merged.outlines


# -- raw rows carried through as text ---------------------------------------------------------------


FIELD = "test #1 (tests/test_0.py::test_2) is malformed: samples.per_call_seconds"
NOT_JSON = "not valid JSON"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("[[1,2,3]]", FIELD),  # a short row
        ("[[1,2,3,4],[1,2,3,4,5]]", FIELD),  # a long one
        ("[[1e999,1,2,3]]", FIELD),  # not finite
        ('[["1",1,2,3]]', FIELD),  # not a number
        ("[[1,2,[3,4]]]", FIELD),
        ("[[+1,1,2,3]]", NOT_JSON),  # forms float() reads and JSON does not
        ("[[.5,1,2,3]]", NOT_JSON),
        ("[[1.,1,2,3]]", NOT_JSON),
        ("[[1.2.3,1,2,3]]", NOT_JSON),
        ("[[nul,1,2,3]]", NOT_JSON),
        ("[[nullnull,1,2,3]]", NOT_JSON),
        ("[[--1,1,2,3]]", NOT_JSON),
        ("[[1e,1,2,3]]", NOT_JSON),
    ],
)
def test_a_damaged_row_is_refused_in_one_line_naming_the_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, expected: str
) -> None:
    from pytest_otel_overhead.wire.checks import rows_text

    assert rows_text(rows.encode(), 4) is None  # not carried as text: the strict reader reads it, and says why
    good = _write_run(tmp_path / "good.json", _suite()[:2])
    bad = _write_run(tmp_path / "bad.json", _suite()[2:4])
    text = bad.read_text(encoding="utf-8")
    start = text.index('"per_call_seconds": ') + len('"per_call_seconds": ')
    bad.write_text(text[:start] + rows + text[text.index("]]", start) + 2 :], encoding="utf-8")
    err = _refused(capsys, str(good), str(bad))
    assert f"{bad}: {expected}" in err


def test_rows_as_text_read_as_the_strict_reader_reads_them() -> None:
    from pytest_otel_overhead.wire.checks import read_rows, rows_text

    text = b"[[1, 2.5e-3, null, -4],\n  [0, 1E+2, 3.25, 1e-300]]"
    carried = rows_text(text, 4)
    assert carried == b"[[1,2.5e-3,null,-4],[0,1E+2,3.25,1e-300]]"
    read = read_rows(4)
    assert str(read(json.loads(carried))) == str(read(json.loads(text)))
    assert rows_text(b" [ ] ", 4) == b"[]"


def test_a_carried_merge_gives_the_merge_of_runs_read_whole(tmp_path: Path) -> None:
    from pytest_otel_overhead.history.merge import merge_carried, run_chunks
    from pytest_otel_overhead.history.reader import load_run_carrying_rows

    results = _suite()
    files = [_write_run(tmp_path / f"s{k}.json", [*results[k::3], results[0]]) for k in range(3)]  # test_0 in all
    whole, _ = merge_runs([load_run(f) for f in files], created="now")
    loaded = [load_run_carrying_rows(f) for f in files]
    assert all(run.results[0].samples == () for run, _ in loaded)  # the rows stayed text
    merged, summary, rows = merge_carried(loaded, created="now")
    assert summary.combined == (results[0].nodeid,) and results[0].nodeid not in rows
    carried = json.loads("".join(run_chunks(merged, rows)))
    assert carried == json.loads(json.dumps(whole.to_document(), separators=(",", ":"), allow_nan=False))


def test_rows_outside_a_test_are_read_as_written(tmp_path: Path) -> None:
    from pytest_otel_overhead.history.reader import load_run_carrying_rows

    path = _write_run(tmp_path / "s.json", _suite()[:2], extra={"per_call_seconds": [[1, 2, 3, 4]]})
    run, carried = load_run_carrying_rows(path)
    assert run.environment["extra"] == {"per_call_seconds": [[1, 2, 3, 4]]}
    assert carried == {} and run.results == load_run(path).results  # read whole, rows and all


# -- tests of shards of this version written as read --------------------------------------------------


def test_tests_of_shards_of_this_version_are_written_as_read_and_give_the_same_document(tmp_path: Path) -> None:
    from pytest_otel_overhead.history.merge import plugin_version_here

    results = _suite()
    ours = {"packages": {"pytest-otel-overhead": plugin_version_here()}}
    for name, version in (("ours", ours), ("other", {})):
        shards = [[*results[k::3], results[0]] for k in range(3)]
        files = [str(_write_run(tmp_path / f"{name}{k}.json", shard, **version)) for k, shard in enumerate(shards)]
        assert main(["merge", *files, f"--json={tmp_path / name}.json"]) in (0, 1)
    written = [json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8")) for name in ("ours", "other")]
    assert _tests_by_id(written[0]) == _tests_by_id(written[1])  # as read, or rebuilt from its record: the same
    assert written[0]["tests"][1]["samples"]["per_call_seconds"]  # the rows came with the test


def test_json_reports_hold_a_compact_test_a_line_and_merge_into_the_same_lines(tmp_path: Path) -> None:
    from pytest_otel_overhead.history.document import document, encode_test, write_json
    from pytest_otel_overhead.history.merge import plugin_version_here

    results = _suite()
    if plugin_version_here() is None:
        pytest.skip("the package is not installed: its JSON reports name no version to merge as read")
    reports = [write_json(tmp_path / f"report-{k}.json", results[k::2]) for k in range(2)]
    lines = [path.read_text(encoding="utf-8").splitlines() for path in reports]
    tests = [[line.strip().rstrip(",") for line in text if line.startswith('    {"nodeid":')] for text in lines]
    assert [len(t) for t in tests] == [6, 6]
    for k, path in enumerate(reports):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["tests"] == json.loads(json.dumps(document(results[k::2])["tests"]))
        assert [json.loads(text) for text in tests[k]] == data["tests"]
        assert all(text == encode_test(json.loads(text)) for text in tests[k])  # compact, a line each
        assert lines[k][1] == '  "schema": "pytest-otel-overhead",'  # the rest indented
    # A figure written as no encoder writes it, the same value: a merge that reads a test as it stands keeps it.
    assert tests[0][0].count('"spread":0.02,') == 1
    edited = tests[0][0].replace('"spread":0.02,', '"spread":0.020,')
    reports[0].write_text("\n".join(lines[0]).replace(tests[0][0], edited), encoding="utf-8")
    tests[0][0] = edited
    assert main(["merge", *map(str, reports), f"--json={tmp_path / 'merged.json'}"]) == 1
    merged = (tmp_path / "merged.json").read_text(encoding="utf-8").splitlines()
    written = [line.strip().rstrip(",") for line in merged if line.startswith('    {"nodeid":')]
    assert sorted(written) == sorted(tests[0] + tests[1])  # byte for byte the shards' lines


def test_a_test_whose_document_contradicts_its_record_is_written_from_the_record(tmp_path: Path) -> None:
    from pytest_otel_overhead.history.merge import plugin_version_here
    from pytest_otel_overhead.history.reader import load_shard

    path = _write_run(tmp_path / "s.json", _suite()[:2], packages={"pytest-otel-overhead": plugin_version_here()})
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["tests"][0]["verdict"] == "PASS"
    document["tests"][0]["verdict"] = "FAIL"  # edited by hand: the record's metrics still say PASS
    path.write_text(json.dumps(document), encoding="utf-8")
    shard = load_shard(path)
    run, documents = shard.run, shard.documents
    assert list(documents) == [run.results[1].nodeid]
    assert main(["merge", str(path), f"--json={tmp_path / 'merged.json'}"]) == 0
    merged = json.loads((tmp_path / "merged.json").read_text(encoding="utf-8"))
    assert merged["tests"][0]["verdict"] == "PASS"


def test_rows_as_text_refuse_what_json_refuses_and_keep_what_it_reads() -> None:
    from pytest_otel_overhead.wire.checks import read_rows, rows_text

    refused = (b"[[01,1,2,3]]", b"[[1 2,3,4,5]]", b"[[1,2,3,4],]", b"[[1,2,3,4]", b"[[-,1,2,3]]", b"[[1e+400,1,2,3]]")
    for text in refused:
        assert rows_text(text, 4) is None, text
    indented = b"[\n  [\n    1,\n    2,\n    3,\n    4\n  ]\n]"
    for text in (b"[[-0,1e-05,1.5E+02,null]]", b"[[1, 2, 3, 4], [5, 6, 7, 8]]", indented):
        carried = rows_text(text, 4)
        assert carried is not None and b" " not in carried and b"\n" not in carried
        assert read_rows(4)(json.loads(carried)) == read_rows(4)(json.loads(text))


# -- tests not measured, in the reports -----------------------------------------------------------------


def test_tests_no_shard_measured_are_listed_in_the_markdown_and_html_reports(tmp_path: Path) -> None:
    shard = _write_run(tmp_path / "s0.json", _suite()[:3])
    document = json.loads(shard.read_text(encoding="utf-8"))
    document["unmeasured"] = [
        {"nodeid": "tests/test_9.py::test_skipped", "outcome": "skipped", "reason": "needs a <collector>"},
        {"nodeid": _suite()[0].nodeid, "outcome": "error", "reason": "measured in another shard"},
    ]
    shard.write_text(json.dumps(document), encoding="utf-8")
    other = _write_run(tmp_path / "s1.json", _suite()[3:6])
    md, page = tmp_path / "summary.md", tmp_path / "report.html"
    assert main(["merge", str(shard), str(other), f"--markdown={md}", f"--html={page}"]) in (0, 1)
    markdown = md.read_text(encoding="utf-8")
    assert "**Not measured:** 1 test to measure skipped or errored before a result." in markdown
    assert "| tests/test\\_9.py::test\\_skipped | skipped | needs a &lt;collector&gt; |" in markdown
    assert "measured in another shard" not in markdown  # a shard measured it
    html = page.read_text(encoding="utf-8")
    section = html.split("<h2>Not measured</h2>", 1)[1].split("<h2>", 1)[0]
    assert "test_skipped" in section and "needs a &lt;collector&gt;" in section and "another shard" not in section
    assert main(["report", str(shard), f"--markdown={tmp_path / 'one.md'}"]) == 0  # a shard's own report too
    assert "measured in another shard" in (tmp_path / "one.md").read_text(encoding="utf-8")


def test_a_run_with_every_test_measured_has_no_such_section(tmp_path: Path) -> None:
    md = tmp_path / "summary.md"
    assert main(["merge", str(_write_run(tmp_path / "s.json", _suite()[:2])), f"--markdown={md}"]) == 0
    assert "Not measured" not in md.read_text(encoding="utf-8")


def test_a_large_merge_reads_into_numbers_only_the_rows_its_html_report_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_otel_overhead.reports import html
    from pytest_otel_overhead.reports.html_large import LARGE_REPORT, MAX_LARGE_CHARTS, rows_drawn

    suite = _suite()
    results = [
        dataclasses.replace(suite[index % len(suite)], nodeid=f"tests/test_big.py::test_{index}")
        for index in range(LARGE_REPORT + 20)
    ]
    files = [str(_write_run(tmp_path / f"s{k}.json", results[k::2])) for k in range(2)]
    pages: list[RunRecord] = []
    drawing = html.html_report
    monkeypatch.setattr(html, "html_report", lambda run, *a, **k: pages.append(run) or drawing(run, *a, **k))
    assert main(["merge", *files, f"--html={tmp_path / 'report.html'}"]) == 1  # budgets failed, as in _suite
    [merged] = pages
    with_samples = {result.nodeid for result in merged.results if result.samples}
    drawn = rows_drawn(merged.results)
    assert with_samples == drawn and len(drawn) == MAX_LARGE_CHARTS
    originals = {result.nodeid: result.samples for result in results}
    assert all(result.samples == originals[result.nodeid] for result in merged.results if result.nodeid in drawn)
    # The tests that need a look come first: every drawn one did not pass, as many did not.
    assert all(result.outcome != Verdict.PASS.value for result in merged.results if result.nodeid in drawn)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"charts for the first {MAX_LARGE_CHARTS} only" in page
    assert "Charts are drawn for the first" not in page  # said once above the sections, not per test


def test_a_small_run_has_the_rows_of_every_test_drawn() -> None:
    from pytest_otel_overhead.reports.html_large import rows_drawn

    assert rows_drawn(_suite()) == {result.nodeid for result in _suite()}
