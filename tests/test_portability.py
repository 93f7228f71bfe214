"""The plugin loads on every OS: no POSIX-only module or name is needed to import it or to run
without instructions mode, and the host lock of pytest-xdist works without ``fcntl``.

Windows cannot be run here, so its standard library is imitated: the POSIX-only modules are made
unimportable (``fcntl`` by a module of that name that refuses to load, first on ``PYTHONPATH``, so
that pytest-xdist's workers lose it too) and the POSIX-only names are deleted before any import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pytest_otel_overhead.instructions.valgrind import ValgrindUnavailable, check_valgrind

NO_FCNTL = 'raise ImportError("fcntl is not available on this platform")\n'

# Standard-library modules and names that Windows lacks, gone before the package is imported.
# psutil is imported first: on Linux its backend needs them, on Windows it has another one.
WITHOUT_POSIX = """
import importlib, mmap, os, pkgutil, signal, sys

import psutil

for name in ("fcntl", "resource", "termios", "pwd", "grp"):
    sys.modules[name] = None
for owner, names in (
    (os, ("fork", "killpg", "getpgid", "setsid", "sched_getaffinity", "getloadavg", "getuid")),
    (signal, ("SIGKILL", "SIGALRM")),
    (mmap, ("PROT_EXEC", "PROT_READ", "PROT_WRITE")),
):
    for name in names:
        if hasattr(owner, name):
            delattr(owner, name)

import pytest_otel_overhead

imported = []
for module in pkgutil.walk_packages(pytest_otel_overhead.__path__, "pytest_otel_overhead."):
    if module.name != "pytest_otel_overhead.__main__":
        importlib.import_module(module.name)
        imported.append(module.name)
print(len(imported), "modules")
"""


def test_every_module_imports_without_posix_only_modules_and_names() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_POSIX], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count = int(done.stdout.split()[0])
    assert count >= 40  # the whole package, not an early stop


def test_instructions_mode_says_in_one_line_that_it_needs_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.system", lambda: "Windows")
    monkeypatch.setattr("platform.machine", lambda: "AMD64")
    with pytest.raises(ValgrindUnavailable) as raised:
        check_valgrind()
    assert str(raised.value) == (
        "instructions mode needs valgrind on x86-64 Linux; this is Windows on AMD64: use mode='time' here"
    )


# A time measurement and plain tests that log when they run, to check that none overlap.
TESTS = """
import importlib, json, os, time

import pytest

LOG = os.environ["OVERLAP_LOG"]


def note(kind, start, end):
    with open(LOG, "a") as stream:
        stream.write(json.dumps([kind, os.getpid(), start, end]) + "\\n")


def test_fcntl_is_gone():
    with pytest.raises(ImportError):
        importlib.import_module("fcntl")


@pytest.mark.otel_overhead(budget="1000%", max_time="1.5s", no_telemetry="warn")
def test_measured():
    sum(i * i for i in range(2000))


@pytest.mark.parametrize("n", range(4))
def test_plain(n):
    start = time.time()
    time.sleep(0.1)
    note("plain", start, time.time())
"""

# Logs each hold of the host lock for a time measurement, and which lock class filelock chose.
CONFTEST = """
import json, os, time
from contextlib import contextmanager

import filelock

from pytest_otel_overhead.plugins.xdist import HostLock

_exclusive = HostLock.exclusive


@contextmanager
def logged(self):
    with _exclusive(self):
        start = time.time()
        try:
            yield
        finally:
            with open(os.environ["OVERLAP_LOG"], "a") as stream:
                line = ["measure", os.getpid(), start, time.time(), filelock.FileLock.__name__]
                stream.write(json.dumps(line) + "\\n")


HostLock.exclusive = logged
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytester puts its directory first on PYTHONPATH for the runs it starts, workers included.
    pytester.makepyfile(fcntl=NO_FCNTL, test_work=TESTS)
    pytester.makeconftest(CONFTEST)
    scratch = pytester.path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the run's lock files, which must not outlive it
    monkeypatch.setenv("OVERLAP_LOG", str(pytester.path / "overlap.log"))
    return pytester


def test_without_fcntl_the_plugin_loads_when_not_measuring(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-k", "fcntl or plain")
    result.assert_outcomes(passed=5)


def test_without_fcntl_time_measurements_under_xdist_run_alone(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--otel-overhead", "-n", "2")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*- otel-overhead -*", "test_work.py::test_measured  *"])
    entries = [json.loads(line) for line in (project.path / "overlap.log").read_text().splitlines()]
    measures = [entry for entry in entries if entry[0] == "measure"]
    plain = [entry for entry in entries if entry[0] == "plain"]
    assert len(measures) == 1 and len(plain) == 4
    assert measures[0][4] == "SoftFileLock"  # filelock's lock where fcntl is missing: the lock ran without it
    _, pid, start, end, _ = measures[0]
    assert pid != os.getpid()  # measured on a worker
    for _, _, other_start, other_end in plain:
        assert other_end <= start or other_start >= end, "a test ran during a time measurement"
    assert not list((project.path / "scratch").glob("pytest-otel-overhead-*"))
