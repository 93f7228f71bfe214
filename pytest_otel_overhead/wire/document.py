"""Records as the JSON documents files keep, and back, strictly, driven by each dataclass's fields.

A field appears under its own name, its value by its type: numbers that JSON cannot hold (NaN, an
unbounded end) as ``null``, enums as their value, tuples as lists, nested records as objects. Where
the document form of a field differs (another key, a per-call figure, a table with its columns) the
field says so once, in its metadata (``wire.form.form(...)``); figures derived for readers of the document
are listed in the record's ``DERIVED`` and are not read back. Reading checks every value
(``wire.checks``): a value that does not fit raises :class:`~pytest_otel_overhead.wire.checks.Malformed`
naming the field.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from pytest_otel_overhead.formatting import finite_or_none
from pytest_otel_overhead.units import Budget, SettingsError
from pytest_otel_overhead.wire.checks import (
    LARGEST_COUNT,
    Malformed,
    describe,
    read_amount,
    read_budget,
    read_count,
    read_entries,
    read_flag,
    read_items,
    read_number,
    read_object,
    read_text,
    type_hints,
)
from pytest_otel_overhead.wire.form import FORM

__all__ = ["Derived", "Form", "derived_of", "form_of", "from_document", "to_document"]

T = TypeVar("T")


@dataclass(frozen=True)
class Form:
    """How one field appears in documents, where that differs from its name and its type.

    A field declares it with :func:`~pytest_otel_overhead.wire.form.form`, naming these options.
    """

    key: str | None = None
    """The document's key, when it is not the field's name."""
    doc: str | None = None
    """What the document's value holds, where its form differs from what the field's docstring says."""
    shape: str | None = None
    """The value's JSON type as the schema page names it, where the field's type does not tell it."""
    write: Callable[[Any], Any] | None = None
    """The document's value from the field's value."""
    read: Callable[[Any], Any] | None = None
    """The field's value from the document's value (raises ``Malformed``; a ``SettingsError`` of a
    settings parser is taken as one)."""
    written: Callable[[Any], bool] | None = None
    """Whether a record writes the field at all (given the record)."""
    per: str | None = None
    """The document holds the field divided by this count field of the record (``per="calls"``)."""
    keyed_by: str | None = None
    """A tuple of records written as an object keyed by this field of each."""
    entries: bool = False
    """A tuple of (name, value) pairs written as an object: each name a key, each value by its type."""
    inline: bool = False
    """A nested record whose fields the document holds beside the record's own, not as an object."""
    null: float = math.nan
    """What a number field reads ``null`` as (NaN, or an unbounded end of an interval)."""
    amount: bool = False
    """A number that is never negative (a time, size or rate)."""
    required: bool | None = None
    """Whether a document must hold the field; by default those without a default value."""

    def key_of(self, name: str) -> str:
        return self.key or name


PLAIN = Form()


@dataclass(frozen=True)
class Derived:
    """A figure the document adds for its readers, computed from the record's fields and not read back.

    Records list theirs in a ``DERIVED`` class attribute; the schema page shows ``shape`` and ``doc``.
    """

    key: str
    shape: str
    doc: str
    compute: Callable[[Any], Any]


def form_of(field: dataclasses.Field[Any]) -> Form:
    how = field.metadata.get(FORM)
    return PLAIN if how is None else Form(**how)


# ---------------------------------------------------------------------------------------------
# Writing


def plain(value: Any) -> Any:
    """A value as documents hold it, by its type."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_document(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _written(record: Any, field: dataclasses.Field[Any], spec: Form) -> Any:
    value = getattr(record, field.name)
    if spec.write is not None:
        return spec.write(value)
    if spec.per is not None:
        calls = getattr(record, spec.per)

        def per_call(count: float) -> float | None:
            return finite_or_none(count / calls if calls else math.nan)

        if isinstance(value, tuple):  # (name, count) pairs: an object of per-call figures
            return {name: per_call(count) for name, count in value}
        return None if value is None else per_call(value)
    if spec.keyed_by is not None:
        return {getattr(item, spec.keyed_by): plain(item) for item in value}
    if spec.entries:
        return {str(name): plain(item) for name, item in value}
    return plain(value)


def to_document(record: Any) -> dict[str, Any]:
    """The record as a JSON-ready dict: its fields, then the figures its ``DERIVED`` adds."""
    data: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        spec = form_of(field)
        if spec.inline:
            data.update(to_document(getattr(record, field.name)))
        elif spec.written is None or spec.written(record):
            data[spec.key_of(field.name)] = _written(record, field, spec)
    for derived in derived_of(type(record)):
        data[derived.key] = derived.compute(record)
    return data


def derived_of(kind: type) -> tuple[Derived, ...]:
    derived: tuple[Derived, ...] = getattr(kind, "DERIVED", ())
    return derived


# ---------------------------------------------------------------------------------------------
# Reading


def _accepts_none(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def _read_enum(kind: type[enum.Enum], value: Any) -> enum.Enum:
    text = read_text(value)
    try:
        return kind(text)
    except ValueError:
        options = ", ".join(str(member.value) for member in kind)
        raise Malformed(f"{describe(text)} is not a {kind.__name__.lower()} ({options})") from None


def _read_tuple(hint: Any, value: Any) -> tuple[Any, ...]:
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(read_items(value, lambda item: read_typed(args[0], item)))
    row = read_items(value, lambda item: item)
    if len(row) != len(args):
        raise Malformed(f"a row of {len(row)} values, not {len(args)}")
    return tuple(read_typed(arg, item) for arg, item in zip(args, row, strict=True))


def read_typed(hint: Any, value: Any) -> Any:
    """A JSON value as a value of type ``hint``, checked."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return None if value is None and _accepts_none(hint) else read_typed(_without_none(hint), value)
    if origin is tuple:
        return _read_tuple(hint, value)
    if origin is typing.Literal:
        text = read_text(value)
        if text not in typing.get_args(hint):
            raise Malformed(f"{describe(text)} is not one of {', '.join(map(str, typing.get_args(hint)))}")
        return text
    readers: dict[Any, Callable[[Any], Any]] = {
        float: read_number,
        int: read_count,
        str: read_text,
        bool: read_flag,
        Budget: read_budget,
    }
    if hint in readers:
        return readers[hint](value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _read_enum(hint, value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_document(hint, value)
    raise TypeError(f"no document form for {hint!r}")


def _read_per(hint: Any, value: Any, calls: int) -> Any:
    """A per-call figure times the calls; ``null`` (no calls to divide by) counts as none."""
    if value is None and _accepts_none(hint):
        return None
    if typing.get_origin(hint) is tuple:  # (name, count) pairs, from an object of per-call figures
        return tuple(read_entries(value if value is not None else {}, lambda v: _read_per(int, v, calls)))
    total = read_amount(value) * calls if value is not None else 0.0
    if total > LARGEST_COUNT:
        raise Malformed(f"{describe(value)} per call over {calls} calls is more than any run counts")
    return total if float in (hint, *typing.get_args(hint)) else round(total)


def _without_none(hint: Any) -> Any:
    if not _accepts_none(hint):
        return hint
    (chosen,) = [option for option in typing.get_args(hint) if option is not type(None)]
    return chosen


def _read_value(hint: Any, spec: Form, value: Any, read_so_far: Mapping[str, Any]) -> Any:
    if spec.read is not None:
        try:
            return spec.read(value)
        except SettingsError as error:
            raise Malformed(str(error)) from None
    if spec.per is not None:
        return _read_per(hint, value, read_so_far[spec.per])
    if value is None and _accepts_none(hint):
        return None
    hint = _without_none(hint)
    if spec.keyed_by is not None:
        (item,) = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
        return tuple(entry for _, entry in read_entries(value, lambda v: read_typed(item, v)))
    if spec.entries:
        (pair, _) = typing.get_args(hint)
        _, kind = typing.get_args(pair)
        return tuple(read_entries(value, lambda v: read_typed(kind, v)))
    if hint is float:
        number = read_number(value, spec.null)
        if spec.amount and number < 0:
            raise Malformed(f"{describe(value)} is negative")
        return number
    return read_typed(hint, value)


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


def from_document(kind: type[T], value: Any) -> T:
    """The record of type ``kind`` that ``to_document`` wrote as ``value``; raises ``Malformed`` naming the field.

    An absent field keeps its default (documents of older versions hold fewer fields); so does a
    ``null`` where the field's type has no ``None`` (and no number, which reads it as NaN).
    """
    data = read_object(value)
    hints = type_hints(kind)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        spec = form_of(field)
        if spec.inline:  # its fields stand among the record's own
            values[field.name] = from_document(_without_none(hints[field.name]), data)
            continue
        key = spec.key_of(field.name)
        if not field.init or (key not in data and _has_default(field)):
            continue
        required = spec.required if spec.required is not None else not _has_default(field)
        if key not in data and required:
            raise Malformed("missing", (key,))
        hint = hints[field.name]
        raw = data.get(key)
        if raw is None and _has_default(field) and not _accepts_none(hint) and hint is not float and spec.read is None:
            continue
        try:
            values[field.name] = _read_value(hint, spec, raw, values)
        except Malformed as error:
            raise error.within(key) from None
    return kind(**values)
