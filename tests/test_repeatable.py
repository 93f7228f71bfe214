"""A measured callable runs thousands of times: arguments that one call uses up, and repetitions that fail."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator

import pytest

from pytest_otel_overhead.engine.repeatable import RepetitionFailed, single_use_argument


async def main(order: int) -> int:
    return order


def numbers() -> Iterator[int]:
    yield 1


def ids() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


async def ticks() -> AsyncIterator[int]:
    yield 1


def exhausted(generator: Iterator[int]) -> Iterator[int]:
    """As the first, ordinary call leaves a generator it consumed."""
    list(generator)
    return generator


def test_a_coroutine_argument_is_found_and_the_message_shows_how_to_pass_async_code() -> None:
    coroutine = main(7)
    try:
        message = single_use_argument(functools.partial(asyncio.run, coroutine), "otel_overhead")
    finally:
        coroutine.close()
    assert message == (
        "otel_overhead(asyncio.run, ...) was given the coroutine object main(...), which the first call uses up, "
        "while a measurement calls the function thousands of times; pass a callable that makes a new one on each "
        "call, e.g. otel_overhead(lambda: asyncio.run(main(...)))"
    )


def test_exhausted_generators_are_found_among_keyword_arguments_too() -> None:
    message = single_use_argument(functools.partial(sorted, key=len, iterable=exhausted(numbers())), "benchmark")
    assert message is not None
    assert message.startswith("benchmark(sorted, ...) was given the generator object numbers(...)")
    assert message.endswith("e.g. benchmark(lambda: sorted(numbers(...)))")


def test_an_exhausted_async_generator_is_found() -> None:
    agen = ticks()

    async def drain() -> None:
        async for _ in agen:
            pass

    asyncio.run(drain())
    assert "async generator object ticks(...)" in (single_use_argument(functools.partial(list, agen), "x") or "")


def test_a_generator_that_can_go_on_is_left_alone() -> None:
    endless = ids()
    next(endless)  # suspended after the first call: each call can take the next id
    assert single_use_argument(functools.partial(next, endless), "otel_overhead") is None
    assert single_use_argument(functools.partial(list, numbers()), "otel_overhead") is None  # not started


def test_a_fixture_value_of_a_measured_body_is_named_as_a_fixture() -> None:
    def test_body(stock: Iterator[int]) -> None:
        pass

    message = single_use_argument(functools.partial(test_body, stock=exhausted(numbers())), "benchmark", test_body)
    assert message is not None
    assert message.startswith("the fixture 'stock' gives the measured test a generator object")
    assert "make the fixture return something reusable" in message


@pytest.mark.parametrize(
    "workload",
    [
        functools.partial(sum, [1, 2]),
        functools.partial(sorted, (3, 1), key=abs),
        lambda: None,
        functools.partial(print),
    ],
)
def test_repeatable_workloads_are_left_alone(workload: object) -> None:
    assert single_use_argument(workload, "otel_overhead") is None  # type: ignore[arg-type]


def test_a_failed_repetition_names_phase_arm_block_and_call() -> None:
    error = RepetitionFailed("timed pairs", True, 12, 3, 40)
    assert str(error).startswith("a measured body must be repeatable, each call starting from the same state")
    assert str(error).endswith(
        "(it passed its first call but raised on a measured repetition: timed pairs, instrumented arm, block 12, "
        "call 3 of 40)"
    )
    assert (error.phase, error.instrumented, error.block, error.call) == ("timed pairs", True, 12, 3)
    assert "baseline arm" in str(RepetitionFailed("warm-up", False, 1, 1, 1))


def _raises_on_a_repetition() -> None:
    raise ValueError("out of stock")


def test_a_failed_repetition_reports_the_fix_first_then_the_code_own_frames() -> None:
    try:
        try:
            _raises_on_a_repetition()
        except ValueError as own:
            raise RepetitionFailed("warm-up", True, 1, 1, 1) from own
    except RepetitionFailed as failed:
        report = failed.report()
    lines = report.splitlines()
    assert lines[0] == str(RepetitionFailed("warm-up", True, 1, 1, 1))
    assert "in _raises_on_a_repetition" in report and "test_repeatable.py" in report
    assert lines[-1] == "ValueError: out of stock"
    assert "repeatable.py" not in report.replace("test_repeatable.py", "")  # no frame of the plugin's own
    assert RepetitionFailed("warm-up", True, 1, 1, 1).report() == str(RepetitionFailed("warm-up", True, 1, 1, 1))
