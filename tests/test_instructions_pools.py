"""Room in the small-object pools before a counted block: a nearly full first pool is moved aside."""

from __future__ import annotations

import gc
import sys

import pytest

from pytest_otel_overhead.instructions.pools import POOL_BITS, SizeClass, make_room, pymalloc_in_use, size_classes

pytestmark = pytest.mark.skipif(not pymalloc_in_use(), reason="needs CPython's small-object allocator")


def test_every_small_size_class_is_reached_by_objects_of_exactly_that_size() -> None:
    classes = size_classes()
    assert [size_class.size for size_class in classes] == list(range(16, 513, 16))
    for size_class in classes:
        chunk = size_class.make()
        assert len(chunk) == size_class.room + 1
        assert len({id(obj) for obj in chunk}) == len(chunk)  # new objects, not cached ones
        assert size_class.size - 16 < sys.getsizeof(chunk[0]) <= size_class.size
    assert [size_class.room for size_class in classes[:2]] == [64, 64]
    assert classes[-1].room == 15  # half of the 31 blocks of 512 bytes in a pool


def _first_pool_nearly_full(size_class: SizeClass) -> list[object]:
    """Fill several pools, then free one block in a full one: that pool comes first, with one block free."""
    objects = [obj for _ in range(2 * (1 << POOL_BITS) // size_class.size) for obj in size_class.make()]
    # Every pool but the last is full by now; one block freed in the middle puts its pool in front.
    objects[len(objects) // 2] = None
    return objects


def _next_blocks_share_a_pool(size_class: SizeClass, count: int) -> bool:
    chunk = size_class.make()  # freed on return in reverse order, leaving the pools as they were
    return id(chunk[0]) >> POOL_BITS == id(chunk[count - 1]) >> POOL_BITS


@pytest.mark.parametrize("size", [16, 32, 48, 256, 512])
def test_a_nearly_full_first_pool_is_moved_aside_so_the_next_blocks_share_one_with_room(size: int) -> None:
    # Made first and kept, as the child does: freeing them later would change the pools again.
    classes = size_classes()
    (size_class,) = (size_class for size_class in classes if size_class.size == size)
    gc.collect()  # as before each block: a collection in between would free objects anywhere
    kept = _first_pool_nearly_full(size_class)
    assert not _next_blocks_share_a_pool(size_class, size_class.room)  # the state that costs a loop dearly

    held = make_room(classes)

    assert _next_blocks_share_a_pool(size_class, size_class.room)
    del held, kept
