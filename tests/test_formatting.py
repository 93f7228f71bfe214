"""Numbers as people read them: each name prints one way, and related names agree where they overlap."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.formatting import (
    NO_FIGURE,
    budget_percent,
    finite_or_none,
    format_bytes,
    format_count,
    format_seconds,
    interval,
    junit_number,
    percent,
    percentage_points,
    signed,
    signed_percent,
    signed_percent_or_dash,
    signed_whole_percent,
    unbounded,
)

INF = math.inf
fractions = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.84e-3, "1.84 ms"), (12.3e-6, "12.3 µs"), (2.1, "2.10 s"), (450e-9, "450 ns"), (-2e-6, "-2.0 µs")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(512, "512 B"), (1536, "1.5 KiB"), (2 * 1024**2, "2.0 MiB"), (3 * 1024**3, "3.0 GiB"), (-1536, "-1.5 KiB")],
)
def test_format_bytes(size: float, text: str) -> None:
    assert format_bytes(size) == text


@pytest.mark.parametrize(
    ("count", "text"), [(1_234_567, "1.23 M"), (45_600, "45.6 k"), (2.5e9, "2.5 G"), (999, "999"), (-1500, "-1.5 k")]
)
def test_format_count(count: float, text: str) -> None:
    assert format_count(count) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(0.05, "5.0%"), (0.0004, "0.04%"), (0.00099, "0.099%"), (0.00123, "0.1%"), (0.0, "0.0%"), (1.5, "150.0%")],
)
def test_budget_percent_keeps_small_fractions_readable(fraction: float, text: str) -> None:
    assert budget_percent(fraction) == text


@pytest.mark.parametrize(
    ("function", "fraction", "text"),
    [
        (percent, 0.073, "7.3%"),
        (percent, -0.073, "-7.3%"),
        (percent, 0.0004, "0.0%"),  # one decimal always, unlike budget_percent
        (percent, INF, "∞"),
        (percent, -INF, "-∞"),
        (signed_percent, 0.073, "+7.3%"),
        (signed_percent, -0.073, "-7.3%"),
        (signed_percent, INF, "∞"),
        (signed_percent, -INF, "-∞"),
        (signed_percent_or_dash, 0.073, "+7.3%"),
        (signed_percent_or_dash, INF, NO_FIGURE),
        (signed_percent_or_dash, math.nan, NO_FIGURE),
        (signed_whole_percent, 0.204, "+20%"),
        (signed_whole_percent, -0.5, "-50%"),
        (signed_whole_percent, INF, "∞"),
        (percentage_points, 0.067, "+6.7pp"),
        (percentage_points, -0.001, "-0.1pp"),
        (percentage_points, -0.0004, "0.0pp"),
        (percentage_points, 0.0, "0.0pp"),
        (percentage_points, INF, "∞"),
        (percentage_points, -INF, "-∞"),
    ],
)
def test_each_percentage_form(function: Callable[[float], str], fraction: float, text: str) -> None:
    assert function(fraction) == text


@given(fractions)
def test_the_signed_forms_agree_with_each_other_on_finite_fractions(fraction: float) -> None:
    signed_text = signed_percent(fraction)
    assert signed_text == signed_percent_or_dash(fraction)
    assert signed_text[0] in "+-" and signed_text[1:] == percent(abs(fraction))
    # A difference that rounds to none has no sign: 0.0pp, never -0.0pp.
    assert percentage_points(fraction) == ("0.0pp" if signed_text[1:] == "0.0%" else signed_text[:-1] + "pp")


@pytest.mark.parametrize(
    ("low", "high", "show", "text"),
    [
        (-0.084, 0.015, signed_percent, "[-8.4%, +1.5%]"),
        (0.061, INF, signed_percent, "[+6.1%, ∞]"),
        (-2e-6, 2e-5, lambda v: signed(v, format_seconds), "[-2.0 µs, +20.0 µs]"),
        (0.06, 0.074, percentage_points, "[+6.0pp, +7.4pp]"),
        (-INF, INF, signed_percent, NO_FIGURE),
        (math.nan, 0.1, signed_percent, NO_FIGURE),
    ],
)
def test_every_interval_reads_low_comma_high_in_brackets(
    low: float, high: float, show: Callable[[float], str], text: str
) -> None:
    assert interval(low, high, show) == text


def test_no_figure_cannot_be_read_as_a_minus_sign() -> None:
    assert NO_FIGURE not in ("-", "") and not NO_FIGURE.isascii()


def test_unbounded_ends_show_their_direction() -> None:
    assert (unbounded(INF), unbounded(-INF)) == ("∞", "-∞")


@given(st.floats(min_value=-10.0, max_value=10.0, allow_nan=False))
def test_signed_puts_the_sign_before_the_magnitude(value: float) -> None:
    text = signed(value, format_seconds)
    assert text[0] == ("+" if value >= 0 else "-")
    assert text[1:] == format_seconds(abs(value))


@given(st.floats(allow_nan=False))
def test_junit_numbers_read_back_as_the_number(value: float) -> None:
    text = junit_number(value)
    if math.isinf(value):
        assert text == ("inf" if value > 0 else "-inf")
    else:
        assert float(text) == pytest.approx(value, rel=1e-5, abs=1e-300)


@pytest.mark.parametrize(("value", "expected"), [(1.5, 1.5), (0.0, 0.0), (INF, None), (-INF, None), (math.nan, None)])
def test_finite_or_none_writes_only_finite_numbers(value: float, expected: float | None) -> None:
    assert finite_or_none(value) == expected
    assert finite_or_none(None) is None
