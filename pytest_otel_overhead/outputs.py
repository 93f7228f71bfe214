"""Every file the plugin writes for its user goes through here: JSON, Markdown, HTML, charts, saved runs.

A file is written whole or not at all: the text goes to a temporary file in the target's folder,
is flushed and synced to disk, then renamed onto the target, so a reader (or a run killed half-way)
never sees half a file. The file gets the mode any tool of the user would give a new file: 0666
less the umask. Missing parent folders are created. Temporary files that a killed run left behind
in that folder (recognised by their name: a dead process on this host, or older than an hour) are
removed on the next write there.

A file that cannot be written (a read-only file system, a full disk, a parent that is a file) raises
:class:`OutputError`: an ``OSError`` whose message is one line naming the file and the original
cause, whatever happened while cleaning up after it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "STALE_AFTER_S",
    "OutputError",
    "append_text_file",
    "cause_of",
    "entries_matching",
    "is_temporary",
    "process_is_gone",
    "remove_stale_temporaries",
    "temporary_name",
    "write_text_file",
]

STALE_AFTER_S = 3600.0
"""A temporary file older than this is an earlier run's leftover, whichever host or process made it."""

# ".<target name>.otel-tmp-<host>-<pid>-<random>": hidden, so no store or glob of "*.json" takes it for
# a finished file; the host tag keeps the dead-process test to files of this host on a shared folder.
_TEMPORARY = re.compile(r"^\..+\.otel-tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}$")


class OutputError(OSError):
    """A file could not be written: ``str()`` is one line, ``could not write <file>: <cause>``.

    ``target`` is the file meant, ``cause`` the first ``OSError`` met (not a later one from cleaning up).
    """

    def __init__(self, target: Path, cause: OSError) -> None:
        self.target = target
        self.cause = cause
        self.message = f"could not write {target}: {cause_of(target, cause)}"
        super().__init__(cause.errno, self.message)

    def __str__(self) -> str:
        return self.message


def cause_of(target: Path, cause: OSError) -> str:
    """Why ``target`` could not be written, in words.

    A parent that is a file is named: the system only says "Not a directory" or "File exists".
    """
    for folder in target.parents:
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                return f"{folder} is a file, not a folder"
            break
    return cause.strerror or str(cause) or cause.__class__.__name__


def _host_tag() -> str:
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def temporary_name(target: str) -> str:
    """A fresh name for the temporary file of ``target`` (a file name), in the pattern :func:`is_temporary` knows."""
    return f".{target}.otel-tmp-{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is the name of a temporary file this module makes."""
    return _TEMPORARY.match(name) is not None


def process_is_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this host (one of another user's counts as running)."""
    if pid <= 0:
        return False  # not a pid this module writes: leave the file to the age test
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: alive, another user's
        return False
    return False


def entries_matching(folder: Path, pattern: re.Pattern[str]) -> Iterator[tuple[os.DirEntry[str], re.Match[str]]]:
    """The entries of ``folder`` whose names match ``pattern``, with their match; none when it cannot be read."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None:
            yield entry, match


def remove_stale_temporaries(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the temporary files an earlier, killed run left in ``folder``; returns those removed."""
    now = time.time() if now is None else now
    host = _host_tag()
    removed: list[Path] = []
    for entry, match in entries_matching(folder, _TEMPORARY):
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            if old or (match["host"] == host and process_is_gone(int(match["pid"]))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove: the write goes on regardless
    return removed


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; some systems cannot open a folder, and then it is left to them."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _publish(temporary: Path, target: Path, replace: bool) -> None:
    if replace:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)  # a hard link never replaces a file that exists
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: a rename to a name that is still free
        if target.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.replace(temporary, target)
        return
    temporary.unlink()


def _write_temporary(temporary: Path, text: str | Iterable[str]) -> None:
    # O_EXCL: never write through a file (or link) someone else put there; 0o666 less the umask.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    stream = os.fdopen(descriptor, "w", encoding="utf-8")
    try:
        stream.write(text) if isinstance(text, str) else stream.writelines(text)
        stream.flush()
        os.fsync(stream.fileno())
    except BaseException:
        with contextlib.suppress(OSError):  # closing flushes again and fails again: the first error is the one
            stream.close()
        raise
    stream.close()


def write_text_file(path: str | os.PathLike[str], text: str | Iterable[str], *, replace: bool = True) -> Path:
    """Write ``text`` (UTF-8; or its pieces, one after another) to ``path`` atomically; returns the path written.

    With ``replace=False`` an existing file is left alone and :class:`FileExistsError` raised. Any
    other failure of the system raises :class:`OutputError`; on any failure the previous file, if there
    was one, is intact and no temporary file is left.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(target, error) from error
    remove_stale_temporaries(target.parent)
    temporary = target.parent / temporary_name(target.name)
    try:
        _write_temporary(temporary, text)
        _publish(temporary, target, replace)
    except BaseException as error:
        with contextlib.suppress(OSError):  # a read-only or vanished folder: the write's own error is the news
            temporary.unlink(missing_ok=True)
        if not isinstance(error, OSError) or (isinstance(error, FileExistsError) and not replace):
            raise
        raise OutputError(target, error) from error
    _sync_folder(target.parent)
    return target


def append_text_file(path: str | os.PathLike[str], text: str) -> Path:
    """Append ``text`` (UTF-8) to ``path``, creating it and its folders if needed.

    For files another program owns and reads as a whole afterwards, such as GitHub's job summary
    (``$GITHUB_STEP_SUMMARY``): replacing them would drop what others appended.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as error:
        raise OutputError(target, error) from error
    return target
