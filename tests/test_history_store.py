"""The run store: atomic unique saves, lossless reading back, and clear one-line errors for bad files."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.history.document import SCHEMA_VERSION, document, environment
from pytest_otel_overhead.history.store import (
    SCHEMA,
    HistoryError,
    RunRecord,
    Store,
    git_info,
    load_run,
    parse_run,
    result_from_dict,
    valid_name,
)
from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, TestResult
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget


@pytest.fixture
def run_of(make_result: Callable[..., TestResult]) -> Callable[..., RunRecord]:
    def build(*nodeids: str, name: str | None = "base") -> RunRecord:
        results = tuple(
            dataclasses.replace(
                make_result(nodeid),
                samples=tuple((1e-3, 1.05e-3 + i * 1e-7, 2e-3, 2.1e-3) for i in range(30)),
            )
            for nodeid in nodeids or ("tests/test_x.py::test_y",)
        )
        return RunRecord(
            results=results,
            environment=environment(),
            created="2025-01-01T00:00:00+00:00",
            name=name,
            git={"commit": "0123456789abcdef", "branch": "main", "dirty": False},
            machine={"cpu_model": "Test CPU"},
            settings={"metric": "cpu"},
        )

    return build


def test_result_round_trips_through_its_dict(
    make_result: Callable[..., TestResult], make_metric: Callable[..., MetricResult]
) -> None:
    result = dataclasses.replace(
        make_result(
            "tests/test_a.py::test_b[x]",
            metrics=(
                make_metric("cpu", overhead=0.07, budget=Budget("relative", 0.05), verdict=Verdict.FAIL),
                make_metric("wall", overhead=0.0, ci_low=-math.inf, ci_high=math.inf),
                make_metric("heap", budget=Budget("absolute", 2048.0), verdict=Verdict.INCONCLUSIVE, note="n"),
            ),
        ),
        process=ProcessProbe(100, 200, 1, 2, 10.5, math.nan),
        samples=((1e-3, 1.1e-3, 2e-3, 2.2e-3), (1.2e-3, 1.3e-3, 2.1e-3, 2.3e-3)),
    )
    data = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    again = result_from_dict(data)
    assert again.as_dict() == result.as_dict()
    assert again.verdict is Verdict.FAIL
    assert again.metric("wall") is not None and again.metric("wall").ci_high == math.inf  # type: ignore[union-attr]


def test_pipeline_health_round_trips(make_result: Callable[..., TestResult]) -> None:
    wanted = {
        "ended": 20,
        "export_failures": 1,
        "spans_failed": 2,
        "export_latency_p50": 0.001,
        "export_latency_p95": 0.002,
        "export_cpu_s": 0.05,
        "queue_peak": 7,
        "queue_capacity": 2048,
        "bytes_sent": 1000,
        "bytes_uncompressed": 4000,
        "extra_threads": 1,
        "max_dropped": 0,
    }
    present = {f.name for f in dataclasses.fields(PipelineHealth)}
    health = PipelineHealth(
        calls=10,
        started=20,
        sampled=20,
        exported=17,
        export_calls=3,
        by_name=(("a", 12), ("b", 8)),
        **{k: v for k, v in wanted.items() if k in present},  # type: ignore[arg-type]
    )
    result = dataclasses.replace(make_result("t.py::t"), health=health)
    again = result_from_dict(json.loads(json.dumps(result.as_dict())))
    assert again.as_dict()["pipeline"] == result.as_dict()["pipeline"]


def test_saved_run_reads_back_with_samples_and_metadata(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    store = Store(tmp_path / "store")
    run = run_of("a.py::t1", "a.py::t2")
    path = store.save(run, "base")
    assert path.parent == store.root and path.name.endswith(".json") and "_base_" in path.name
    assert [p.name for p in store.root.iterdir()] == [path.name], "no temporary file is left behind"
    loaded = load_run(path)
    assert loaded.name == "base" and loaded.path == path
    assert loaded.git == run.git and loaded.machine == {"cpu_model": "Test CPU"}
    assert [r.nodeid for r in loaded.results] == ["a.py::t1", "a.py::t2"]
    assert loaded.results[0].samples == run.results[0].samples
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA == document([])["schema"]
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["run"]["git"]["commit"] == "0123456789abcdef"


def test_saves_never_share_a_name(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    store = Store(tmp_path)
    paths = {store.save(run_of(), "same") for _ in range(20)}
    assert len(paths) == 20
    assert store.files() == sorted(paths, key=lambda p: p.name)


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    template = tmp_path / "run.json"
    template.write_text(json.dumps(run_of().to_document()))
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from pytest_otel_overhead.history.store import Store, parse_run
        run = parse_run(json.loads(Path({str(template)!r}).read_text()), "template")
        store = Store(Path({str(tmp_path / "store")!r}))
        for _ in range(25):
            store.save(run, sys.argv[1])
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("left", "right")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    store = Store(tmp_path / "store")
    runs, errors = store.load_all()
    assert errors == []
    assert len(runs) == 50
    assert sorted(Store.name_of(p) for p in store.files()) == ["left"] * 25 + ["right"] * 25
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "not a pytest-otel-overhead run"),
        ('{"schema": "pytest-benchmark", "benchmarks": []}', "not a pytest-otel-overhead run"),
        ('{"schema": "pytest-otel-overhead", "schema_version": 999, "tests": []}', "newer than this"),
        ('{"schema": "pytest-otel-overhead", "schema_version": "1", "tests": []}', "not a whole number"),
        ('{"schema": "pytest-otel-overhead", "schema_version": 1, "tests": {}}', '"tests" is not a list'),
        ('{"schema": "pytest-otel-overhead", "schema_version": 1, "tests": [{"nodeid": "a::b"}]}', "test #1 (a::b)"),
        ('{"schema": "pytest-otel-overhead", "schema_version": 1, "tests": [7]}', "test #1 is malformed"),
    ],
)
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(HistoryError) as caught:
        load_run(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message
    assert "\n" not in message


def test_unreadable_bytes_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(HistoryError, match=r"binary\.json: cannot be read"):
        load_run(binary)
    with pytest.raises(HistoryError, match=r"nothing\.json: no such file"):
        load_run(tmp_path / "nothing.json")


def test_load_all_keeps_good_runs_and_names_bad_files(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    store = Store(tmp_path)
    store.save(run_of(), "good")
    (tmp_path / "foreign.json").write_text('{"hello": "world"}')
    (tmp_path / ".hidden.json").write_text("{")
    (tmp_path / "notes.txt").write_text("not a run")
    runs, errors = store.load_all()
    assert [r.name for r in runs] == ["good"]
    assert len(errors) == 1 and "foreign.json" in errors[0]


def test_resolve_names_latest_prefixes_and_paths(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    store = Store(tmp_path / "store")
    first = store.save(run_of(), "main")
    second = store.save(run_of(), "feature")
    third = store.save(run_of(), "main")
    assert store.resolve("latest") == third
    assert store.resolve("latest~1") == second
    assert store.resolve("latest~2") == first
    assert store.resolve("main") == third, "a name means its newest run"
    assert store.resolve(first.stem) == first
    assert store.resolve(str(first)) == first
    assert store.resolve(first.name, base=first.parent) == first
    with pytest.raises(HistoryError, match=r"no run 'latest~3' \(only 3 saved\)"):
        store.resolve("latest~3")
    with pytest.raises(HistoryError, match=r"no saved run named 'nope'.*feature, main"):
        store.resolve("nope")
    with pytest.raises(HistoryError, match="matches 3 saved runs"):
        store.resolve(first.name[:4])
    with pytest.raises(HistoryError, match="no such file"):
        store.resolve("elsewhere/run.json")
    with pytest.raises(HistoryError, match=r"no run 'latest' \(none saved\)"):
        Store(tmp_path / "empty").resolve("latest")


def test_files_named_otherwise_sort_by_modification_time(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    store = Store(tmp_path)
    saved = store.save(run_of(), "x")
    copied = tmp_path / "downloaded.json"
    shutil.copy(saved, copied)
    import os

    os.utime(copied, (0, 0))  # 1970: older than the saved run
    assert store.files() == [copied, saved]


def test_run_names() -> None:
    assert valid_name("main") and valid_name("v1.2_rc-3") and valid_name("a" * 64)
    assert not valid_name("") and not valid_name("a/b") and not valid_name("-x") and not valid_name("a" * 65)
    for broken in ("main\n", "main\r\n", "ma\nin", "a\tb", "a\x00", "\x1b[31mred", "a\u2028b", "caf\u00e9"):
        assert not valid_name(broken), broken
    with pytest.raises(HistoryError, match="cannot name a run"):
        Store(Path("unused")).save(RunRecord((), {}, ""), "bad/name")


def test_unwritable_store_is_an_error_not_a_traceback(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HistoryError, match="cannot create the run store"):
        Store(blocker / "store").save(run_of(), "x")


def test_json_report_documents_read_as_runs(make_result: Callable[..., TestResult]) -> None:
    data = json.loads(json.dumps(document([make_result("a.py::t")])))
    run = parse_run(data, "report.json")
    assert run.name is None and run.label == f"run of {data['created']}"
    assert run.results[0].nodeid == "a.py::t"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_info(tmp_path: Path) -> None:
    assert git_info(tmp_path) is None

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    info = git_info(tmp_path)
    assert info is not None and len(info["commit"]) == 40 and info["dirty"] is False
    (tmp_path / "untracked.txt").write_text("x")
    assert git_info(tmp_path)["dirty"] is False  # type: ignore[index]
    (tmp_path / "f.txt").write_text("2")
    assert git_info(tmp_path)["dirty"] is True  # type: ignore[index]


# -- damaged documents: one line naming the file and the field --------------------------------------


def _document(run_of: Callable[..., RunRecord]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(run_of("a.py::t").to_document(), allow_nan=False))
    return data


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (("tests", 0, "pairs"), "HUGE", "holds a number too long to read (more than 4300 digits)"),
        (("tests", 0, "duration_s"), "9" * 400, "duration_s: a whole number of about 400 digits is too large"),
        (("tests", 0, "duration_s"), "1e999", "duration_s: Infinity is not a finite number"),
        (("tests", 0, "duration_s"), "NaN", "duration_s: NaN is not a finite number"),
        (("tests", 0, "duration_s"), "-Infinity", "duration_s: -Infinity is not a finite number"),
        (("tests", 0, "duration_s"), "-1.5", "duration_s: -1.5 is negative"),
        (("tests", 0, "pairs"), "-3", "pairs: -3 is not a count"),
        (("tests", 0, "pairs"), str(2**64), "pairs: 18446744073709551616 is not a count"),
        (("tests", 0, "pairs"), "2.5", "pairs: 2.5 is not a whole number"),
        (("tests", 0, "pairs"), "true", "pairs: true is not a whole number"),
        (("tests", 0, "metrics", "cpu", "baseline"), '"fast"', "metrics.cpu.baseline: 'fast' is not a number"),
        (("tests", 0, "metrics", "cpu", "confidence"), "1.5", "metrics.cpu.confidence: 1.5 is not a confidence"),
        (("tests", 0, "metrics", "cpu", "verdict"), '"MAYBE"', "metrics.cpu.verdict: 'MAYBE' is not a verdict"),
        (("tests", 0, "metrics", "cpu", "budget"), "[]", "metrics.cpu.budget: a list of 0 is not an object"),
        (("tests", 0, "metrics"), "[1]", "metrics: a list of 1 is not an object"),
        (("tests", 0, "settings", "budgets", "cpu", "value"), "0", "settings.budgets.cpu.value: 0.0 is not a budget"),
        (("tests", 0, "samples", "per_call_seconds", 1), "[1, 2]", "per_call_seconds.#2: a row of 2 values, not 4"),
        (("tests", 0, "samples", "per_call_seconds"), "{}", "samples.per_call_seconds: an object is not a list"),
        (("tests", 0, "pipeline", "spans_started_per_call"), "1e300", "more than any run counts"),
        (("tests", 0, "pipeline", "export_latency_p50_s"), '"1ms"', "export_latency_p50_s: '1ms' is not a number"),
        (("tests", 0, "nodeid"), '"\\ud800"', "nodeid: '\\ud800' holds a lone surrogate, not text"),
        (("environment", "memory_bytes"), "1e30", "environment.memory_bytes: 1e+30 is not a whole number"),
        (("environment", "load_average"), '["high"]', "environment.load_average.#1: 'high' is not a number"),
        (("run", "name"), '"main\\n"', "run.name: 'main\\n' is not a run name"),
        (("run", "git"), '"abc"', "run.git: 'abc' is not an object"),
        (("run", "git", "dirty"), '"yes"', "run.git.dirty: 'yes' is not true or false"),
    ],
)
def test_a_damaged_value_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, run_of: Callable[..., RunRecord], where: tuple[str | int, ...], value: str, expected: str
) -> None:
    data = _document(run_of)
    parent: Any = data
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = "PLACEHOLDER"
    path = tmp_path / "damaged.json"
    # Raw JSON text: Python itself cannot write a number of 5001 digits, NaN or 1e999 as they appear in files.
    raw = "9" * 5001 if value == "HUGE" else value
    path.write_text(json.dumps(data).replace('"PLACEHOLDER"', raw))
    with pytest.raises(HistoryError) as caught:
        load_run(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert "\n" not in message and len(message) < 300


def test_a_truncated_file_is_one_line(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    text = json.dumps(_document(run_of))
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(HistoryError, match=r"cut\.json: not valid JSON \("):
        load_run(path)


def test_a_control_character_in_a_node_id_is_shown_escaped(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    data = _document(run_of)
    data["tests"][0]["nodeid"] = "a.py::t[\x1b[2J\n]"
    data["tests"][0]["pairs"] = "x"
    path = tmp_path / "escape.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HistoryError) as caught:
        load_run(path)
    assert "test #1 (a.py::t[\\x1b[2J\\n]) is malformed: pairs: 'x' is not a whole number" in str(caught.value)
    assert str(caught.value).isprintable()


def test_values_of_the_right_kind_read_back(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    data = _document(run_of)
    test = data["tests"][0]
    test["samples"]["per_call_seconds"][0] = [None, -1.0, 0, 2]  # comparisons say what they cannot use
    test["metrics"]["cpu"]["ci_low"] = None  # an unbounded end
    data["environment"]["future_field"] = {"anything": [1, "x"]}
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(data))
    run = load_run(path)
    first = run.results[0].samples[0]
    assert math.isnan(first[0]) and first[1:] == (-1.0, 0.0, 2.0)
    assert run.results[0].metric("cpu").ci_low == -math.inf  # type: ignore[union-attr]
    assert run.environment["future_field"] == {"anything": [1, "x"]}


def test_a_file_over_the_size_cap_is_refused_in_one_line_before_it_is_read(
    tmp_path: Path, run_of: Callable[..., RunRecord]
) -> None:
    import tracemalloc

    from pytest_otel_overhead.history.reader import MAX_RUN_BYTES

    assert MAX_RUN_BYTES == 20 * 1024 * 1024  # the figure docs/limits.md states
    path = tmp_path / "huge.json"
    with path.open("wb") as stream:
        stream.truncate(100 * 1024 * 1024)  # sparse: 100 MiB that take no room
    tracemalloc.start()
    try:
        with pytest.raises(HistoryError) as caught:
            load_run(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == f"{path}: 100.0 MiB, more than the 20.0 MiB a saved run may hold; not read"
    assert peak < 1024 * 1024  # refused before reading it
    assert Store(tmp_path).load_all() == ([], [str(caught.value)])


def test_a_run_over_the_size_cap_is_not_saved(tmp_path: Path, run_of: Callable[..., RunRecord]) -> None:
    store = Store(tmp_path / "runs")
    with pytest.raises(HistoryError, match=r"run 'big' would take 2\d\.\d MiB, more than the 20\.0 MiB .*; not saved$"):
        store.save(run_of("x" * (21 * 1024 * 1024)), "big")
    assert store.files() == []
