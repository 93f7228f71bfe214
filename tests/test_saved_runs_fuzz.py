"""Saved runs however damaged: loading, listing, comparing and reporting work, or fail with one line.

A valid saved run has one value at a time replaced (at any depth, the whole document included) by
an arbitrary JSON value, or raw JSON text Python would not write itself (a number of 5001 digits,
NaN, 1e999, a lone surrogate), or removed. Whatever the result, reading it either gives a run
that every consumer handles or raises :class:`HistoryError` with one line naming the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import build_result
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead import cli
from pytest_otel_overhead.history.compare import compare_runs, comparison_lines, parse_criteria
from pytest_otel_overhead.history.store import HistoryError, RunRecord, Store, load_run
from pytest_otel_overhead.reports.html import html_report
from pytest_otel_overhead.reports.markdown import markdown_report
from pytest_otel_overhead.reports.terminal import summary_lines
from pytest_otel_overhead.results import PipelineHealth, ProcessProbe

CRITERIA = parse_criteria("cpu:+1pp,wall:+20%,instructions:+1pp", "test")


def _valid_run() -> RunRecord:
    timed = dataclasses.replace(
        build_result("tests/test_a.py::test_timed[x]"),
        samples=tuple((1e-3, 1.05e-3 + k * 1e-7, 2e-3, 2.1e-3) for k in range(45)),
        health=PipelineHealth(
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
            bytes_uncompressed=16000,
            queue_peak=5,
            max_dropped=20,
        ),
        process=ProcessProbe(50_000_000, 52_000_000, 1, 2, 10.0, 30.0),
    )
    counted = dataclasses.replace(
        build_result("tests/test_a.py::test_counted"),
        mode="instructions",
        samples=(),
        instruction_samples=tuple((1e6, 1.02e6 + k) for k in range(8)),
    )
    return RunRecord(
        results=(timed, counted),
        environment={
            "python": "3.11.7",
            "implementation": "CPython",
            "platform": "Linux",
            "machine": "x86_64",
            "cpu_count": 2,
            "memory_bytes": 8 * 2**30,
            "load_average": [0.5, 0.4, 0.3],
            "packages": {"opentelemetry-sdk": "1.45.2", "pytest-otel-overhead": "1.0"},
        },
        created="2025-01-01T00:00:00+00:00",
        name="good",
        git={"commit": "0123456789abcdef", "branch": "main", "dirty": False},
        machine={"cpu_model": "Test CPU"},
        settings={"metric": "cpu"},
    )


VALID = json.loads(json.dumps(_valid_run().to_document(), allow_nan=False))


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in the document, the root included; of long lists only the first items and the last."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        indices = sorted({*range(min(3, len(value))), len(value) - 1}) if value else []
        for index in indices:
            found += _paths(value[index], (*prefix, index))
    return found


PATHS = _paths(VALID)
MARK = "\x00REPLACED\x00"
RAW = [
    "9" * 5001,  # beyond Python's limit on digits in a number
    "9" * 400,  # a whole number too large for a float
    "-" + "9" * 30,
    str(2**64),
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e308",
    "-1e308",
    "5e-324",
    "-1",
    "0",
    "-0.0",
    '"\\ud800"',
    '"a\\nb\\u001b[2J"',
    '"main\\n"',
    "[" * 20 + "1" + "]" * 20,
    "[" * 5000 + "]" * 5000,  # deeper than the decoder's recursion
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)
replacements = st.one_of(st.sampled_from(RAW), json_values.map(json.dumps), st.just(None))  # None: remove it


def _damaged(path: tuple[str | int, ...], raw: str | None) -> str:
    """The valid document as JSON text with the value at ``path`` replaced by ``raw`` (removed for None)."""
    if not path:
        return raw if raw is not None else ""
    data = json.loads(json.dumps(VALID))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if raw is None:
        del parent[path[-1]]
        return json.dumps(data)
    parent[path[-1]] = MARK
    return json.dumps(data).replace(json.dumps(MARK), raw)


def _main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(list(args))
    return status, out.getvalue(), err.getvalue()


def _one_line_about(message: str, path: Path) -> None:
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message and message.isprintable(), repr(message)


def _use(run: RunRecord, good: RunRecord) -> None:
    """Everything that consumes a loaded run, in both directions of a comparison."""
    for before, after in ((good, run), (run, good)):
        comparison = compare_runs(before, after, CRITERIA)
        assert all(isinstance(line, str) for line in comparison_lines(comparison))
        markdown = markdown_report(after, comparison, warnings=comparison.problems)
        html = html_report(after, comparison, [before, after], warnings=comparison.problems, charts=False)
        (markdown + html).encode("utf-8")  # both are written to files
    summary_lines(run.results, verbose=True)


@given(st.sampled_from(PATHS), replacements)
def test_any_damage_loads_lists_compares_and_reports_or_is_one_line(
    path: tuple[str | int, ...], raw: str | None
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        good_path = Store(root).save(_valid_run(), "good")
        bad_path = root / "damaged.json"
        bad_path.write_text(_damaged(path, raw), encoding="utf-8")
        good = load_run(good_path)
        try:
            run = load_run(bad_path)
        except HistoryError as error:
            _one_line_about(str(error), bad_path)
            run = None
        runs, errors = Store(root).load_all()
        assert len(runs) + len(errors) == 2
        status, out, err = _main("--storage", directory, "list")
        assert good_path.name in out
        if run is None:
            assert status == 2 and err.count("\n") == 1
            _one_line_about(err.removeprefix("error: ").rstrip("\n"), bad_path)
            status, _, err = _main("--storage", directory, "compare", "good", str(bad_path), "--fail", "cpu:+1pp")
            assert status == 2 and err.startswith(f"error: {bad_path}: ") and err.count("\n") == 1
        else:
            assert status == 0 and err == ""
            _use(run, good)
            status, out, err = _main("--storage", directory, "compare", "good", str(bad_path), "--fail", "cpu:+1pp")
            assert status in (0, 1) and err == ""
            assert all(line.isprintable() for line in out.splitlines())
            markdown = str(root / "report.md")
            assert _main("--storage", directory, "report", str(bad_path), "--compare", "good")[0] == 0
            assert _main("--storage", directory, "report", str(bad_path), "--markdown", markdown)[0] == 0


def _store_with_one_corrupt_file(root: Path) -> tuple[list[Path], Path]:
    store = Store(root)
    good = [store.save(_valid_run(), "first"), store.save(_valid_run(), "second")]
    corrupt = root / "20250101T000000000000Z_corrupt_00000000.json"
    corrupt.write_text(_damaged(("tests", 0, "pairs"), "9" * 5001), encoding="utf-8")
    return good, corrupt


def test_list_in_a_subprocess_shows_the_good_runs_and_one_line_for_the_corrupt_one(tmp_path: Path) -> None:
    good, corrupt = _store_with_one_corrupt_file(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_otel_overhead", "--storage", str(tmp_path / "store"), "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 2
    rows = done.stdout.splitlines()
    assert len(rows) == 3  # the header and the two good runs
    assert [p.name for p in good] == [row.split()[0] for row in rows[1:]]
    assert done.stderr.splitlines() == [
        f"error: {corrupt}: holds a number too long to read (more than {sys.get_int_max_str_digits()} digits)"
    ]


@pytest.mark.parametrize("command", [["compare", "first", "corrupt"], ["report", "corrupt"]])
def test_compare_and_report_of_a_corrupt_run_are_one_line(tmp_path: Path, command: list[str]) -> None:
    _, corrupt = _store_with_one_corrupt_file(tmp_path / "store")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_otel_overhead", "--storage", str(tmp_path / "store"), *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {corrupt}: holds a number too long to read (more than 4300 digits)"]


def test_comparing_with_a_corrupt_run_stops_pytest_with_one_line(pytester: pytest.Pytester) -> None:
    _, corrupt = _store_with_one_corrupt_file(pytester.path / ".otel-overhead")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead", "--otel-overhead-compare=corrupt"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: otel-overhead: {corrupt}: holds a number too long to read*"])


def test_a_compare_whose_samples_are_unreadable_says_so_and_stays_undecided(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.save(_valid_run(), "before")
    damaged = json.loads(json.dumps(VALID))
    damaged["run"]["name"] = "after"
    damaged["tests"][0]["samples"]["per_call_seconds"] = [[None, -1.0, None, -1.0]] * 45
    after = tmp_path / "after.json"
    after.write_text(json.dumps(damaged), encoding="utf-8")
    status, out, err = _main("--storage", str(tmp_path), "compare", "before", str(after), "--fail", "cpu:+1pp")
    assert (status, err) == (0, "")
    assert "WARNING CPU not compared: 45 of 45 pairs in the later run hold a CPU value that is NaN" in out
    assert out.splitlines()[-1] == "1 compared: 0 regressed, 0 within cpu:+1pp, 1 undecided"


def test_list_shows_control_characters_escaped(tmp_path: Path) -> None:
    saved = Store(tmp_path).save(_valid_run(), "good")
    odd = tmp_path / "copy\x1b[2J\n.json"
    odd.write_bytes(saved.read_bytes())
    status, out, err = _main("--storage", str(tmp_path), "list")
    assert (status, err) == (0, "")
    rows = out.splitlines()
    assert len(rows) == 3 and any(row.startswith("copy\\x1b[2J\\n.json ") for row in rows)
    assert all(row.isprintable() for row in rows)
