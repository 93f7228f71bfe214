"""Child processes end with their parent, however it ends, and leave no workspace behind.

End to end: a real ``processes=3`` measurement whose child holds (its body sleeps in the child, so
it is surely running), the parent pytest killed with SIGTERM or SIGKILL, then the children looked
for. The only waits are generous bounds on processes ending.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_otel_overhead.engine.children import WORKSPACE_PREFIX, children_workspace, remove_stale_workspaces

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals of POSIX")

HELD = """
import os, subprocess, sys, time
from pathlib import Path

import pytest


@pytest.mark.otel_overhead(budget="500%", processes=3, max_time=300)
def test_held():
    if os.environ.get("PYTEST_OTEL_OVERHEAD_REPLICA"):  # in the child: hold, with a process of its own
        forked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        Path(os.environ["SEEN"], f"{os.getpid()} {forked.pid}").write_text("")
        time.sleep(600)
"""

WAIT_S = 120.0
"""Generous bound on a child starting, or on killed processes being gone, on a loaded machine."""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int, Path]]:
    """The parent pytest, its held child's pid, that child's own child's pid, and the temporary folder."""
    (tmp_path / "test_held.py").write_text(HELD, encoding="utf-8")
    for folder in ("seen", "tmp"):
        (tmp_path / folder).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env.update({"SEEN": str(tmp_path / "seen"), "TMPDIR": str(tmp_path / "tmp"), "PY_COLORS": "0"})
    parent = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--otel-overhead", "test_held.py"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pids: list[int] = []
    try:
        wait_until(lambda: any((tmp_path / "seen").iterdir()) or parent.poll() is not None, "no child started")
        assert parent.poll() is None, "the parent pytest ended before its child held"
        (seen,) = (tmp_path / "seen").iterdir()
        pids = [int(pid) for pid in seen.name.split()]
        assert all(alive(pid) for pid in pids)
        yield parent, pids[0], pids[1], tmp_path / "tmp"
    finally:
        for pid in [parent.pid, *pids]:  # whatever the test found, nothing it started outlives it
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def workspaces(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(WORKSPACE_PREFIX)]


def test_sigterm_to_the_parent_ends_its_children_and_removes_their_workspace(
    held: tuple[subprocess.Popen[bytes], int, int, Path],
) -> None:
    parent, child, forked, tmp = held
    assert workspaces(tmp) != []
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=WAIT_S) == -signal.SIGTERM  # SIGTERM still ends the parent as it did
    wait_until(lambda: not alive(child) and not alive(forked), "a child outlived its parent")
    assert workspaces(tmp) == []


def test_sigkill_to_the_parent_ends_its_child_and_the_next_workspace_removes_the_old_one(
    held: tuple[subprocess.Popen[bytes], int, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    parent, child, _, tmp = held
    parent.send_signal(signal.SIGKILL)
    assert parent.wait(timeout=WAIT_S) == -signal.SIGKILL
    wait_until(lambda: not alive(child), "the child outlived its parent")
    (left,) = workspaces(tmp)  # a killed process removes nothing
    assert left.startswith(f"{WORKSPACE_PREFIX}{parent.pid}-")
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    with children_workspace() as path:
        assert workspaces(tmp) == [path.name]
        assert path.name.startswith(f"{WORKSPACE_PREFIX}{os.getpid()}-")
    assert workspaces(tmp) == []


def test_a_workspace_of_a_living_process_is_kept(tmp_path: Path) -> None:
    ours = tmp_path / f"{WORKSPACE_PREFIX}{os.getpid()}-abc"
    gone = tmp_path / f"{WORKSPACE_PREFIX}{2**22 + 12345}-abc"  # above Linux's largest pid
    other = tmp_path / "otel-overhead-something-else"
    for folder in (ours, gone, other):
        folder.mkdir()
    assert remove_stale_workspaces(tmp_path) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([ours.name, other.name])


def test_the_sigterm_handler_is_ours_only_while_a_workspace_is_in_use() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with children_workspace():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


HOLD = """
import os, subprocess, sys, time
from pathlib import Path


def test_hold():
    forked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(os.environ["SEEN"], f"{os.getpid()} {forked.pid}").write_text("")
    time.sleep(600)
"""

PARENT = """
import os, sys, time
from pathlib import Path
from pytest_otel_overhead.engine.children import CHILD_START, Child

start = CHILD_START.replace('sys.platform.startswith("linux")', "False")  # the watch alone, as off Linux
assert start != CHILD_START
here = Path.cwd()
Child.start([sys.executable, "-c", start, "-p", "no:cacheprovider", "test_hold.py"], cwd=here, env=dict(os.environ),
            log=here / "child.log")
time.sleep(600)
"""


def test_without_a_parent_death_signal_the_child_watch_ends_the_child_and_what_it_forked(tmp_path: Path) -> None:
    (tmp_path / "test_hold.py").write_text(HOLD, encoding="utf-8")
    (tmp_path / "seen").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env["SEEN"] = str(tmp_path / "seen")
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=tmp_path, env=env)
    pids: list[int] = []
    try:
        wait_until(lambda: any((tmp_path / "seen").iterdir()) or parent.poll() is not None, "no child started")
        assert parent.poll() is None, (tmp_path / "child.log").read_text(encoding="utf-8")
        (seen,) = (tmp_path / "seen").iterdir()
        pids = [int(pid) for pid in seen.name.split()]
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=WAIT_S)
        wait_until(lambda: not any(alive(pid) for pid in pids), "a child outlived its parent")
    finally:
        for pid in [parent.pid, *pids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_sigterm_meanwhile_stops_the_children_then_goes_to_the_handler_before(tmp_path: Path) -> None:
    from pytest_otel_overhead.engine.children import Child

    received: list[int] = []

    def record(signum: int, frame: object) -> None:
        received.append(signum)

    original = signal.signal(signal.SIGTERM, record)
    try:
        with children_workspace() as path:
            child = Child.start(
                [sys.executable, "-c", "import time; time.sleep(600)"], cwd=tmp_path, env=dict(os.environ),
                log=path / "out.log",
            )  # fmt: skip
            os.kill(os.getpid(), signal.SIGTERM)
            wait_until(lambda: received, "the handler before was not called")
            assert not path.exists()
            assert child.process.wait(timeout=WAIT_S) == -signal.SIGKILL
            child.stop()
        assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is record  # handed back, as it was before
    finally:
        signal.signal(signal.SIGTERM, original)
