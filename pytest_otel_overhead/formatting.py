"""Numbers as people read them: durations, sizes, counts, percentages and percentage points.

Each name prints one way wherever it is used, so the terminal, Markdown, HTML and comparison
texts agree. Where two texts really differ (one decimal or two significant digits), they use two
names. Every interval reads ``[low, high]`` (``interval``), and a figure that does not exist (no
budget, no interval, nothing measured) is ``NO_FIGURE`` everywhere. Fractions are given as
fractions (``0.073`` prints as ``7.3%``). Only ``math`` is imported, so anything may use this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

__all__ = [
    "NO_FIGURE",
    "budget_percent",
    "confidence_percent",
    "finite_or_none",
    "format_bytes",
    "format_count",
    "format_seconds",
    "interval",
    "interval_heading",
    "junit_number",
    "percent",
    "percentage_points",
    "shared_confidence",
    "signed",
    "signed_percent",
    "signed_percent_or_dash",
    "signed_whole_percent",
    "unbounded",
    "visible",
]

NO_FIGURE = "—"
"""The one mark for a figure that does not exist: no budget, no interval, nothing measured.

A dash that cannot be read as a minus sign, in a column where signed figures stand."""


def visible(text: str) -> str:
    """Text read from a file or given by a user, with every control character shown, never obeyed.

    C0 and C1 controls (ESC, BEL, a newline...), DEL and lone surrogates become their Python escape
    (``\\x1b``, ``\\x07``, ``\\n``); the rest is kept. The Markdown and HTML reports pass all their
    text through it before their own escaping, so a test id from a saved run cannot move a
    terminal's cursor or hide text when the report is printed or opened.
    """
    if text.isprintable():
        return text
    return "".join(ascii(c)[1:-1] if _control(c) else c for c in text)


def _control(character: str) -> bool:
    code = ord(character)
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def unbounded(value: float) -> str:
    """An interval end with no bound: ``∞`` above zero, ``-∞`` otherwise."""
    return "∞" if value > 0 else "-∞"


def format_seconds(seconds: float) -> str:
    """Compact human form of a duration: ``1.84 ms``, ``12.3 µs``, ``2.10 s``."""
    magnitude = abs(seconds)
    if magnitude >= 1:
        return f"{seconds:.2f} s"
    if magnitude >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if magnitude >= 1e-6:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e9:.0f} ns"


def format_bytes(size: float) -> str:
    """Compact human form of a size in binary units: ``512 B``, ``1.5 KiB``, ``2.0 MiB``."""
    magnitude = abs(size)
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if magnitude >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size:.0f} B"


def format_count(value: float) -> str:
    """Compact form of an instruction count: ``1.23 M``, ``45.6 k``."""
    magnitude = abs(value)
    for suffix, factor in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if magnitude >= factor:
            return f"{value / factor:.3g} {suffix}"
    return f"{value:.0f}"


def budget_percent(fraction: float) -> str:
    """A fraction on a budget's scale: ``0.05`` as ``5.0%``; small ones keep two significant digits (``0.04%``).

    Budgets are written back in this form, and it parses to the same budget.
    """
    value = fraction * 100
    if value == 0 or not math.isfinite(value) or abs(value) >= 0.1:
        return f"{value:.1f}%"
    return f"{value:.2g}%"


def _as_percent(fraction: float, spec: str, unit: str = "%", otherwise: Callable[[float], str] | None = None) -> str:
    """``fraction`` times 100 in format ``spec`` with ``unit``; a figure not finite as ``otherwise`` says
    (by default an unbounded end, ``∞`` or ``-∞``)."""
    if not math.isfinite(fraction):
        return (otherwise or unbounded)(fraction)
    return f"{fraction * 100:{spec}}{unit}"


def percent(fraction: float) -> str:
    """``7.3%``: one decimal, no sign; an unbounded end is ``∞`` or ``-∞``."""
    return _as_percent(fraction, ".1f")


def signed_percent(fraction: float) -> str:
    """``+7.3%``: one decimal, always signed; an unbounded end is ``∞`` or ``-∞``."""
    return _as_percent(fraction, "+.1f")


def signed_percent_or_dash(fraction: float) -> str:
    """``+7.3%``: one decimal, always signed; ``NO_FIGURE`` when the figure is not finite."""
    return _as_percent(fraction, "+.1f", otherwise=lambda _: NO_FIGURE)


def signed_whole_percent(fraction: float) -> str:
    """``+20%``: no decimals, always signed (a relative change); an unbounded one is ``∞`` or ``-∞``."""
    return _as_percent(fraction, "+.0f")


def percentage_points(fraction: float) -> str:
    """``+6.7pp``: a difference of two percentages, signed; ``0.0pp`` for one that rounds to none (never
    ``-0.0pp``); an unbounded end is ``∞`` or ``-∞``."""
    shown = _as_percent(fraction, "+.1f", unit="pp")
    return "0.0pp" if shown in ("+0.0pp", "-0.0pp") else shown


def signed(value: float, magnitude: Callable[[float], str]) -> str:
    """``+`` or ``-``, then ``magnitude`` of the absolute value: ``signed(-2e-6, format_seconds)`` is ``-2.0 µs``."""
    return ("+" if value >= 0 else "-") + magnitude(abs(value))


def interval(low: float, high: float, show: Callable[[float], str]) -> str:
    """``[-8.4%, +1.5%]``: the one notation of an interval, each end as ``show`` prints it.

    ``NO_FIGURE`` when neither end is bounded (nothing is known) or an end is not a number.
    """
    if math.isnan(low) or math.isnan(high) or (math.isinf(low) and math.isinf(high)):
        return NO_FIGURE
    return f"[{show(low)}, {show(high)}]"


def confidence_percent(level: float) -> str:
    """``95%``, ``99%``, ``99.5%``: an interval's confidence."""
    return f"{level * 100:.4g}%"


def shared_confidence(levels: Iterable[float]) -> float | None:
    """The one confidence of intervals that share it; ``None`` for intervals of several (or none)."""
    distinct = set(levels)
    return distinct.pop() if len(distinct) == 1 else None


def interval_heading(levels: Iterable[float], name: str = "CI") -> str:
    """``95% CI`` over intervals of one confidence; ``CI`` over intervals of several, each cell then saying its
    own (``confidence_percent``). ``name`` stands for ``CI`` (``95% interval``)."""
    shared = shared_confidence(levels)
    return name if shared is None else f"{confidence_percent(shared)} {name}"


def junit_number(value: float) -> str:
    """A number in a junit property: six significant digits; ``inf`` or ``-inf`` when not finite."""
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def finite_or_none(value: float | None) -> float | None:
    """A number for JSON, which has no infinities: an unbounded or missing figure is written as null."""
    if value is None or not math.isfinite(value):
        return None
    return value
