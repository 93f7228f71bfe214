"""Strict readers of JSON values: each value checked against its field, errors naming the field.

Readers check every value against what documents hold, so a record read back holds nothing that
reports and comparisons could trip over: whole numbers are counts no larger than ``LARGEST_COUNT``,
other numbers are finite (``null`` stands for NaN or an unbounded end, as written), texts are
texts. A value that does not fit raises :class:`Malformed`, whose message names the field it was in.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pytest_otel_overhead.units import Budget, BudgetKind

__all__ = [
    "LARGEST_COUNT",
    "MAX_TEXT_CHARS",
    "Malformed",
    "clip",
    "describe",
    "optional",
    "read_amount",
    "read_budget",
    "read_count",
    "read_entries",
    "read_field",
    "read_flag",
    "read_free",
    "read_items",
    "read_list",
    "read_number",
    "read_object",
    "read_row",
    "read_rows",
    "read_text",
    "rows_at",
    "rows_text",
    "type_hints",
]

LARGEST_COUNT = 2**53
"""Whole numbers above this are no measurement's, and floats could no longer hold them exactly."""
MAX_TEXT_CHARS = 64 * 1024
"""The longest string read from a document (64 KiB): test ids, notes and names are far shorter, and
reports show each string several times, so a few huge strings took many times the file's size."""
_MISSING = object()

T = typing.TypeVar("T")


class Malformed(ValueError):
    """A value that does not fit its field; ``where`` is the path of keys to it."""

    def __init__(self, problem: str, where: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.where = where

    def within(self, key: str) -> Malformed:
        return Malformed(self.problem, (clip(key, 60), *self.where))

    def __str__(self) -> str:
        return f"{'.'.join(self.where)}: {self.problem}" if self.where else self.problem


def describe(value: Any) -> str:
    """A JSON value in a few characters: error messages stay one short line whatever the file holds."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() > 128:  # about 39 digits: longer ones are described, not shown
            return f"a whole number of about {round(value.bit_length() * math.log10(2))} digits"
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, str):
        return repr(clip(value, 40))
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_field(data: Mapping[str, Any], key: str, read: Callable[[Any], T], *, required: bool = True) -> T:
    """``read(data[key])``; an absent optional field reads as ``null``."""
    value = data.get(key, _MISSING)
    if value is _MISSING:
        if required:
            raise Malformed("missing", (key,))
        value = None
    try:
        return read(value)
    except Malformed as error:
        raise error.within(key) from None


def optional(read: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda value: None if value is None else read(value)


def read_number(value: Any, missing: float = math.nan) -> float:
    """A finite number as documents hold it; ``null`` stands for a value JSON cannot hold (``missing``)."""
    if value is None:
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(f"{describe(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise Malformed(f"{describe(value)} is too large for a number") from None
    if not math.isfinite(number):
        raise Malformed(f"{describe(value)} is not a finite number")
    return number


def read_amount(value: Any) -> float:
    """A time, size or rate: finite and not negative."""
    number = read_number(value)
    if number < 0:
        raise Malformed(f"{describe(value)} is negative")
    return number


def read_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{describe(value)} is not a whole number")
    if not 0 <= value <= LARGEST_COUNT:
        raise Malformed(f"{describe(value)} is not a count (0 to 2**53)")
    return value


def read_text(value: Any) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{describe(value)} is not a string")
    if len(value) > MAX_TEXT_CHARS:
        raise Malformed(f"a string of {len(value):,} characters, more than the {MAX_TEXT_CHARS:,} one may hold")
    if value.isascii():  # nearly every text, checked without the copy encoding makes
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # "\ud800" is valid JSON but no text: printing or writing it would fail
        raise Malformed(f"{describe(value)} holds a lone surrogate, not text") from None
    return value


def read_flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Malformed(f"{describe(value)} is not true or false")
    return value


def read_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{describe(value)} is not an object")
    return value


def read_free(value: Any) -> Any:
    """A JSON value of no fixed shape (a section kept as written), with every string in it, keys too,
    read by ``read_text``; errors name the member or item."""
    if isinstance(value, str):
        return read_text(value)
    if isinstance(value, dict):
        return dict(read_entries(value, read_free))
    if isinstance(value, list):
        return read_items(value, read_free)
    return value


def read_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{describe(value)} is not a list")
    return value


def read_entries(value: Any, read: Callable[[Any], T]) -> list[tuple[str, T]]:
    """The members of an object, each value read by ``read``; errors name the member."""
    entries = []
    for key, item in read_object(value).items():
        try:
            entries.append((read_text(key), read(item)))
        except Malformed as error:
            raise error.within(key) from None
    return entries


def read_items(value: Any, read: Callable[[Any], T]) -> list[T]:
    """The items of a list, each read by ``read``; errors name the item (``#1`` is the first)."""
    items = []
    for index, item in enumerate(read_list(value)):
        try:
            items.append(read(item))
        except Malformed as error:
            raise error.within(f"#{index + 1}") from None
    return items


def read_rows(width: int) -> Callable[[Any], list[tuple[float, ...]]]:
    """``read_items`` of ``read_row(width)``, with rows of finite floats (nearly all) taken in one pass:
    a saved run holds a row per pair, and reading them number by number took most of a large run's reading."""

    def read(value: Any) -> list[tuple[float, ...]]:
        rows = read_list(value)
        if all(type(row) is list and len(row) == width for row in rows):
            flat = [v for row in rows for v in row]
            # A NaN or an infinity makes the sum not finite, and so does an overflow: those take the slow path.
            if all(type(v) is float for v in flat) and math.isfinite(math.fsum(flat)):
                return [tuple(row) for row in rows]
        return read_items(rows, read_row(width))

    return read


_HINTS: dict[object, dict[str, Any]] = {}


def type_hints(kind: object) -> dict[str, Any]:
    """``typing.get_type_hints(kind)``, resolved once per record type (per test, it took seconds in a large run)."""
    hints = _HINTS.get(kind)
    if hints is None:
        hints = _HINTS[kind] = typing.get_type_hints(kind)
    return hints


def read_row(width: int) -> Callable[[Any], tuple[float, ...]]:
    def read(value: Any) -> tuple[float, ...]:
        row = read_list(value)
        if len(row) != width:
            raise Malformed(f"a row of {len(row)} values, not {width}")
        return tuple(read_number(v) for v in row)

    return read


def read_budget(value: Any) -> Budget:
    """A budget as documents hold it, ``{"kind": "relative" or "absolute", "value": above 0}``."""
    data = read_object(value)
    text = read_field(data, "kind", read_text)
    kinds: tuple[BudgetKind, ...] = ("relative", "absolute")
    kind = next((kind for kind in kinds if kind == text), None)
    if kind is None:
        raise Malformed(f"{describe(text)} is not a budget kind (relative or absolute)", ("kind",))
    amount = read_field(data, "value", read_number)
    if not amount > 0:
        raise Malformed(f"{describe(amount)} is not a budget (above 0)", ("value",))
    return Budget(kind, amount)


_WHITESPACE = b" \t\n\r"
# A JSON number whose float is surely finite (at most 200 digits before the point, a positive exponent of
# at most two digits), or null. Each token ends where the next must begin (a comma or a bracket), so no match
# needs to give back what a repeat took: possessive where Python has them (3.11), a tenth faster; before that
# a failed row backtracks a few characters, not through the rows. Optional parts are written as an
# alternative with nothing (``(?:x|)``), not ``(?:x)?``: the regular expression engine runs the first as a
# branch and the second as a general repeat, a third slower over a table.
_POSSESSIVE = b"+" if sys.version_info >= (3, 11) else b""
_NUMBER = (
    rb"(?:(?:-|)(?:0|[1-9][0-9]{0,199}%s)(?:\.[0-9]+%s|)(?:[eE](?:-[0-9]+%s|\+[0-9]{1,2}%s|[0-9]{1,2}%s)|)|null)"
    % ((_POSSESSIVE,) * 5)
)
# Where whitespace may stand in a table, it parts tokens: as spaces, the brackets and commas around them.
_TOKENS_APART = bytes(32 if chr(i) in "[], \t\n\r" else i for i in range(256))


@functools.cache
def _rows_pattern(width: int, comma: bytes = b",") -> re.Pattern[bytes]:
    """The rows of ``width`` numbers as a compact document holds them (or with ``comma`` between tokens)."""
    row = rb"\[" + comma.join([_NUMBER] * width) + rb"\]"
    return re.compile(rb"\[" + row + rb"(?:" + comma + row + rb")*" + _POSSESSIVE + rb"\]")


def rows_text(raw: bytes, width: int, compacted: bytes | None = None) -> bytes | None:
    """Rows of ``width`` numbers (or ``null``) as a document holds them, compacted, when they are that and
    every number is finite: checked by one pattern over the text, with no Python object per number.
    ``None`` when not (or when a number is too large to be surely finite), and the strict reader then says why.
    ``compacted``: ``raw`` without its whitespace, when the caller has it already.

    Whitespace may stand between any two tokens (JSON's, ``json.dumps``'s or an indented report's layout),
    not before or after the table: the text without it must be rows as a compact document holds them, and
    hold as many tokens as ``raw`` (whitespace inside a number would join two into one)."""
    pattern = _rows_pattern(width)
    if pattern.fullmatch(raw):
        return raw
    if len(raw) < 64 and raw.translate(None, _WHITESPACE) == b"[]":
        return b"[]"
    if raw[:1] != b"[" or raw[-1:] != b"]":
        return None
    # json.dumps's default layout, a space after each comma, has a pattern of its own: faster than the general way.
    if compacted is None and raw[:64].count(b", ") > 1 and _rows_pattern(width, b", ").fullmatch(raw):
        return raw.translate(None, _WHITESPACE)
    compact = raw.translate(None, _WHITESPACE) if compacted is None else compacted
    if not pattern.fullmatch(compact):
        return None
    # The compact rows hold width numbers a row; the rows as written, as many tokens only if none was split.
    if len(raw.translate(_TOKENS_APART).split()) != width * (compact.count(b"[") - 1):
        return None
    return compact


_NEWLINE = b"\n"


@functools.lru_cache(maxsize=32)
def _indented_pattern(width: int, outer: int, row: int, item: int) -> re.Pattern[bytes]:
    """The rows of ``width`` numbers as ``json.dumps(..., indent=...)`` lays them out: each token on a line of
    its own, the rows' brackets ``row`` spaces in, their numbers ``item``, the table's closing bracket ``outer``."""
    number = rb",\n" + b" " * item
    rows = rb"\[\n" + b" " * item + number.join([_NUMBER] * width) + _NEWLINE + b" " * row + rb"\]"
    following = rb"(?:,\n" + b" " * row + rows + rb")*" + _POSSESSIVE
    return re.compile(rb"\[\n" + b" " * row + rows + following + _NEWLINE + b" " * outer + rb"\]")


def _indents(raw: bytes, start: int) -> tuple[int, int, int] | None:
    """The indentation of a table laid out by ``json.dumps(..., indent=...)`` at ``start``: its closing bracket's,
    its rows' and their numbers', from its first lines; ``None`` when it is not laid out so."""
    first = raw[start + 2 : start + 258]
    row = len(first) - len(first.lstrip(b" "))
    if first[row : row + 2] != b"[\n":
        return None
    second = first[row + 2 :]
    item = len(second) - len(second.lstrip(b" "))
    outer = 2 * row - item
    return (outer, row, item) if item > row and outer >= 0 else None


_DIGITS = b"0123456789"


@functools.lru_cache(maxsize=64)
def _shape(width: int, rows: int) -> bytes:
    """A compact table of ``rows`` rows of ``width`` numbers with the digits left out: each number is its point."""
    row = b"[" + b",".join([b"."] * width) + b"]"
    return b"[" + b",".join([row] * rows) + b"]"


def _plain_rows(compact: bytes, width: int) -> bool:
    """Whether ``compact`` is rows of ``width`` numbers each ``0.`` and digits (a raw sample below a second: nearly
    every one), in passes over the bytes in C: fewer instructions than the pattern's steps.

    The text without its digits must be the table's shape with a point for each number; every digit left out then
    stood between two characters of the shape. The point of each number is preceded by exactly ``0`` after the
    bracket or comma before it (every row starts ``[0.``, after the first ``[[`` or a ``],[``; every comma in a row
    is followed by ``0.``), and followed by at least one digit (no ``.,`` or ``.]``); the brackets at the ends and
    between rows have nothing between them. So each number is ``0.[0-9]+``, which ``_NUMBER`` takes."""
    if not (compact.startswith(b"[[0.") and compact.endswith(b"]]")):
        return False
    shape = compact.translate(None, _DIGITS)
    rows, rest = divmod(len(shape) - 1, 2 * width + 2)
    return (
        rest == 0
        and shape == _shape(width, rows)
        and compact.count(b"],[0.") == rows - 1
        and compact.count(b",0.") == (width - 1) * rows
        and b".," not in compact
        and b".]" not in compact
    )


def _plain_at(raw: bytes, start: int, width: int) -> tuple[int, bytes] | None:
    """``rows_at``'s answer for a table of plain numbers (``_plain_rows``) laid out compact or with a space after
    each comma, ``None`` when not such a table: it then goes to the layout's pattern. The table ends at its ``]]``,
    looked for back from the next string (a table holds none, and a valid one holds ``]]`` only at its end).
    Indented tables keep to their pattern: timed, the passes over their bytes and their whitespace took longer
    than the pattern, though they executed fewer instructions."""
    limit = raw.find(b'"', start)
    limit = len(raw) if limit < 0 else limit
    spaced = raw.find(b", ", start, min(start + 64, limit)) >= 0
    end = raw.rfind(b"]]", start, limit)
    if end < 0:
        return None
    table = raw[start : end + 2]
    compact = table.replace(b", ", b",") if spaced else table
    if spaced and compact.replace(b",", b", ") != table:
        return None
    return (end + 2, compact) if _plain_rows(compact, width) else None


def rows_at(raw: bytes, start: int, width: int) -> tuple[int, bytes] | None:
    """The rows of ``width`` numbers at ``start`` in ``raw``, checked as ``rows_text`` checks them, when they stand
    in a layout ``json.dumps`` writes: compact (as a saved run holds them), its default (a space after each comma)
    or indented by spaces (as a JSON report holds them). Where the table ends (its first ``]]``, or its first
    ``]`` followed, past whitespace, by another) and its compact text (``raw``'s own bytes when compact);
    ``None`` when they are not rows in one of those layouts, and ``rows_text`` then decides.

    A compact or spaced table of plain numbers (``_plain_rows``: nearly every one) is checked in passes over its
    bytes; any other by its layout's pattern, matched where the table starts: no search for its end, and in an
    indented table no pass to drop the whitespace before the check and none to count its tokens after."""
    second = raw[start + 1 : start + 2]
    if second == b"[":
        plain = _plain_at(raw, start, width)
        if plain is not None:
            return plain
        found = _rows_pattern(width).match(raw, start)
        if found is not None:
            return found.end(), raw[start : found.end()]
        found = _rows_pattern(width, b", ").match(raw, start)
        if found is not None:
            return found.end(), raw[start : found.end()].translate(None, _WHITESPACE)
        return None
    indents = _indents(raw, start) if second == _NEWLINE else None
    found = _indented_pattern(width, *indents).match(raw, start) if indents is not None else None
    return None if found is None else (found.end(), raw[start : found.end()].translate(None, _WHITESPACE))
