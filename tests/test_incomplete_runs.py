"""A session that did not finish saves its run marked incomplete, and ``latest`` passes over it.

End to end, in real pytest processes with a stand-in for the engine (results made up at once, far
from any budget): the interrupt is a real SIGINT the session sends itself part-way, ``-x`` a real
failure, the internal error a real exception in a hook, the lost worker a real xdist worker that dies.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from instant_engine import INSTANT_ENGINE

from pytest_otel_overhead.history.run import EndCause, Incomplete, RunRecord
from pytest_otel_overhead.history.store import HistoryError, NoCompleteRun, Store, load_run

FOUR_TESTS = """
import os
import signal

import pytest


@pytest.mark.otel_overhead(budget="50%")
def test_1():
    pass


@pytest.mark.otel_overhead(budget="50%")
def test_2():
    if os.environ.get("END_AT_2") == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
    if os.environ.get("END_AT_2") == "fail":
        raise AssertionError("failed on purpose")
    if os.environ.get("END_AT_2") == "die":
        os._exit(1)


@pytest.mark.otel_overhead(budget="50%")
def test_3():
    pass


@pytest.mark.otel_overhead(budget="50%")
def test_4():
    if os.environ.get("END_AT_4") == "fail":
        raise AssertionError("failed on purpose")
"""

INTERNAL_ERROR = """
def pytest_runtest_logfinish(nodeid):
    import os
    if os.environ.get("END_AT_2") == "internal" and nodeid.endswith("test_2"):
        raise RuntimeError("a plugin broke")
"""


def run(pytester: pytest.Pytester, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """pytest in a process of its own, saving to and comparing with the store ``runs``."""
    return _run(pytester, "pytest", "-p", "no:cacheprovider", "--otel-overhead-storage=runs", *args, env=env)


def cli(pytester: pytest.Pytester, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(pytester, "pytest_otel_overhead", "--storage=runs", *args)


def _run(
    pytester: pytest.Pytester, module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    environ.update({"PY_COLORS": "0", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=pytester.path, env=environ, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(INSTANT_ENGINE + INTERNAL_ERROR)
    pytester.makepyfile(test_four=FOUR_TESTS)
    done = run(pytester, "--otel-overhead", "--otel-overhead-save=good")
    assert done.returncode == 0, done.stdout + done.stderr
    return pytester


def saved(project: pytest.Pytester, name: str) -> dict[str, Any]:
    (path,) = [p for p in (project.path / "runs").iterdir() if Store.name_of(p) == name]
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_an_interrupted_session_is_saved_incomplete_and_latest_passes_over_it(project: pytest.Pytester) -> None:
    done = run(project, "--otel-overhead", "--otel-overhead-save=int1", env={"END_AT_2": "sigint"})
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.INTERRUPTED, out
    assert re.search(
        r"\bsaved run 'int1' to \S+ as INCOMPLETE \(interrupted \(KeyboardInterrupt\), 1 measured\): 'latest' and "
        r"comparisons leave it out unless it is named ",
        " ".join(out.split()) + " ",  # the line wrapped to the terminal's width, its path whole
    ), out
    data = saved(project, "int1")
    assert data["run"]["incomplete"] == {"cause": "interrupted", "detail": "KeyboardInterrupt"}
    assert [t["nodeid"] for t in data["tests"]] == ["test_four.py::test_1"]
    assert saved(project, "good")["run"]["incomplete"] is None

    gated = run(project, "--otel-overhead", "--otel-overhead-compare-fail=cpu:+1pp")
    out = gated.stdout + gated.stderr
    assert gated.returncode == 0, out
    line = "latest is run 'good': 1 newer incomplete run left out ('int1': interrupted (KeyboardInterrupt))"
    assert sum(line == row for row in out.splitlines()) == 1, out
    assert "not measured in the compared run" not in out  # every test has its counterpart in 'good'

    compared = cli(project, "compare", "latest", "int1")
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert compared.stderr.splitlines() == [
        "note: latest is run 'good': 1 newer incomplete run left out ('int1': interrupted (KeyboardInterrupt))",
        "note: run 'int1' is incomplete (interrupted (KeyboardInterrupt)); used since it was named",
    ]


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        ({"END_AT_2": "fail"}, ["-x"], {"cause": "stopped early", "detail": "stopping after 1 failures"}),
        ({"END_AT_2": "fail"}, ["--maxfail=1"], {"cause": "stopped early", "detail": "stopping after 1 failures"}),
        ({"END_AT_4": "fail"}, ["-x"], None),  # the failure was the last test: everything ran
        ({"END_AT_2": "fail"}, [], None),
        ({"END_AT_2": "internal"}, [], {"cause": "internal error", "detail": "RuntimeError: a plugin broke"}),
    ],
    ids=["-x", "maxfail", "-x on the last test", "a failure", "internal error"],
)
def test_a_session_stopped_early_is_incomplete(
    project: pytest.Pytester, env: dict[str, str], args: list[str], expected: dict[str, str] | None
) -> None:
    done = run(project, "--otel-overhead", "--otel-overhead-save=this", *args, env=env)
    assert done.returncode != 0
    assert saved(project, "this")["run"]["incomplete"] == expected, done.stdout + done.stderr


def test_a_lost_xdist_worker_makes_the_run_incomplete(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    done = run(project, "--otel-overhead", "--otel-overhead-save=lost", "-n", "2", env={"END_AT_2": "die"})
    out = done.stdout + done.stderr
    incomplete = saved(project, "lost")["run"]["incomplete"]
    assert incomplete["cause"] == "worker lost", out
    assert re.fullmatch(r"worker gw\d: .+", incomplete["detail"]), incomplete


def test_latest_counts_complete_runs_only(tmp_path: Path, make_result: Any) -> None:
    store = Store(tmp_path)

    def save(name: str, incomplete: Incomplete | None) -> None:
        store.save(RunRecord((make_result(f"t::{name}"),), {}, "2025-01-01", incomplete=incomplete), name)

    with pytest.raises(NoCompleteRun):
        store.load("latest")
    save("old", None)
    save("new", None)
    save("cut", Incomplete(EndCause.STOPPED, "stopping after 1 failures"))
    run, note = store.load("latest")
    assert run.name == "new"
    assert (
        note
        == "latest is run 'new': 1 newer incomplete run left out ('cut': stopped early (stopping after 1 failures))"
    )
    run, note = store.load("latest~1")
    assert run.name == "old" and note is not None
    with pytest.raises(HistoryError, match=r"no run 'latest~2' \(only 2 complete saved; 1 incomplete left out\)"):
        store.load("latest~2")
    run, note = store.load("cut")
    assert run.incomplete == Incomplete(EndCause.STOPPED, "stopping after 1 failures")
    assert note == "run 'cut' is incomplete (stopped early (stopping after 1 failures)); used since it was named"
    assert load_run(store.resolve("new")).incomplete is None


def test_an_interrupted_xdist_session_is_incomplete(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    done = run(project, "--otel-overhead", "--otel-overhead-save=int2", "-n", "2", env={"END_AT_2": "sigint"})
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.INTERRUPTED, out
    assert saved(project, "int2")["run"]["incomplete"]["cause"] == "interrupted", out
    assert re.search(r"\bsaved run 'int2' to \S+ as INCOMPLETE \(interrupted ", " ".join(out.split())), out
