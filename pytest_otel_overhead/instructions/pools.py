"""Room in CPython's small-object pools before each counted block, so that both arms start alike.

CPython serves requests of up to 512 bytes from pools of 16 KiB, each holding blocks of one size
class (a multiple of 16 bytes). An allocation takes a block from the first pool of its class; a pool
that fills up leaves that list, and the first block freed in a full pool puts it back in front. When
the first pool has only a block or two free, a loop that makes and drops a few objects per pass
fills it, moves on and brings it back on every pass: ``busy(4000)`` (four ints per iteration) then
counted up to 4% more instructions per call than from a pool with room. What the arm switch, the
flush and the collection before a block leave behind decides which state each arm starts in, the
same in every layout, so identical arms read up to 4% apart. :func:`make_room` moves the first pool
of every size class to one with room after all that, so both arms' calls run in the same pool
(where a pool lies in its arena still changes the cost of each free, by 2% here, in both arms).

The objects are made by ``struct`` unpacking and a list comprehension, which make nothing else of
the size being prepared: a passing object freed in a full pool would put that pool back in front.
The tuple that holds them is padded past the pools' largest size, so that it never takes a block of
a class already prepared (nor one CPython keeps on its free list of short tuples).
"""

from __future__ import annotations

import os
import struct
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["POOL_BITS", "SizeClass", "make_room", "pymalloc_in_use", "size_classes"]

POOL_BITS = 14
"""Pools are 16 KiB, aligned to their size, on 64-bit CPython 3.10 and later."""
POOL_HEADER = 48
SIZE_STEP = 16
LARGEST = 512
ROOM = 64
"""Free blocks wanted in the first pool of a class; fewer for large classes (half a pool at most)."""
MAX_CHUNKS = 32
"""Chunks made per size class at most: past that many full pools, leave the class as it is."""
BYTES_HEADER = 33
"""A bytes object of n bytes takes 33 + n (header and trailing NUL)."""
INT_START = 1000
"""First value of the ints made: above the cached small ints, within one 30-bit digit (28 bytes)."""
TUPLE_ITEMS = 62
"""Items of a tuple that takes more than 512 bytes (24 + 8 per item), GC header or not."""


@dataclass(frozen=True)
class SizeClass:
    """One size class and how to make ``room + 1`` new objects of it at once, first in what `make` returns."""

    size: int
    room: int
    make: Callable[[], Sequence[object]]


def pymalloc_in_use() -> bool:
    """Whether small objects come from CPython's pools, without debug hooks that change block sizes."""
    return (
        sys.implementation.name == "cpython"
        and sys.maxsize > 2**32
        and bool(sysconfig.get_config_var("WITH_PYMALLOC"))
        and not sysconfig.get_config_var("Py_GIL_DISABLED")
        and not hasattr(sys, "gettotalrefcount")  # a debug build
        and not sys.flags.dev_mode
        and os.environ.get("PYTHONMALLOC", "pymalloc") in ("", "pymalloc")
    )


def size_classes() -> list[SizeClass]:
    """The classes this interpreter's objects fill exactly, smallest first; none without pymalloc."""
    if not pymalloc_in_use():
        return []
    found = []
    for size in range(SIZE_STEP, LARGEST + 1, SIZE_STEP):
        room = min(ROOM, (2**POOL_BITS - POOL_HEADER) // size // 2)
        make = _maker(size, room + 1)
        # Checked, not assumed: object layouts differ between Python versions.
        if -(-sys.getsizeof(make()[0]) // SIZE_STEP) * SIZE_STEP == size:
            found.append(SizeClass(size, room, make))
    return found


def _maker(size: int, count: int) -> Callable[[], Sequence[object]]:
    if size == SIZE_STEP:
        nones = [None] * count
        # object() takes 16 bytes; the comprehension's own objects (function, iterator) are larger.
        return lambda: [object() for _ in nones]
    # Padded with bools, which are never made: the tuple then comes from the system's allocator.
    padding = "?" * max(0, TUPLE_ITEMS - count)
    if size == 2 * SIZE_STEP:
        ints = struct.Struct(f"{count}q{padding}")
        values = ints.pack(*range(INT_START, INT_START + count), *[False] * len(padding))
        return lambda: ints.unpack(values)
    pieces = struct.Struct(f"{size - BYTES_HEADER}s" * count + padding)
    data = bytes(pieces.size)
    return lambda: pieces.unpack(data)


def make_room(classes: Sequence[SizeClass]) -> list[list[object]]:
    """Leave the first pool of each class with room; returns what must stay alive until the block ends.

    Chunks of ``room + 1`` objects are made until one lies in a single pool: that pool was first all
    along; it keeps the chunk's first object (so it cannot empty) and gets the others back. Chunks
    spread over two pools filled the first one, and stay alive so that it stays full and out of the
    way; their tuples lie outside the pools. The loops count with ints below 257 and iterate nothing:
    an iterator takes 48 bytes.
    """
    held: list[list[object]] = [[None] * MAX_CHUNKS for _ in classes]
    index = 0
    while index < len(classes):
        size_class, row = classes[index], held[index]
        chunk_index = 0
        while chunk_index < MAX_CHUNKS:
            chunk = size_class.make()
            if _in_one_pool(chunk, size_class.room):
                row[chunk_index] = chunk[0]
                del chunk  # the room, given back while this class is the one being prepared
                break
            row[chunk_index] = chunk
            chunk_index += 1
        index += 1
    return held


def _in_one_pool(chunk: Sequence[object], last: int) -> bool:
    # Nothing is freed while a chunk is made, so a pool the chunk left is full and cannot come back.
    return id(chunk[0]) >> POOL_BITS == id(chunk[last]) >> POOL_BITS
