"""Saved runs: one JSON document per run in a store directory, found by name, time or path.

A saved run is the JSON report (``history.document.document``) plus a ``run`` section: its name, when
it was saved, the git commit, the machine and the session's settings (``history.run.RunRecord``).
Each run goes to a file of its own, named ``<UTC time>_<name>_<random>.json`` and written by
``outputs.write_text_file`` (a temporary file first, then linked into place), so readers never see
half a file and processes saving at once never collide. Reading a file is ``history.reader``'s job.

``latest`` and ``latest~N`` count complete runs only: the run of a session that ended early
(``RunRecord.incomplete``) is found by its name or file, and :meth:`Store.load` says in one line
which incomplete runs ``latest`` passed over.

Anything in the store that cannot be read as a run is reported as one line naming the file
(:class:`HistoryError`), never as a traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from pytest_otel_overhead.formatting import format_bytes
from pytest_otel_overhead.history.document import SCHEMA, compact
from pytest_otel_overhead.history.environment import git_info, machine_info
from pytest_otel_overhead.history.reader import MAX_RUN_BYTES, load_run, parse_run, result_from_dict
from pytest_otel_overhead.history.run import HistoryError, RunRecord, now_iso, printable, valid_name
from pytest_otel_overhead.outputs import cause_of, write_text_file
from pytest_otel_overhead.settings.flags import DEFAULT_STORAGE  # declared with --otel-overhead-storage

__all__ = [
    "DEFAULT_STORAGE",
    "SCHEMA",
    "HistoryError",
    "NoCompleteRun",
    "RunRecord",
    "Store",
    "git_info",
    "load_run",
    "machine_info",
    "now_iso",
    "parse_run",
    "printable",
    "result_from_dict",
    "valid_name",
]

_LATEST = re.compile(r"latest(?:~([0-9]{1,9}))?")
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP_LENGTH = len("20250101T000000000000Z")


class NoCompleteRun(HistoryError):
    """``latest`` named no run: none saved, or every saved run is incomplete."""


class Store:
    """A directory of saved runs; file names sort by the time they were saved."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> list[Path]:
        """Saved runs, oldest first. Hidden files (including unfinished writes) are not runs."""
        if not self.root.is_dir():
            return []
        try:
            found = [
                p for p in self.root.iterdir() if p.suffix == ".json" and not p.name.startswith(".") and p.is_file()
            ]
        except OSError as error:
            raise HistoryError(f"{self.root}: cannot list the run store ({error.strerror or error})") from None
        return sorted(found, key=self._sort_key)

    @staticmethod
    def _sort_key(path: Path) -> tuple[str, str]:
        """Saved runs sort by the time in their name; files named otherwise by when they were modified."""
        stamp = path.name[:_STAMP_LENGTH]
        try:
            dt.datetime.strptime(stamp, _STAMP_FORMAT)
        except ValueError:
            try:
                stamp = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime(_STAMP_FORMAT)
            except (OSError, ValueError, OverflowError):  # gone, or a modification time no calendar holds
                stamp = ""
        return (stamp, path.name)

    def save(self, run: RunRecord, name: str, *, text: str | Iterable[str] | None = None) -> Path:
        """Write ``run`` under a new unique file name; never replaces an existing run.

        ``text`` is the run's document (named ``name``), or its pieces in order, when the caller wrote it
        already (a merge does, in pieces).
        """
        if not valid_name(name):
            raise HistoryError(f"{name!r} cannot name a run: use letters, digits, '.', '_' and '-' (at most 64)")
        if text is None:
            text = compact(dataclasses.replace(run, name=name).to_document())
        pieces = [text] if isinstance(text, str) else list(text)
        size = sum(len(piece) if piece.isascii() else len(piece.encode("utf-8")) for piece in pieces)
        if size + 1 > MAX_RUN_BYTES:  # a run no reader here would read back
            raise HistoryError(
                f"{self.root}: run {name!r} would take {format_bytes(size)}, more than the "
                f"{format_bytes(MAX_RUN_BYTES)} a saved run may hold; not saved"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HistoryError(f"{self.root}: cannot create the run store ({cause_of(self.root, error)})") from None
        stamp = dt.datetime.now(dt.timezone.utc).strftime(_STAMP_FORMAT)
        for _ in range(8):
            target = self.root / f"{stamp}_{name}_{secrets.token_hex(4)}.json"
            try:
                return write_text_file(target, [*pieces, "\n"], replace=False)
            except FileExistsError:
                continue  # another process saved under this very name a moment ago: draw another
            except OSError as error:  # outputs.OutputError: the file and the original cause
                raise HistoryError(str(error)) from None
        raise HistoryError(f"{self.root}: could not find a free file name for run {name!r}")

    @staticmethod
    def name_of(path: Path) -> str:
        """The run name inside a store file name (``<stamp>_<name>_<random>.json``)."""
        stem = path.stem
        if len(stem) > _STAMP_LENGTH + 1 and stem[_STAMP_LENGTH] == "_" and "_" in stem[_STAMP_LENGTH + 1 :]:
            return stem[_STAMP_LENGTH + 1 :].rsplit("_", 1)[0]
        return stem

    def resolve(self, spec: str, *, base: Path | None = None) -> Path:
        """The file meant by ``spec``: ``latest``, ``latest~N``, a run name, a file-name prefix or a path."""
        files = self.files()
        match = re.fullmatch(r"latest(?:~([0-9]{1,9}))?", spec)
        if match:
            back = int(match.group(1) or 0)
            if back >= len(files):
                have = f"only {len(files)} saved" if files else "none saved"
                raise HistoryError(f"{self.root}: no run {spec!r} ({have})")
            return files[-1 - back]
        candidate = Path(spec)
        if not candidate.is_absolute() and base is not None:
            candidate = base / candidate
        if candidate.suffix == ".json" or os.sep in spec or (os.altsep and os.altsep in spec):
            if candidate.is_file():
                return candidate
            raise HistoryError(f"{candidate}: no such file")
        named = [p for p in files if self.name_of(p) == spec]
        if named:
            return named[-1]
        prefixed = [p for p in files if p.stem.startswith(spec)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise HistoryError(f"{self.root}: {spec!r} matches {len(prefixed)} saved runs; give more of the file name")
        names = sorted({self.name_of(p) for p in files})
        known = f"saved names: {', '.join(names[-10:])}" if names else "no runs saved there"
        raise HistoryError(f"{self.root}: no saved run named {spec!r} ({known})")

    def load(self, spec: str, *, base: Path | None = None) -> tuple[RunRecord, str | None]:
        """The run ``spec`` names (as :meth:`resolve` reads it), read; and a one-line note, or None.

        ``latest`` and ``latest~N`` pass over incomplete runs, and the note names those passed over;
        an incomplete run named otherwise is taken, and the note says it is incomplete.
        """
        match = _LATEST.fullmatch(spec)
        if match is None:
            run = load_run(self.resolve(spec, base=base))
            if run.incomplete is None:
                return run, None
            return run, f"run {run.label!r} is incomplete ({run.incomplete.describe()}); used since it was named"
        back, complete = int(match.group(1) or 0), 0
        skipped: list[RunRecord] = []
        for path in reversed(self.files()):
            run = load_run(path)
            if run.incomplete is not None:
                skipped.append(run)
            elif complete == back:
                return run, _skipped_note(spec, run, skipped)
            else:
                complete += 1
        left_out = f"; {len(skipped)} incomplete left out" if skipped else ""
        have = f"only {complete} complete saved" if complete else "no complete run saved"
        raise NoCompleteRun(f"{self.root}: no run {spec!r} ({have}{left_out})")

    def load_all(self) -> tuple[list[RunRecord], list[str]]:
        """Every readable run, oldest first, and one error line for each file that is not one."""
        runs: list[RunRecord] = []
        errors: list[str] = []
        try:
            files = self.files()
        except HistoryError as error:
            return runs, [str(error)]
        for path in files:
            try:
                runs.append(load_run(path))
            except HistoryError as error:
                errors.append(str(error))
        return runs, errors


def _skipped_note(spec: str, run: RunRecord, skipped: list[RunRecord]) -> str | None:
    if not skipped:
        return None
    which = "; ".join(f"{past.label!r}: {past.incomplete.describe()}" for past in skipped if past.incomplete)
    runs = "run" if len(skipped) == 1 else "runs"
    return f"{spec} is run {run.label!r}: {len(skipped)} newer incomplete {runs} left out ({printable(which)})"
