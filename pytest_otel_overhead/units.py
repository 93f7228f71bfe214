"""Parsing of the quantities users write: fractions, durations, sizes, budgets.

Every parser takes the raw value and a ``source`` naming where it came from (``"marker on
tests/test_x.py::test_y"``, ``"--otel-overhead-budget"``, ``"ini otel_overhead_budget"``,
``"$OTEL_BSP_SCHEDULE_DELAY"``) and raises :class:`SettingsError` with a one-line message that
names that source, so a user can find and fix the value without reading a traceback. Showing
numbers to people is :mod:`pytest_otel_overhead.formatting`'s job.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from typing import Literal

from pytest_otel_overhead.formatting import budget_percent, format_bytes, format_seconds

__all__ = [
    "Budget",
    "BudgetKind",
    "SettingsError",
    "parse_bool",
    "parse_budget",
    "parse_count",
    "parse_duration_ms",
    "parse_fraction",
    "parse_seconds",
]


class SettingsError(ValueError):
    """A setting has a value the plugin cannot use; the message names where it came from."""


_NUMBER = r"[+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
# Compiled on first use (re caches it), not on import: pytest imports this module in every run.
_QUANTITY = rf"^\s*({_NUMBER})\s*([a-zA-Zµ%]*)\s*$"


def _split(value: str) -> tuple[float, str] | None:
    match = re.match(_QUANTITY, value)
    if not match:
        return None
    return float(match.group(1)), match.group(2)


_DESCRIBE_LIMIT = 60


def _describe(value: object) -> str:
    """The value for a one-line message: quoted if text, shortened if long, never raising."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except Exception:  # e.g. an int too long for str(), or an object whose __str__ fails
        text = f"<{type(value).__name__}>"
    text = " ".join(text.splitlines())
    return text if len(text) <= _DESCRIBE_LIMIT else text[: _DESCRIBE_LIMIT - 3] + "..."


def _as_float(value: int | float) -> float:
    """A real number as a float; an int too large for one becomes infinity, which callers reject."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_fraction(value: object, source: str, *, what: str = "a rate") -> float:
    """A probability in [0, 1]: ``0.1``, ``"0.1"`` or ``"10%"``."""
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, (int, float)):
        number = _as_float(value)
    elif isinstance(value, str):
        parts = _split(value)
        if parts is not None and parts[1] in ("", "%"):
            number = parts[0] / 100 if parts[1] == "%" else parts[0]
    if number is None or not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise SettingsError(
            f"{source}: {_describe(value)} is not {what}; use a number from 0 to 1 such as 0.1, or '10%'"
        )
    return number


def parse_count(value: object, source: str, *, minimum: int = 1) -> int:
    """A whole number of at least ``minimum``: ``512`` or ``"512"``."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value):
        # Beyond Python's limit on digits in int() (4300 by default) it is junk, not a count.
        with contextlib.suppress(ValueError):
            number = int(value)
    if number is None or number < minimum:
        raise SettingsError(f"{source}: {_describe(value)} is not a whole number of at least {minimum}")
    return number


def parse_seconds(value: object, source: str, *, bare_unit: float = 1.0) -> float:
    """A positive duration in seconds: ``"50ms"``, ``"5s"``, ``"2min"``, or a bare number in ``bare_unit``."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = _as_float(value) * bare_unit
    elif isinstance(value, str):
        parts = _split(value)
        if parts is not None:
            number, unit = parts
            if unit == "":
                seconds = number * bare_unit
            elif unit.lower() in _DURATION_UNITS or unit in _DURATION_UNITS:
                seconds = number * _DURATION_UNITS.get(unit, _DURATION_UNITS.get(unit.lower(), 0.0))
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        unit_word = "seconds" if bare_unit == 1.0 else "milliseconds"
        raise SettingsError(
            f"{source}: {_describe(value)} is not a duration; use e.g. '500ms' or '5s' "
            f"(a bare number means {unit_word})"
        )
    return seconds


def parse_duration_ms(value: object, source: str) -> float:
    """A positive duration in milliseconds; bare numbers are milliseconds, as in OTel's variables."""
    return parse_seconds(value, source, bare_unit=1e-3) * 1e3


def parse_bool(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    # str() of any value may fail (an int past the digit limit); _describe() never does.
    text = (value if isinstance(value, str) else _describe(value)).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{source}: {_describe(value)} is not true or false")


def _parse_size(number: float, unit: str) -> float | None:
    factor = _SIZE_UNITS.get(unit.lower())
    return None if factor is None else number * factor


BudgetKind = Literal["relative", "absolute"]


@dataclass(frozen=True)
class Budget:
    """How much a metric may grow: ``relative`` (0.05 = 5% over baseline) or ``absolute`` (seconds or bytes)."""

    kind: BudgetKind
    value: float

    def describe(self, metric: str) -> str:
        """The budget as users wrote it: ``5.0%``, ``+50.0 µs``, ``+2.0 MiB``."""
        if self.kind == "relative":
            return budget_percent(self.value)
        return "+" + self.format(self.value, metric)

    def format(self, amount: float, metric: str) -> str:
        """An overhead, or a bound on one, in this budget's units (a percentage, a duration, a size)."""
        if self.kind == "relative":
            return budget_percent(amount)
        return format_bytes(amount) if metric == "heap" else format_seconds(amount)


def parse_budget(value: object, source: str, *, unit: Literal["seconds", "bytes"] = "seconds") -> Budget:
    """A budget: ``"5%"``, ``0.05``, or an absolute increase (``"50ms"`` for times, ``"2MiB"`` for heap)."""
    example_abs = "'2MiB'" if unit == "bytes" else "'50us'"
    hint = f"use a percentage such as '5%', a fraction such as 0.05, or an absolute increase such as {example_abs}"
    if isinstance(value, bool):
        raise SettingsError(f"{source}: {value} is not a budget; {hint}")
    if isinstance(value, (int, float)):
        number = _as_float(value)
        if not math.isfinite(number) or number <= 0:
            raise SettingsError(f"{source}: {_describe(value)} is not a budget; {hint}")
        if number > 1:
            raise SettingsError(
                f"{source}: {_describe(value)} is ambiguous as a budget; write '{number:g}%' for a "
                f"percentage or {number / 100:g} for a fraction"
            )
        return Budget("relative", number)
    if isinstance(value, str):
        parts = _split(value)
        if parts is not None:
            number, suffix = parts
            amount: float | None = None
            kind: BudgetKind = "absolute"
            if suffix == "%":
                amount, kind = number / 100, "relative"
            elif suffix == "":
                if 0 < number <= 1:
                    amount, kind = number, "relative"
                elif number > 1:
                    raise SettingsError(
                        f"{source}: {_describe(value)} is ambiguous as a budget; write '{number:g}%' for a "
                        f"percentage or {number / 100:g} for a fraction"
                    )
            elif unit == "bytes":
                amount = _parse_size(number, suffix)
            elif suffix in _DURATION_UNITS or suffix.lower() in _DURATION_UNITS:
                amount = number * _DURATION_UNITS.get(suffix, _DURATION_UNITS.get(suffix.lower(), 0.0))
            if amount is not None and math.isfinite(amount) and amount > 0:
                return Budget(kind, amount)
    raise SettingsError(f"{source}: {_describe(value)} is not a budget; {hint}")
