"""Writing output files: whole or not at all, with the mode the umask gives, and no leftovers.

The plugin-level tests run pytest in subprocesses with a stand-in for the engine (results made up
at once), so they check where files go and how they are written, not any measurement.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from instant_engine import INSTANT_ENGINE

from pytest_otel_overhead import outputs
from pytest_otel_overhead.history.document import write_json
from pytest_otel_overhead.history.store import RunRecord, Store
from pytest_otel_overhead.outputs import (
    STALE_AFTER_S,
    append_text_file,
    is_temporary,
    remove_stale_temporaries,
    temporary_name,
    write_text_file,
)
from pytest_otel_overhead.results import TestResult

UMASKS = [pytest.param(0o022, 0o644, id="umask-022"), pytest.param(0o077, 0o600, id="umask-077")]


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; the one before is restored whatever happens."""
    before = os.umask(0o022)
    os.umask(before)
    try:
        yield os.umask
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- the mode follows the umask -------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "expected"), UMASKS)
def test_a_written_file_gets_the_mode_the_umask_gives(
    tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int
) -> None:
    umask(mask)
    fresh = write_text_file(tmp_path / "new" / "deeper" / "report.md", "# report\n")
    assert fresh == tmp_path / "new" / "deeper" / "report.md", "parent folders are created"
    assert fresh.read_text(encoding="utf-8") == "# report\n"
    assert mode(fresh) == expected
    json_report = write_json(tmp_path / "out.json", [])
    assert mode(json_report) == expected


@pytest.mark.parametrize(("mask", "expected"), UMASKS)
def test_a_saved_run_gets_the_mode_the_umask_gives(
    tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int, make_result: Callable[..., TestResult]
) -> None:
    umask(mask)
    saved = Store(tmp_path / "runs").save(RunRecord((make_result(),), {}, "2025-01-01T00:00:00+00:00"), "main")
    assert mode(saved) == expected
    assert listing(saved.parent) == [saved.name]


def test_replacing_a_file_replaces_its_content(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_text_file(target, "first")
    write_text_file(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert listing(tmp_path) == ["report.json"]


def test_without_replace_an_existing_file_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("kept", encoding="utf-8")
    with pytest.raises(FileExistsError):
        write_text_file(target, "new", replace=False)
    assert target.read_text(encoding="utf-8") == "kept"
    assert listing(tmp_path) == ["run.json"]
    assert write_text_file(tmp_path / "other.json", "new", replace=False).read_text(encoding="utf-8") == "new"


def test_appending_creates_then_extends(tmp_path: Path) -> None:
    target = tmp_path / "summary" / "step.md"
    append_text_file(target, "one\n")
    append_text_file(target, "two\n")
    assert target.read_text(encoding="utf-8") == "one\ntwo\n"


# --- a failure leaves the old file and nothing else -----------------------------------------------


def test_a_text_that_cannot_be_encoded_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_text_file(target, "x" * 100_000 + "\ud800")  # the encoder fails inside the write
    assert target.read_text(encoding="utf-8") == "old"
    assert listing(tmp_path) == ["report.md"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failing_system_call_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")

    def failing(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, step, failing)
    with pytest.raises(OSError, match="No space left"):
        write_text_file(target, "new")
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "old"
    assert listing(tmp_path) == ["report.json"]


# --- leftovers of a killed run ---------------------------------------------------------------------


def test_a_killed_writer_leaves_a_temporary_file_the_next_write_removes(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        from pytest_otel_overhead import outputs
        outputs.os.fsync = lambda fd: os._exit(9)  # killed between writing and renaming
        outputs.write_text_file(sys.argv[1], "half")
        """
    )
    killed = subprocess.run([sys.executable, "-c", script, str(tmp_path / "report.json")], timeout=120)
    assert killed.returncode == 9
    (leftover,) = tmp_path.iterdir()
    assert is_temporary(leftover.name) and leftover.name.startswith(".report.json.")

    write_text_file(tmp_path / "other.md", "text")
    assert listing(tmp_path) == ["other.md"], "its process is gone: the leftover is removed"


def renamed(target: str, host: str, pid: int) -> str:
    """A temporary name as another host or process would make it."""
    return re.sub(r"otel-tmp-[0-9a-f]{8}-\d+-", f"otel-tmp-{host}-{pid}-", temporary_name(target))


def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=120)
    dead = finished.pid
    mine = tmp_path / temporary_name("report.json")  # this process's: alive
    match = re.search(r"otel-tmp-([0-9a-f]{8})-", mine.name)
    assert match is not None
    here = match.group(1)
    other_host = "00000000" if here != "00000000" else "11111111"
    dead_here = tmp_path / renamed("a.json", here, dead)
    dead_elsewhere = tmp_path / renamed("b.json", other_host, dead)  # its pid means nothing on this host
    old = tmp_path / temporary_name("old.json")
    unrelated = [tmp_path / ".report.json.abc123.tmp", tmp_path / "notes.otel-tmp"]
    for path in (mine, dead_here, dead_elsewhere, old, *unrelated):
        path.write_text("partial", encoding="utf-8")
    hours_ago = time.time() - 2 * STALE_AFTER_S
    os.utime(old, (hours_ago, hours_ago))

    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([dead_here, old]), "only what is old or a gone process's of this host"
    assert listing(tmp_path) == sorted(p.name for p in (mine, dead_elsewhere, *unrelated))

    os.utime(dead_elsewhere, (hours_ago, hours_ago))
    assert remove_stale_temporaries(tmp_path) == [dead_elsewhere], "another host's leftover goes once it is old"


def test_temporary_names_are_recognised() -> None:
    name = temporary_name("report.json")
    assert name.startswith(".report.json.otel-tmp-") and str(os.getpid()) in name
    assert is_temporary(name)
    assert name != temporary_name("report.json")
    assert not is_temporary("report.json") and not is_temporary(".report.json.tmp")


# --- through the plugin ----------------------------------------------------------------------------

MEASURED = """
import pytest


@pytest.mark.otel_overhead(budget="5%")
def test_measured():
    pass
"""

RUN_UNDER_UMASK = "import os, sys, pytest; os.umask(int(sys.argv[1], 8)); sys.exit(pytest.main(sys.argv[2:]))"


@pytest.mark.parametrize(("mask", "expected"), UMASKS)
def test_every_output_of_a_session_follows_the_umask(pytester: pytest.Pytester, mask: int, expected: int) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_measured=MEASURED)
    result = pytester.run(
        sys.executable, "-c", RUN_UNDER_UMASK, f"{mask:o}", "-p", "no:cacheprovider", "--otel-overhead",
        "--otel-overhead-json=out/report.json", "--otel-overhead-markdown=out/summary.md",
        "--otel-overhead-save=main", "--otel-overhead-storage=runs",
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    (saved,) = (pytester.path / "runs").iterdir()
    written = [pytester.path / "out" / "report.json", pytester.path / "out" / "summary.md", saved]
    assert {path.name: mode(path) for path in written} == {path.name: expected for path in written}
    assert listing(pytester.path / "out") == ["report.json", "summary.md"]
