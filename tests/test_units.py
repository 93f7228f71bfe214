"""Parsers of the quantities users write (fractions, counts, durations, budgets), and their round trips."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.formatting import format_seconds
from pytest_otel_overhead.units import (
    Budget,
    SettingsError,
    parse_bool,
    parse_budget,
    parse_count,
    parse_duration_ms,
    parse_fraction,
    parse_seconds,
)

SOURCE = "$OTEL_SOURCE_UNDER_TEST"

junk = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.complex_numbers(),
)


def _half_unit_of_last_digit(seconds: float) -> float:
    """Largest rounding error of :func:`format_seconds` at this magnitude."""
    magnitude = abs(seconds)
    if magnitude >= 1:
        return 0.005
    if magnitude >= 1e-3:
        return 0.005e-3
    if magnitude >= 1e-6:
        return 0.05e-6
    return 0.5e-9


# --- fractions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0.1, 0.1), ("0.1", 0.1), ("10%", 0.1), (" 25 % ", 0.25), (0, 0.0), (1, 1.0), ("1", 1.0), ("100%", 1.0)],
)
def test_parse_fraction_accepts_numbers_strings_and_percentages(raw: object, expected: float) -> None:
    assert parse_fraction(raw, SOURCE) == pytest.approx(expected)


@pytest.mark.parametrize("raw", [-1, "-0.1", 1.5, "101%", "abc", "", True, None, math.nan, math.inf, "0.1s"])
def test_parse_fraction_rejects_and_names_the_source(raw: object) -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_SOURCE_UNDER_TEST: .* is not a rate"):
        parse_fraction(raw, SOURCE)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_any_valid_fraction_parses_in_every_spelling(value: float) -> None:
    assert parse_fraction(value, SOURCE) == value
    assert parse_fraction(repr(value), SOURCE) == value
    assert math.isclose(parse_fraction(f"{value * 100!r}%", SOURCE), value, rel_tol=1e-12, abs_tol=1e-300)


@given(st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not 0.0 <= v <= 1.0))
def test_any_number_outside_zero_to_one_is_rejected(value: float) -> None:
    with pytest.raises(SettingsError, match="SOURCE_UNDER_TEST"):
        parse_fraction(value, SOURCE)


# --- counts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(512, 512), ("512", 512), (" 7 ", 7), (1, 1)])
def test_parse_count(raw: object, expected: int) -> None:
    assert parse_count(raw, SOURCE) == expected


@pytest.mark.parametrize("raw", [0, -1, "0", "abc", "5.0", 5.0, True, "", "+5", "1e3", None])
def test_parse_count_rejects_and_names_the_source(raw: object) -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_SOURCE_UNDER_TEST: .* is not a whole number of at least 1$"):
        parse_count(raw, SOURCE)


def test_parse_count_minimum_is_enforced_and_stated() -> None:
    assert parse_count("3", SOURCE, minimum=3) == 3
    with pytest.raises(SettingsError, match="at least 4"):
        parse_count("3", SOURCE, minimum=4)


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5s", 5.0),
        ("500ms", 0.5),
        ("50us", 50e-6),
        ("50µs", 50e-6),
        ("250ns", 250e-9),
        ("2min", 120.0),
        ("2m", 120.0),
        ("1.5 s", 1.5),
        ("5MS", 5e-3),
        (30, 30.0),
        ("30", 30.0),
        (0.25, 0.25),
    ],
)
def test_parse_seconds(raw: object, expected: float) -> None:
    assert parse_seconds(raw, SOURCE) == pytest.approx(expected)


@pytest.mark.parametrize("raw", [0, "0s", -5, "-5s", "5 parsecs", "5%", "", "abc", True, None, math.inf, "inf s"])
def test_parse_seconds_rejects_and_names_the_source(raw: object) -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_SOURCE_UNDER_TEST: .* is not a duration"):
        parse_seconds(raw, SOURCE)


def test_parse_duration_ms_reads_bare_numbers_as_milliseconds_like_otel() -> None:
    assert parse_duration_ms("5000", SOURCE) == pytest.approx(5000.0)
    assert parse_duration_ms(250, SOURCE) == pytest.approx(250.0)
    assert parse_duration_ms("5s", SOURCE) == pytest.approx(5000.0)
    assert parse_duration_ms("30s", SOURCE) == pytest.approx(30000.0)
    with pytest.raises(SettingsError, match="a bare number means milliseconds"):
        parse_duration_ms("soon", SOURCE)


@given(st.floats(min_value=1e-9, max_value=1e5))
def test_formatting_then_parsing_a_duration_round_trips(seconds: float) -> None:
    text = format_seconds(seconds)
    assert abs(parse_seconds(text, SOURCE) - seconds) <= _half_unit_of_last_digit(seconds) * (1 + 1e-9)


# --- booleans ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", True])
def test_parse_bool_true(raw: object) -> None:
    assert parse_bool(raw, SOURCE) is True


@pytest.mark.parametrize("raw", ["0", "false", "no", "off", "", False])
def test_parse_bool_false(raw: object) -> None:
    assert parse_bool(raw, SOURCE) is False


def test_parse_bool_rejects_and_names_the_source() -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_SOURCE_UNDER_TEST: 'maybe' is not true or false$"):
        parse_bool("maybe", SOURCE)


# --- budgets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("5%", "seconds", Budget("relative", 0.05)),
        (0.05, "seconds", Budget("relative", 0.05)),
        ("0.05", "seconds", Budget("relative", 0.05)),
        (1, "seconds", Budget("relative", 1.0)),
        ("150%", "seconds", Budget("relative", 1.5)),
        ("50us", "seconds", Budget("absolute", 50e-6)),
        ("2ms", "seconds", Budget("absolute", 2e-3)),
        ("2MiB", "bytes", Budget("absolute", 2 * 1024**2)),
        ("256KiB", "bytes", Budget("absolute", 256 * 1024)),
        ("1kb", "bytes", Budget("absolute", 1000)),
        ("10%", "bytes", Budget("relative", 0.10)),
    ],
)
def test_parse_budget(raw: object, unit: str, expected: Budget) -> None:
    parsed = parse_budget(raw, SOURCE, unit=unit)  # type: ignore[arg-type]
    assert parsed.kind == expected.kind
    assert parsed.value == pytest.approx(expected.value)


@pytest.mark.parametrize(
    ("raw", "unit"),
    [
        ("five", "seconds"),
        ("0%", "seconds"),
        ("-5%", "seconds"),
        (0, "seconds"),
        (-0.05, "seconds"),
        (True, "seconds"),
        ("2MiB", "seconds"),
        ("50us", "bytes"),
        (math.nan, "seconds"),
        (math.inf, "seconds"),
        (None, "seconds"),
    ],
)
def test_parse_budget_rejects_and_names_the_source(raw: object, unit: str) -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_SOURCE_UNDER_TEST: .* is not a budget; use a percentage"):
        parse_budget(raw, SOURCE, unit=unit)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [5, "5", 1.5, "12.5"])
def test_a_bare_number_above_one_is_ambiguous_and_the_message_offers_both_readings(raw: object) -> None:
    number = float(raw)  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="ambiguous") as info:
        parse_budget(raw, SOURCE)
    message = str(info.value)
    assert message.startswith(SOURCE + ": ")
    assert f"'{number:g}%'" in message
    assert f"{number / 100:g}" in message


@given(st.floats(min_value=0.001, max_value=10.0))
def test_formatting_then_parsing_a_relative_budget_round_trips(value: float) -> None:
    text = Budget("relative", value).describe("cpu")
    parsed = parse_budget(text, SOURCE)
    assert parsed.kind == "relative"
    assert abs(parsed.value - value) <= 0.0005 * (1 + 1e-9)


@given(st.floats(min_value=1e-9, max_value=100.0))
def test_formatting_then_parsing_an_absolute_time_budget_round_trips(value: float) -> None:
    text = Budget("absolute", value).describe("cpu")
    assert text.startswith("+")
    parsed = parse_budget(text, SOURCE)
    assert parsed.kind == "absolute"
    assert abs(parsed.value - value) <= _half_unit_of_last_digit(value) * (1 + 1e-9)


@given(st.integers(min_value=1, max_value=2**40))
def test_formatting_then_parsing_an_absolute_heap_budget_round_trips(size: int) -> None:
    text = Budget("absolute", size).describe("heap")
    parsed = parse_budget(text, SOURCE, unit="bytes")
    assert parsed.kind == "absolute"
    factor = next((f for f in (1024**3, 1024**2, 1024) if size >= f), 1)
    tolerance = 0.05 * factor if factor > 1 else 0.5
    assert abs(parsed.value - size) <= tolerance * (1 + 1e-9)


@given(st.floats(min_value=0.01, max_value=1000.0))
def test_any_percentage_parses_as_a_relative_budget(percent: float) -> None:
    parsed = parse_budget(f"{percent!r}%", SOURCE)
    assert parsed == Budget("relative", percent / 100)


def test_budget_describe() -> None:
    assert Budget("relative", 0.05).describe("cpu") == "5.0%"
    assert Budget("absolute", 50e-6).describe("cpu") == "+50.0 µs"
    assert Budget("absolute", 2 * 1024**2).describe("heap") == "+2.0 MiB"


def test_a_small_relative_budget_is_described_with_its_value() -> None:
    described = Budget("relative", 0.0004).describe("cpu")
    assert described == "0.04%"
    assert parse_budget(described, SOURCE) == Budget("relative", 0.0004)
    assert Budget("relative", 0.025).format(-0.00123, "cpu") == "-0.1%"
    assert Budget("relative", 0.025).format(-0.000123, "cpu") == "-0.012%"
    assert Budget("absolute", 1e-3).format(2.5e-3, "wall") == "2.50 ms"


# --- junk never escapes as anything but SettingsError -----------------------------------------

Parser = Callable[[object, str], object]

PARSERS: list[Parser] = [
    parse_fraction,
    parse_count,
    parse_seconds,
    parse_duration_ms,
    parse_bool,
    parse_budget,
    lambda value, source: parse_budget(value, source, unit="bytes"),
]


@pytest.mark.parametrize("parser", PARSERS)
@given(value=junk)
def test_random_junk_raises_nothing_but_settings_error_naming_the_source(parser: Parser, value: object) -> None:
    try:
        parser(value, SOURCE)
    except SettingsError as error:
        message = str(error)
        assert message.startswith(SOURCE + ": ")
        assert "\n" not in message


@pytest.mark.parametrize("parser", PARSERS)
@given(text=st.text(alphabet="0123456789.+-eE%µsmuinbkKMGiB ", max_size=12))
def test_number_like_junk_raises_nothing_but_settings_error(parser: Parser, text: str) -> None:
    with contextlib.suppress(SettingsError):
        parser(text, SOURCE)


@pytest.mark.parametrize(
    ("parser", "value"),
    [
        (parse_fraction, 10**400),
        (parse_fraction, -(10**400)),
        (parse_seconds, 10**400),
        (parse_duration_ms, 10**400),
        (parse_budget, 10**400),
        (parse_budget, 10**5000),
        (parse_count, "9" * 5000),
        (parse_bool, 10**5000),
        (parse_fraction, "9" * 5000),
        (parse_seconds, "9" * 400 + "s"),
        (PARSERS[-1], "9" * 400 + "GiB"),
    ],
    ids=[
        "fraction",
        "fraction-negative",
        "seconds",
        "duration_ms",
        "budget",
        "budget-5000-digits",
        "count-5000-digits",
        "bool-5000-digits",
        "fraction-text-5000-digits",
        "seconds-text",
        "heap-budget-text",
    ],
)
def test_huge_numbers_are_a_settings_error(parser: Parser, value: object) -> None:
    with pytest.raises(SettingsError) as raised:
        parser(value, SOURCE)
    message = str(raised.value)
    assert message.startswith(SOURCE + ": ")
    assert "\n" not in message
    assert len(message) < 300  # the value is shortened, not pasted in full


def test_a_value_whose_str_fails_is_still_a_settings_error() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    for parser in PARSERS:
        with pytest.raises(SettingsError, match=r"^\$OTEL_SOURCE_UNDER_TEST: "):
            parser(Unprintable(), SOURCE)
