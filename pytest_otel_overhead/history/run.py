"""One run, live or loaded: the ``RunRecord``, its saved form, and the one-line ``HistoryError``.

A session that ended before running all its tests (interrupted, stopped by ``-x``, an internal
error, an xdist worker lost) makes an incomplete run (:class:`Incomplete`): it is saved, marked,
and neither ``latest`` nor a comparison takes it unless it is named.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_otel_overhead.history.document import SCHEMA, document
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.wire.document import to_document

__all__ = ["SCHEMA", "EndCause", "HistoryError", "Incomplete", "RunRecord", "now_iso", "printable", "valid_name"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class HistoryError(Exception):
    """A run cannot be saved, found or read; the message is one line and names the file."""


def valid_name(name: str) -> bool:
    """Names become part of file names: letters, digits, ``.``, ``_``, ``-``; at most 64 characters.

    The whole name must match: no trailing newline, no control characters, nothing else.
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def printable(text: str) -> str:
    """Text from a file made safe for one line of a terminal: control characters (a newline, an
    escape sequence) and lone surrogates are shown escaped, not obeyed."""
    if text.isprintable():  # nearly always: a merge prints tens of thousands of lines
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class EndCause(enum.Enum):
    """Why a session ended before running all its tests."""

    INTERRUPTED = "interrupted"
    """KeyboardInterrupt (Ctrl-C, SIGINT) or ``pytest.exit()``."""
    STOPPED = "stopped early"
    """``-x`` or ``--maxfail``: pytest stopped after failures, with tests left to run."""
    INTERNAL_ERROR = "internal error"
    """An exception in pytest or a plugin ended the session."""
    WORKER_LOST = "worker lost"
    """An xdist worker died: the tests it was running were not measured."""


@dataclass(frozen=True)
class Incomplete:
    """A run whose session did not finish: neither ``latest`` nor a comparison takes it unless named."""

    cause: EndCause
    detail: str = ""
    """pytest's own words, one line: ``stopping after 1 failures``, ``worker 'gw0' crashed``."""

    def describe(self) -> str:
        return printable(f"{self.cause.value} ({self.detail})" if self.detail else self.cause.value)


@dataclass(frozen=True)
class RunRecord:
    """One run, live or loaded: its measured tests and where and when they were measured."""

    results: tuple[TestResult, ...]
    environment: Mapping[str, Any]
    created: str
    name: str | None = None
    path: Path | None = None
    git: Mapping[str, Any] | None = None
    machine: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    incomplete: Incomplete | None = None
    """Set when the session ended before running all its tests."""

    @property
    def label(self) -> str:
        """How reports name this run: its name, else its file, else when it was made."""
        if self.name:
            return self.name
        if self.path is not None:
            return self.path.stem
        return f"run of {self.created}"

    @property
    def commit(self) -> str | None:
        commit = (self.git or {}).get("commit")
        if not isinstance(commit, str):
            return None
        dirty = (self.git or {}).get("dirty")
        return commit[:10] + (" (uncommitted changes)" if dirty else "")

    def result(self, nodeid: str) -> TestResult | None:
        return next((r for r in self.results if r.nodeid == nodeid), None)

    def to_document(self) -> dict[str, Any]:
        """The saved form: the JSON report of the results plus the ``run`` section."""
        data = document(self.results)
        data["created"] = self.created
        data["environment"] = dict(self.environment)
        data["run"] = {
            "name": self.name,
            "saved": self.created,
            "git": None if self.git is None else dict(self.git),
            "machine": dict(self.machine),
            "settings": dict(self.settings),
            "incomplete": None if self.incomplete is None else to_document(self.incomplete),
        }
        return data
