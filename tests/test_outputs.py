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


# --- a file that cannot be written is one line naming it and the first cause ------------------------


def test_a_parent_that_is_a_file_is_named_as_the_cause(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("", encoding="utf-8")
    for target in (blocker / "report.json", blocker / "deeper" / "report.json"):
        with pytest.raises(outputs.OutputError) as caught:
            write_text_file(target, "{}")
        assert str(caught.value) == f"could not write {target}: {blocker} is a file, not a folder"
        with pytest.raises(outputs.OutputError, match="is a file, not a folder"):
            append_text_file(target, "x")
    assert listing(tmp_path) == ["out"]


def test_the_original_error_is_shown_not_the_one_from_removing_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a read-only file system the temporary file is never made, and removing it fails as well."""
    real_unlink = os.unlink

    def read_only(*args: object, **kwargs: object) -> int:
        raise OSError(30, "Read-only file system", str(args[0]))

    def unlink(path: object, *args: object, **kwargs: object) -> None:
        if is_temporary(Path(str(path)).name):
            raise OSError(30, "Read-only file system", str(path))
        real_unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outputs.os, "open", read_only)
    monkeypatch.setattr(outputs.os, "unlink", unlink)
    target = tmp_path / "report.json"
    with pytest.raises(outputs.OutputError) as caught:
        write_text_file(target, "{}")
    monkeypatch.undo()
    assert str(caught.value) == f"could not write {target}: Read-only file system"
    assert caught.value.cause.errno == 30 and ".otel-tmp-" not in str(caught.value)


FULL_DISK = (
    "import resource, signal, sys, pytest\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"  # a write past the limit then fails with EFBIG
    "resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


@pytest.mark.parametrize("fault", ["parent is a file", "full disk"])
def test_outputs_that_cannot_be_written_leave_the_summary_and_the_exit_status_to_the_tests(
    pytester: pytest.Pytester, fault: str
) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_measured=MEASURED)
    folder = "out"
    if fault == "parent is a file":
        (pytester.path / folder).write_text("", encoding="utf-8")
        prefix: tuple[str, ...] = (sys.executable, "-m", "pytest")
    else:
        (pytester.path / folder).mkdir()
        prefix = (sys.executable, "-c", FULL_DISK)
    # Output to pipes: the file-size limit would cut files taking it.
    result = subprocess.run(
        [*prefix, "-p", "no:cacheprovider", "--otel-overhead", f"--otel-overhead-json={folder}/report.json",
         f"--otel-overhead-markdown={folder}/summary.md", f"--otel-overhead-html={folder}/report.html",
         "--otel-overhead-save=main", f"--otel-overhead-storage={folder}/runs"],
        cwd=pytester.path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert re.search(r"^=+ 1 passed", result.stdout, re.MULTILINE), out
    assert re.search(r"test_measured\.py::test_measured\s+PASS", out), out  # the verdict table
    cause = f"{pytester.path / folder} is a file, not a folder" if fault == "parent is a file" else "File too large"
    said = " ".join(out.split())  # the closing lines wrapped to the terminal's width, each path whole
    for name in ("report.json", "summary.md", "report.html"):
        assert said.count(f"could not write {pytester.path / folder / name}: {cause}") == 1, out
    assert re.search(rf"ERROR could not save run 'main': (?:(?!ERROR).)*{re.escape(cause)}", said), out
    if fault == "full disk":
        assert [p for p in (pytester.path / folder).rglob("*") if p.is_file()] == []  # no temporary left


def test_a_sweep_page_that_cannot_be_written_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(INSTANT_ENGINE)
    pytester.makepyfile(test_measured=MEASURED)
    (pytester.path / "out").write_text("", encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--otel-overhead-sweep", "sample_rate=0.5,1", "--otel-overhead-sweep-chart=out/s.html"
    )  # fmt: skip
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    line = f"ERROR could not write {pytester.path / 'out' / 's.html'}: {pytester.path / 'out'} is a file, not a folder"
    assert line in result.stdout.lines, out
