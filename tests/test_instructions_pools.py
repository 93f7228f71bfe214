"""Room in the small-object pools before a counted block: a nearly full first pool is moved aside."""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Callable, Sequence

import pytest

from pytest_otel_overhead.instructions.pools import (
    LARGEST,
    POOL_BITS,
    SIZE_STEP,
    SizeClass,
    make_room,
    pymalloc_in_use,
    size_classes,
)

pytestmark = pytest.mark.skipif(
    not pymalloc_in_use() or not hasattr(os, "fork"), reason="needs CPython's small-object allocator and fork"
)


def test_every_small_size_class_is_reached_by_objects_of_exactly_that_size() -> None:
    classes = size_classes()
    assert [size_class.size for size_class in classes] == list(range(16, 513, 16))
    for size_class in classes:
        chunk = size_class.make()
        made = chunk[: size_class.room + 1]
        assert len({id(obj) for obj in made}) == len(made) == size_class.room + 1  # new objects, not cached ones
        assert all(size_class.size - 16 < sys.getsizeof(obj) <= size_class.size for obj in made)
        assert all(type(obj) is bool for obj in chunk[size_class.room + 1 :])  # padding, never made
        if isinstance(chunk, tuple):  # beside the pools: it never takes a block of a class
            assert sys.getsizeof(chunk) > LARGEST
    assert [size_class.room for size_class in classes[:2]] == [64, 64]
    assert classes[-1].room == 15  # half of the 31 blocks of 512 bytes in a pool


def _by_size() -> dict[int, SizeClass]:
    return {size_class.size: size_class for size_class in size_classes()}


def _fill_pools(size_class: SizeClass) -> list[object]:
    """Fill several pools of the class: every pool but the last is full by now."""
    chunks = range(2 * (1 << POOL_BITS) // size_class.size)
    return [obj for _ in chunks for obj in size_class.make() if type(obj) is not bool]  # not the padding


def _first_pool_nearly_full(size_class: SizeClass) -> list[object]:
    """One block freed in a full pool puts it in front, with that one block free."""
    objects = _fill_pools(size_class)
    objects[len(objects) // 2] = None
    return objects


def _first_pool_with_room_exactly(size_class: SizeClass) -> list[object]:
    """``room + 1`` blocks freed in one full pool put it in front with just those free."""
    objects = _fill_pools(size_class)
    pool = id(objects[len(objects) // 2]) >> POOL_BITS
    freed = index = 0
    while freed <= size_class.room:  # a pool holds more than twice the room
        if id(objects[index]) >> POOL_BITS == pool:
            objects[index] = None
            freed += 1
        index += 1
    return objects


def _next_blocks_share_a_pool(size_class: SizeClass, count: int) -> bool:
    chunk = size_class.make()  # freed on return in reverse order, leaving the pools as they were
    return id(chunk[0]) >> POOL_BITS == id(chunk[count - 1]) >> POOL_BITS


def _in_a_fork_alone(
    checked: int, prepare: Callable[[dict[int, SizeClass]], object], spilling: Sequence[int] = ()
) -> tuple[bool, bool, bool]:
    """Whether the next blocks of class ``checked`` shared a pool before and after `make_room`, the
    pools set up by ``prepare``, and whether the first chunk of a class in ``spilling`` spilled over
    two pools (and was kept); run in a fork, as the child is.

    The fork has one thread: other tests' threads (an exporter's worker, a server) would otherwise
    allocate and free blocks between the steps and put other pools in front.
    """
    # Made first and kept, as the child does: freeing them later would change the pools again.
    by_size = _by_size()
    classes = list(by_size.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ on a fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the fork, which leaves by os._exit
        code = 8
        try:
            gc.collect()  # as before each block: a collection in between would free objects anywhere
            gc.disable()
            kept = prepare(by_size)
            before = _next_blocks_share_a_pool(by_size[checked], by_size[checked].room)
            held = make_room(classes)
            after = _next_blocks_share_a_pool(by_size[checked], by_size[checked].room)
            firsts = (row[0] for size, row in zip(by_size, held, strict=True) if size in spilling)
            spilled = any(isinstance(first, (tuple, list)) for first in firsts)
            del held, kept
            code = int(before) | int(after) << 1 | int(spilled) << 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in range(8), f"the fork failed with exit status {code}"
    return bool(code & 1), bool(code & 2), bool(code & 4)


@pytest.mark.parametrize("size", [16, 32, 48, 256, 512])
def test_a_nearly_full_first_pool_is_moved_aside_so_the_next_blocks_share_one_with_room(size: int) -> None:
    before, after, _ = _in_a_fork_alone(size, lambda by_size: _first_pool_nearly_full(by_size[size]))

    assert not before  # the state that costs a loop dearly
    assert after


@pytest.mark.parametrize("checked", [176, 192, 208, 224, 240, 256, 272])
def test_with_every_other_class_spread_over_two_pools_the_room_of_one_is_kept(checked: int) -> None:
    # Unpadded, a chunk's tuple of room + 1 items took this much (its GC header included).
    tuples = {
        size: -(-sys.getsizeof(tuple(range(c.room + 1))) // SIZE_STEP) * SIZE_STEP for size, c in _by_size().items()
    }
    landing = [size for size, taken in tuples.items() if taken == checked and size > checked]
    assert landing  # classes prepared later, whose kept tuples would have taken this class's room

    # The checked class's first pool has just its room; every other class's first chunk spreads over
    # two pools and is kept, and none of what keeps them may take a block of that room. Checked are
    # the classes where the unpadded tuples of the classes from 288 bytes up (16 to 29 items) lay.
    def prepare(by_size: dict[int, SizeClass]) -> object:
        # The landing classes last, so that nothing made after them puts a pool with more room in front.
        others = [_first_pool_nearly_full(c) for size, c in by_size.items() if size != checked and size not in landing]
        room = _first_pool_with_room_exactly(by_size[checked])
        return others, room, [_first_pool_nearly_full(by_size[size]) for size in landing]

    before, after, spilled = _in_a_fork_alone(checked, prepare, landing)

    assert before  # the room is there
    assert spilled  # and a class whose tuples would land here kept a chunk
    assert after
