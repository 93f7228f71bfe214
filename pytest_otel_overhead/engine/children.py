"""Child pytest processes that re-run one test node: their command line, starting and stopping them, their output.

Both measurements in fresh processes use these: time mode over ``processes`` (:mod:`.replicas`)
and instructions mode (its children run under valgrind). A child collects the node as this process
collected it, keeps its files off the user's, runs in a process group of its own (so it can be
stopped with whatever it forked) and writes its output to a log, whose end is shown when it fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "Child",
    "child_environment",
    "node_argument",
    "node_pytest_command",
    "output_tail",
    "passed_on_args",
]

TAIL_LINES = 3
TAIL_CHARS = 400

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
        "-m",
        "pytest",
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


@dataclass(frozen=True)
class Child:
    """A started child process and the log its output goes to."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path) -> Child:
        """Start ``command`` in a process group of its own, stdin closed, stdout and stderr into ``log``."""
        with log.open("wb") as stream:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so it can be stopped with its forks
            )
        return cls(process, log)

    def stop(self) -> None:
        """Kill the child and what it forked, if it still runs, and reap it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it may end in between
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def output(self) -> str:
        """What the child wrote so far, or ``""`` when its log cannot be read."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:  # pragma: no cover - the log is created before the child starts
            return ""


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
