"""Talking to callgrind from Python: client requests, the command line, and the dump files.

Callgrind (not cachegrind) because valgrind 3.19's cachegrind has no client requests: its counts
cover the whole process, start-up and collection included. Callgrind's client requests zero and
dump the counters from inside the program, so each block of workload calls is counted on its own
and both arms can alternate inside one process. Its cache simulation is turned on, over the fixed
caches of :mod:`.cycles`, so each dump also counts first- and last-level misses.

A client request is a fixed sequence of machine instructions that does nothing on a real CPU and
that valgrind recognises when it translates code. Python cannot emit it, so a few bytes of x86-64
code implementing ``valgrind_client_request(default, args)`` are placed in an executable page and
called through ctypes; no compiler and no valgrind headers are needed.

Valgrind, the executable page and the fork of each layout are POSIX-only (x86-64 Linux here), so
this module imports on every OS and checks the platform first: elsewhere instructions mode stops
with one line saying to use time mode.
"""

from __future__ import annotations

import ctypes
import platform
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_otel_overhead.instructions.cycles import Counts, cache_options, counts_from_events
from pytest_otel_overhead.units import SettingsError

__all__ = [
    "INSTALL_HINT",
    "ClientRequests",
    "Dump",
    "ValgrindUnavailable",
    "callgrind_command",
    "check_valgrind",
    "dump_events",
    "read_dumps",
]

INSTALL_HINT = (
    "install it with your package manager, e.g. `apt-get install valgrind` (Debian, Ubuntu), "
    "`dnf install valgrind` (Fedora) or `apk add valgrind` (Alpine)"
)

# rdx = default; rax = &args; the special preamble (rol rdi by 3, 13, 61, 51: a 128-bit no-op);
# xchg rbx, rbx asks valgrind to handle the request; its answer comes back in rdx.
_AMD64_REQUEST = bytes.fromhex(
    "4889fa"  # mov rdx, rdi
    "4889f0"  # mov rax, rsi
    "48c1c703"  # rol rdi, 3
    "48c1c70d"  # rol rdi, 13
    "48c1c73d"  # rol rdi, 61
    "48c1c733"  # rol rdi, 51
    "4887db"  # xchg rbx, rbx
    "4889d0"  # mov rax, rdx
    "c3"  # ret
)

_RUNNING_ON_VALGRIND = 0x1001
_CALLGRIND_BASE = (ord("C") << 24) | (ord("T") << 16)
_DUMP_STATS_AT = _CALLGRIND_BASE + 3
_ZERO_STATS = _CALLGRIND_BASE + 1
_START_INSTRUMENTATION = _CALLGRIND_BASE + 4
_STOP_INSTRUMENTATION = _CALLGRIND_BASE + 5

_Request = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_size_t, ctypes.c_void_p)


class ValgrindUnavailable(SettingsError):
    """Instruction counting cannot run here; the message says why and what to do."""


def supported_machine() -> bool:
    return platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64")


def check_valgrind() -> str:
    """Path of the valgrind executable, or :class:`ValgrindUnavailable` saying how to get it."""
    if not supported_machine():
        raise ValgrindUnavailable(
            f"instructions mode needs valgrind on x86-64 Linux; this is {platform.system() or 'an unknown OS'} "
            f"on {platform.machine() or 'an unknown machine'}: use mode='time' here"
        )
    path = shutil.which("valgrind")
    if path is None:
        raise ValgrindUnavailable(f"instruction counting needs valgrind, which is not on PATH; {INSTALL_HINT}")
    return path


class ClientRequests:
    """Callgrind's client requests, issued from this process (no-ops when not under valgrind)."""

    def __init__(self) -> None:
        if not supported_machine():
            raise ValgrindUnavailable(
                f"valgrind client requests need x86-64 Linux, not {platform.system()} on {platform.machine()}"
            )
        import mmap  # PROT_EXEC exists on POSIX only; checked above

        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(_AMD64_REQUEST)
        self._anchor = ctypes.c_char.from_buffer(self._page)
        self._call = _Request(ctypes.addressof(self._anchor))
        # Built once: nothing is allocated between zeroing and dumping but the label's pointer.
        self._args = (ctypes.c_size_t * 6)()
        self._args_address = ctypes.addressof(self._args)

    def _request(self, code: int, arg: int = 0) -> int:
        args = self._args
        args[0] = code
        args[1] = arg
        return int(self._call(0, self._args_address))

    @property
    def running_on_valgrind(self) -> bool:
        return self._request(_RUNNING_ON_VALGRIND) > 0

    def start_instrumentation(self) -> None:
        self._request(_START_INSTRUMENTATION)

    def stop_instrumentation(self) -> None:
        self._request(_STOP_INSTRUMENTATION)

    def zero(self) -> None:
        self._request(_ZERO_STATS)

    def dump(self, label: ctypes.Array[ctypes.c_char]) -> None:
        """Write the counts since the last zero or dump to a new file, tagged ``label``, and zero them."""
        self._request(_DUMP_STATS_AT, ctypes.addressof(label))


def callgrind_command(valgrind: str, out_dir: Path) -> list[str]:
    """The valgrind prefix for a process whose blocks are counted by client requests.

    Instrumentation starts off, so interpreter start-up, imports, collection and fixtures run at
    the speed of valgrind's bare translation (several times faster than counting) and are never
    counted. ``%p`` gives each forked process dump files of its own. The simulated caches are fixed
    (:func:`.cycles.cache_options`), so counts do not depend on the host's caches.
    """
    return [
        valgrind,
        "--tool=callgrind",
        "--instr-atstart=no",
        *cache_options(),
        "--dump-line=no",
        "--dump-instr=no",
        "--quiet",
        f"--callgrind-out-file={out_dir / 'callgrind.%p.out'}",
    ]


@dataclass(frozen=True)
class Dump:
    """One dump: the label given to the client request and what was counted."""

    label: str
    counts: Counts

    @property
    def instructions(self) -> float:
        return self.counts.instructions


_TRIGGER = re.compile(r"^desc: Trigger: Client Request: (.*)$", re.MULTILINE)
_EVENTS = re.compile(r"^events: (.*)$", re.MULTILINE)
_SUMMARY = re.compile(r"^summary: ([\d ]+)$", re.MULTILINE)
_TOTALS = re.compile(r"^totals: ([\d ]+)$", re.MULTILINE)


def read_dump(path: Path) -> Dump | None:
    """The dump in ``path``, or None for an end-of-program dump.

    ``summary`` is what every thread executed since the counters were zeroed. ``totals``, the sum
    of the file's cost lines, can also hold costs from before the zero: after making and freeing
    20,000 tuples just before zeroing, a block of 0.83 M instructions read 1.51 M there. Both give
    one figure per event, in the order of the ``events`` line (``Ir`` alone without cache simulation).
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    trigger = _TRIGGER.search(text)
    if trigger is None:
        return None
    return Dump(trigger.group(1).strip(), counts_from_events(dump_events(text)))


def dump_events(text: str) -> dict[str, int]:
    """Each event's count in a dump's text, by the names of its ``events`` line; empty when it has none."""
    names = _EVENTS.search(text)
    figures = _SUMMARY.search(text) or _TOTALS.search(text)
    if figures is None:
        return {}
    values = [int(value) for value in figures.group(1).split()]
    # Callgrind leaves trailing zero events out of a cost line.
    return dict(zip(names.group(1).split() if names else ["Ir"], [*values, *[0] * 16], strict=False))


def read_dumps(out_dir: Path) -> Iterator[Dump]:
    """Every client-request dump in ``out_dir``."""
    for path in sorted(out_dir.glob("callgrind.*.out.*")):
        dump = read_dump(path)
        if dump is not None:
            yield dump


def latest_dump(out_dir: Path, pid: int) -> Dump | None:
    """The last dump written by process ``pid``."""
    numbered = [(int(p.suffix[1:]), p) for p in out_dir.glob(f"callgrind.{pid}.out.*") if p.suffix[1:].isdigit()]
    return read_dump(max(numbered)[1]) if numbered else None


def label_buffer(text: str) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(text.encode("ascii"))
