"""Child pytest processes that re-run one test node: their command line, starting and stopping them, their output.

Both measurements in fresh processes use these: time mode over ``processes`` (:mod:`.replicas`)
and instructions mode (its children run under valgrind). A child collects the node as this process
collected it, keeps its files off the user's, runs in a process group of its own (so it can be
stopped with whatever it forked) and writes its output to a log, whose end is shown when it fails.

A child ends when its parent ends, however the parent ends. Before pytest starts in it
(``CHILD_START``), a child asks Linux for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), and on
every system a thread of its own watches a pipe from the parent: its end of file means the parent
is gone, and the thread kills the child's process group. The children's files live in a
workspace (:func:`children_workspace`) named after the parent's pid: while children run, SIGTERM
to the parent first kills them and removes the workspace, and a workspace whose parent died all
the same (SIGKILL) is removed by the next one made on the machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from pytest_otel_overhead.outputs import entries_matching, process_is_gone

__all__ = [
    "CHILD_START",
    "PARENT_ENV",
    "WORKSPACE_PREFIX",
    "Child",
    "child_environment",
    "children_workspace",
    "node_argument",
    "node_pytest_command",
    "output_tail",
    "passed_on_args",
    "remove_stale_workspaces",
]

TAIL_LINES = 3
TAIL_CHARS = 400
WORKSPACE_PREFIX = "otel-overhead-processes-"
"""Children's workspaces are ``<temporary folder>/otel-overhead-processes-<parent pid>-<random>``."""
PARENT_ENV = "PYTEST_OTEL_OVERHEAD_PARENT"
"""Set on each child: ``<parent pid>:<file descriptor of the pipe from the parent>``."""
_WORKSPACE = re.compile(re.escape(WORKSPACE_PREFIX) + r"(?P<pid>\d+)-")

CHILD_START = f"""\
import os, signal, sys, threading
parent, _, fd = os.environ.pop({PARENT_ENV!r}, "").partition(":")
if parent:
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent
    if os.getppid() != int(parent):
        os._exit(1)  # the parent died before that
    os.set_inheritable(int(fd), False)

    def watch(fd=int(fd)):
        while os.read(fd, 1):  # end of file: the parent is gone, however it ended
            pass
        os.killpg(0, signal.SIGKILL)  # this process and what it forked

    threading.Thread(target=watch, name="otel-overhead-parent-watch", daemon=True).start()
import runpy
runpy.run_module("pytest", run_name="__main__", alter_sys=True)
"""
"""What a child runs: the parent watched, then pytest as ``python -m pytest`` runs it.

Plain source, not an import of this package: importing the plugin before pytest does would keep
pytest from rewriting its asserts, with a warning."""

_PASSED_ON = {"-p": True, "--import-mode": True, "-o": True, "--override-ini": True, "--confcutdir": True}
_PASSED_ON_FLAGS = ("--noconftest",)


def node_argument(item: pytest.Item, label: str) -> str:
    """The command-line argument that selects the node of ``label`` (a node id, maybe with ``#callN``)."""
    nodeid = re.sub(r"#call\d+$", "", label)
    rest = nodeid.split("::", 1)[1] if "::" in nodeid else ""
    return str(item.path) + ("::" + rest if rest else "")


def passed_on_args(args: Sequence[str]) -> list[str]:
    """The parent's options that change how the node is collected: plugins, import mode, ini overrides."""
    kept: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        name, equals, _ = arg.partition("=")
        if arg in _PASSED_ON_FLAGS or (equals and name in _PASSED_ON and name.startswith("--")):
            kept.append(arg)
        elif arg in _PASSED_ON and index + 1 < len(args):
            kept.extend(args[index : index + 2])
            index += 1
        elif arg[:2] in ("-p", "-o") and len(arg) > 2:
            kept.append(arg)
        index += 1
    return kept


def node_pytest_command(item: pytest.Item, label: str, work_dir: Path) -> list[str]:
    """``python -m pytest`` running only the node of ``label``, collected as this process collects it.

    The child keeps its temporary files, cache and report files in ``work_dir``, off the user's.
    """
    config = item.config
    args = [
        sys.executable,
        "-c",
        CHILD_START,
        node_argument(item, label),
        *passed_on_args(config.invocation_params.args),
        f"--rootdir={config.rootpath}",
        f"--basetemp={work_dir / 'tmp'}",
        f"--otel-overhead-json={work_dir / 'unused.json'}",
        "-q",
        "--no-header",
    ]
    if config.pluginmanager.has_plugin("cacheprovider"):
        args += ["-o", f"cache_dir={work_dir / 'cache'}"]  # with `-p no:cacheprovider` the key is unknown
    if config.inipath is not None:
        args.append(f"--config-file={config.inipath}")
    if config.pluginmanager.has_plugin("xdist"):
        args += ["-n", "0"]  # an `-n` in addopts must not start workers in the child
    if _skip_hypothesis(item):
        # Hypothesis's pytest plugin imports all of Hypothesis: half a second, ten under valgrind.
        args += ["-p", "no:hypothesispytest"]
    if config.pluginmanager.has_plugin("junitxml"):
        args.append(f"--junitxml={work_dir / 'unused.xml'}")  # keep a --junitxml in addopts off the user's file
    return args


def _skip_hypothesis(item: pytest.Item) -> bool:
    config = item.config
    if not config.pluginmanager.has_plugin("hypothesispytest"):
        return False
    if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
        return False
    options = [*config.invocation_params.args, *config.getini("addopts"), os.environ.get("PYTEST_ADDOPTS", "")]
    return not any("hypothesis" in str(option) for option in options)


def child_environment() -> dict[str, str]:
    """This process's environment for a child, less xdist's variables.

    The environment is part of the child's memory layout: xdist's variables change from run to run
    (its run id) and do not concern the child, which is no xdist worker.
    """
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_XDIST_")}


_running: set[int] = set()
"""Process groups of the children started and not yet stopped: SIGTERM kills them."""
_workspaces: list[Path] = []
"""Workspaces in use: SIGTERM removes them."""


@dataclass(frozen=True)
class Child:
    """A started child process, the log its output goes to, and the parent's end of the pipe it watches."""

    process: subprocess.Popen[bytes]
    log: Path
    lifeline: int
    """Held open while the child may run; the child sees its end of file when the parent is gone."""

    @classmethod
    def start(cls, command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> Child:
        """Start ``command`` in a process group of its own, stdin closed, stdout and stderr into ``log``.

        Its environment names this process and the pipe a child started by ``CHILD_START`` watches.
        """
        watched, lifeline = os.pipe()
        try:
            with log.open("wb") as stream:
                process = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env={**env, PARENT_ENV: f"{os.getpid()}:{watched}"},
                    stdin=subprocess.DEVNULL,
                    stdout=stream,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, so it can be stopped with its forks
                    pass_fds=(watched,),
                )
        except BaseException:
            os.close(lifeline)
            raise
        finally:
            os.close(watched)
        _running.add(process.pid)
        return cls(process, log, lifeline)

    def stop(self) -> None:
        """Kill the child and what it forked, if it still runs, and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it may end in between
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        _running.discard(self.process.pid)
        with contextlib.suppress(OSError):  # closed by an earlier stop
            os.close(self.lifeline)

    def output(self) -> str:
        """What the child wrote so far, or ``""`` when its log cannot be read."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:  # pragma: no cover - the log is created before the child starts
            return ""


@contextlib.contextmanager
def children_workspace() -> Iterator[Path]:
    """A temporary folder for children's files, removed after; SIGTERM meanwhile stops them and removes it.

    The handler is this process's only while the workspace is in use; the one before is restored
    after, and is what SIGTERM then does. Workspaces of parents that are gone are removed first.
    """
    remove_stale_workspaces(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-"))
    _workspaces.append(path)
    previous = _install_sigterm_handler()
    try:
        yield path
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        _workspaces.remove(path)
        shutil.rmtree(path, ignore_errors=True)


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers


def _install_sigterm_handler() -> _Handler | None:
    """Install :func:`_on_sigterm`; the handler it replaces, or None when it was left alone."""
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers: the children then die by their own watch
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None or previous == signal.SIG_IGN or previous == _on_sigterm:
        return None  # set outside Python, ignored on purpose, or already ours (an outer workspace)
    _sigterm_before[:] = [previous]
    signal.signal(signal.SIGTERM, _on_sigterm)
    return previous


_sigterm_before: list[_Handler] = []
"""The SIGTERM handler :func:`_on_sigterm` replaced, which it hands the signal on to."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Kill the running children and remove the workspaces, then do what SIGTERM did before."""
    for group in list(_running):
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    for _ in range(20):  # a child killed while writing may finish that write: remove until nothing is left
        for path in _workspaces:
            shutil.rmtree(path, ignore_errors=True)
        if not any(path.exists() for path in _workspaces):
            break
        time.sleep(0.05)
    before = _sigterm_before[0] if _sigterm_before else signal.SIG_DFL
    signal.signal(signal.SIGTERM, before)
    if callable(before):
        before(signum, frame)  # the application's own handler decides what comes next
    else:
        signal.raise_signal(signal.SIGTERM)  # the default: the process ends here, by SIGTERM


def remove_stale_workspaces(folder: Path) -> list[Path]:
    """Remove the children's workspaces in ``folder`` whose parent process is gone; returns those removed."""
    removed: list[Path] = []
    for entry, match in entries_matching(folder, _WORKSPACE):
        if not process_is_gone(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.getuid():
                shutil.rmtree(entry.path)
                removed.append(Path(entry.path))
    return removed


_PYTEST_CLOSING = re.compile(r"=*\s*(\d+ \w+(, )?)+ in [\d.]+s.*")
"""pytest's last line, ``1 failed in 0.52s``: it says less than the lines before it."""
_RULE = re.compile(r"([=_-])\1\1.*")
"""A section rule such as ``=== short test summary info ===``."""


def output_tail(text: str) -> str:
    """The end of a child's output on one line: its last few lines joined by `` | ``, clipped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and _PYTEST_CLOSING.fullmatch(lines[-1]):
        lines.pop()
    lines = [line for line in lines if not _RULE.fullmatch(line)]
    tail = " | ".join(lines[-TAIL_LINES:]) or "(nothing)"
    return tail if len(tail) <= TAIL_CHARS else "…" + tail[-TAIL_CHARS:]
