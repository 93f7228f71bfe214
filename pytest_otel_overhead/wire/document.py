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
import functools
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
    MAX_TEXT_CHARS,
    Malformed,
    describe,
    read_amount,
    read_budget,
    read_count,
    read_entries,
    read_flag,
    read_items,
    read_list,
    read_number,
    read_object,
    read_text,
    type_hints,
)
from pytest_otel_overhead.wire.fields import Derived, Form, form_of

__all__ = ["derived_of", "from_document", "read_typed", "to_document", "typed_reader"]

T = TypeVar("T")
_MISSING = object()


# ---------------------------------------------------------------------------------------------
# Writing


_AS_IS = frozenset({str, int, bool, type(None)})


def plain(value: Any) -> Any:
    """A value as documents hold it, by its type."""
    kind = type(value)
    if kind in _AS_IS:  # most values: checked first, as a merged run writes a million of them
        return value
    if kind is float:
        return value if math.isfinite(value) else None
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


def _per_call_writer(name: str, per: str) -> Callable[[Any], Any]:
    def write(record: Any) -> Any:
        value, calls = getattr(record, name), getattr(record, per)

        def per_call(count: float) -> float | None:
            return finite_or_none(count / calls if calls else math.nan)

        if isinstance(value, tuple):  # (name, count) pairs: an object of per-call figures
            return {item: per_call(count) for item, count in value}
        return None if value is None else per_call(value)

    return write


def _field_writer(field: dataclasses.Field[Any], spec: Form) -> Callable[[Any], Any]:
    """The document's value of the field, from the record."""
    name = field.name
    if spec.write is not None:
        custom = spec.write
        return lambda record: custom(getattr(record, name))
    if spec.per is not None:
        return _per_call_writer(name, spec.per)
    if spec.keyed_by is not None:
        by = spec.keyed_by
        return lambda record: {getattr(item, by): plain(item) for item in getattr(record, name)}
    if spec.entries:
        return lambda record: {str(key): plain(item) for key, item in getattr(record, name)}
    return lambda record: plain(getattr(record, name))


_Written = tuple[str, Callable[[Any], Any], Callable[[Any], bool] | None, bool]
_WRITERS: dict[type, tuple[_Written, ...]] = {}


def _written(field: dataclasses.Field[Any]) -> _Written:
    """The field's key, its writer, whether a record writes it, and whether it is inline (its record, as is)."""
    spec, name = form_of(field), field.name
    write = _field_writer(field, spec) if not spec.inline else lambda record: getattr(record, name)
    return spec.key_of(name), write, spec.written, spec.inline


def _writers(kind: type) -> tuple[_Written, ...]:
    """How each field of ``kind`` is written, decided once per record type."""
    writers = _WRITERS.get(kind)
    if writers is None:
        writers = _WRITERS[kind] = tuple(_written(field) for field in dataclasses.fields(kind))
    return writers


def to_document(record: Any) -> dict[str, Any]:
    """The record as a JSON-ready dict: its fields, then the figures its ``DERIVED`` adds."""
    data: dict[str, Any] = {}
    for key, write, written, inline in _writers(type(record)):
        if inline:
            data.update(to_document(write(record)))
        elif written is None or written(record):
            data[key] = write(record)
    for derived in derived_of(type(record)):
        data[derived.key] = derived.compute(record)
    return data


def derived_of(kind: type) -> tuple[Derived, ...]:
    derived: tuple[Derived, ...] = getattr(kind, "DERIVED", ())
    return derived


# ---------------------------------------------------------------------------------------------
# Reading


Reader = Callable[[Any], Any]
"""A JSON value to a field's value, checked (raises ``Malformed``)."""


@functools.cache
def _accepts_none(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


def _enum_reader(kind: type[enum.Enum]) -> Reader:
    # Members by value, looked up in a dict: calling the enum class to find one took several times longer.
    members = {member.value: member for member in kind}

    def read(value: Any) -> enum.Enum:
        text = read_text(value)
        member = members.get(text)
        if member is None:
            options = ", ".join(str(member.value) for member in kind)
            raise Malformed(f"{describe(text)} is not a {kind.__name__.lower()} ({options})")
        return member

    return read


def _row_reader(args: tuple[Any, ...]) -> Reader:
    readers = tuple(typed_reader(arg) for arg in args)

    def read(value: Any) -> tuple[Any, ...]:
        row = read_list(value)
        if len(row) != len(readers):
            raise Malformed(f"a row of {len(row)} values, not {len(readers)}")
        return tuple(read(item) for read, item in zip(readers, row, strict=True))

    return read


def _literal_reader(options: tuple[Any, ...]) -> Reader:
    def read(value: Any) -> str:
        text = read_text(value)
        if text not in options:
            raise Malformed(f"{describe(text)} is not one of {', '.join(map(str, options))}")
        return text

    return read


_BASE_READERS: dict[Any, Reader] = {
    float: read_number,
    int: read_count,
    str: read_text,
    bool: read_flag,
    Budget: read_budget,
}


@functools.cache
def typed_reader(hint: Any) -> Reader:
    """The reader of a JSON value as a value of type ``hint``, made once per type: a merged run reads a
    million values, and choosing the reader by the type at each value took most of the time."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType) and _accepts_none(hint):
        inner = typed_reader(_without_none(hint))
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = typed_reader(args[0])
            return lambda value: tuple(read_items(value, item))
        return _row_reader(args)
    if origin is typing.Literal:
        return _literal_reader(typing.get_args(hint))
    if hint in _BASE_READERS:
        return _BASE_READERS[hint]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_reader(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return functools.partial(from_document, hint)

    def unknown(value: Any) -> Any:
        raise TypeError(f"no document form for {hint!r}")

    return unknown


def read_typed(hint: Any, value: Any) -> Any:
    """A JSON value as a value of type ``hint``, checked."""
    return typed_reader(hint)(value)


@functools.cache
def _per_reader(hint: Any) -> Callable[[Any, int], Any]:
    """A per-call figure times the calls; ``null`` (no calls to divide by) counts as none."""
    nullable = _accepts_none(hint)
    if typing.get_origin(hint) is tuple:  # (name, count) pairs, from an object of per-call figures
        count = _per_reader(int)
        return lambda value, calls: (
            None
            if value is None and nullable
            else tuple(read_entries(value if value is not None else {}, lambda v: count(v, calls)))
        )
    as_float = float in (hint, *typing.get_args(hint))

    def read(value: Any, calls: int) -> Any:
        if value is None and nullable:
            return None
        total = read_amount(value) * calls if value is not None else 0.0
        if total > LARGEST_COUNT:
            raise Malformed(f"{describe(value)} per call over {calls} calls is more than any run counts")
        return total if as_float else round(total)

    return read


def _without_none(hint: Any) -> Any:
    if not _accepts_none(hint):
        return hint
    (chosen,) = [option for option in typing.get_args(hint) if option is not type(None)]
    return chosen


def _custom_reader(custom: Reader) -> Reader:
    def read(value: Any) -> Any:
        try:
            return custom(value)
        except SettingsError as error:
            raise Malformed(str(error)) from None

    return read


def _number_reader(spec: Form) -> Reader:
    null, amount = spec.null, spec.amount

    def read(value: Any) -> float:
        number = read_number(value, null)
        if amount and number < 0:
            raise Malformed(f"{describe(value)} is negative")
        return number

    return read


def _value_reader(hint: Any, spec: Form) -> Reader:
    """The reader of a field's non-null value, by its form and then its type."""
    if spec.keyed_by is not None:
        (item,) = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
        keyed = typed_reader(item)
        return lambda value: tuple(entry for _, entry in read_entries(value, keyed))
    if spec.entries:
        (pair, _) = typing.get_args(hint)
        _, kind = typing.get_args(pair)
        entry = typed_reader(kind)
        return lambda value: tuple(read_entries(value, entry))
    if hint is float:
        return _number_reader(spec)
    return typed_reader(hint)


def _field_reader(hint: Any, spec: Form) -> Reader:
    """The reader of a field's value: its own, or by its form and type (``null`` aside, when the type has ``None``)."""
    if spec.read is not None:
        return _custom_reader(spec.read)
    read = _value_reader(_without_none(hint), spec)
    return _recurring(read) if spec.recurs else read


_RECURRING_KEPT = 256


def _recurring(read: Reader) -> Reader:
    """``read``, once per distinct value: the value's ``repr`` (decoded JSON: equal texts, equal values) finds
    what it read before. A few hundred kept; a value that fails to read is read, and fails, again."""
    done: dict[str, Any] = {}
    last: list[Any] = [_MISSING, None]  # the value read last (kept alive here) and its record

    def recurring(value: Any) -> Any:
        if value is last[0]:  # the one object a decoder shared among the tests (``wire.scan``)
            return last[1]
        key = repr(value)
        found = done.get(key, _MISSING)
        if found is _MISSING:
            found = read(value)
            if len(done) >= _RECURRING_KEPT:
                done.clear()
            done[key] = found
        last[:] = value, found
        return found

    return recurring


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


def _never(value: Any) -> Any:
    raise AssertionError("an inline field is read as a record of its own")


@dataclass(frozen=True)
class _Step:
    """How one field of a record is read: decided once per record type."""

    name: str
    key: str
    read: Reader
    inline: Any = None
    """The record type of an inline field (its fields stand among the record's own)."""
    per: str | None = None
    """The count field a per-call figure is multiplied by (read before it)."""
    read_per: Callable[[Any, int], Any] | None = None
    has_default: bool = False
    required: bool = False
    nullable: bool = False
    """A ``null`` reads as ``None`` (the field's type has it, and no reader of its own decides)."""
    null_keeps_default: bool = False
    """A ``null`` where the field's type has no ``None`` (and no number) keeps the default."""
    as_is: str | None = None
    """A condition on ``raw`` under which the reader would return it unchanged (Python source), when known."""
    default: Any = None
    """The field's default value, or its default factory (``factory``)."""
    factory: bool = False


# When each plain reader returns its value unchanged: the readers' own checks, for the values that pass them.
_RETURNED_AS_IS: dict[Any, str] = {
    read_count: f"type(raw) is int and 0 <= raw <= {LARGEST_COUNT}",
    read_text: f"type(raw) is str and len(raw) <= {MAX_TEXT_CHARS} and raw.isascii()",
    read_flag: "type(raw) is bool",
}


def _as_is(read: Reader, hint: Any, spec: Form) -> str | None:
    if read in _RETURNED_AS_IS:
        return _RETURNED_AS_IS[read]
    if _without_none(hint) is float and spec.read is None and not spec.recurs and spec.keyed_by is None:
        return "type(raw) is float and raw - raw == 0.0" + (" and raw >= 0.0" if spec.amount else "")  # finite
    return None


def _step(field: dataclasses.Field[Any], hints: Mapping[str, Any]) -> _Step | None:
    spec = form_of(field)
    if spec.inline:
        return _Step(field.name, field.name, _never, inline=_without_none(hints[field.name]))
    if not field.init:
        return None
    hint = hints[field.name]
    default = _has_default(field)
    per = spec.per if spec.read is None else None
    read = _never if per is not None else _field_reader(hint, spec)
    return _Step(
        name=field.name,
        key=spec.key_of(field.name),
        read=read,
        per=per,
        read_per=_per_reader(hint) if per is not None else None,
        has_default=default,
        required=spec.required if spec.required is not None else not default,
        nullable=spec.read is None and per is None and _accepts_none(hint),
        null_keeps_default=default and not _accepts_none(hint) and hint is not float and spec.read is None,
        as_is=_as_is(read, hint, spec) if per is None else None,
        default=field.default if field.default_factory is dataclasses.MISSING else field.default_factory,
        factory=field.default_factory is not dataclasses.MISSING,
    )


def _step_source(index: int, step: _Step, defaults: bool) -> str:
    """The lines reading one field into ``values``: what a loop over the steps did for it, written out for its form;
    with ``defaults``, an absent field's default too."""
    name, key = repr(step.name), repr(step.key)
    if step.inline is not None:
        return f"    values[{name}] = from_document(inline{index}, data)\n"
    value = f"read{index}(raw)"
    if step.per is not None:
        value = f"read_per{index}(raw, values[{step.per!r}])"
    elif step.as_is is not None:
        value = f"raw if {step.as_is} else {value}"
    if step.nullable:
        value = f"None if raw is None else {value}"
    if step.has_default:
        kept = " and raw is not None" if step.null_keeps_default else ""
        head = f"    raw = get({key}, MISSING)\n    if raw is not MISSING{kept}:\n"
    elif step.required:
        head = f"    raw = get({key}, MISSING)\n    if raw is MISSING:\n        raise Malformed('missing', ({key},))\n"
        head += "    if True:\n"
    else:
        head = f"    raw = get({key})\n    if True:\n"
    source = (
        f"{head}        try:\n            values[{name}] = {value}\n"
        f"        except Malformed as error:\n            raise error.within({key}) from None\n"
    )
    if defaults and step.has_default:
        source += f"    else:\n        values[{name}] = default{index}{'()' if step.factory else ''}\n"
    return source


def _made_by_fields(kind: Any) -> bool:
    """Whether a record of ``kind`` is what its dataclass ``__init__`` makes of its fields and nothing else: each
    field set, in order, to its value or default (no ``__post_init__``, no field outside ``__init__``, no slots)."""
    made = getattr(getattr(kind.__dict__.get("__init__"), "__code__", None), "co_filename", None) == "<string>"
    plain = not hasattr(kind, "__post_init__") and "__slots__" not in kind.__dict__
    return made and plain and all(field.init for field in dataclasses.fields(kind))


_READERS: dict[Any, Callable[[Any], Any]] = {}


def _compiled(kind: Any) -> Callable[[Any], Any]:
    """The reader of ``kind``'s documents, made once per record type: each field's reading written out as Python
    and compiled, with the checks of plain fields inline (a merged run reads a million fields, and a loop that
    looked up each field's plan took most of the reading)."""
    hints = type_hints(kind)
    steps = [step for step in (_step(field, hints) for field in dataclasses.fields(kind)) if step is not None]
    names: dict[str, Any] = {"kind": kind, "read_object": read_object, "Malformed": Malformed, "MISSING": _MISSING}
    names["from_document"] = from_document
    source = "def read(value):\n    data = value if type(value) is dict else read_object(value)\n"
    source += "    get = data.get\n    values = {}\n"
    # Made as its __init__ makes it, without the call: a frozen record's __init__ sets each field through
    # object.__setattr__, and took a sixth of a merge's reading.
    direct = _made_by_fields(kind)
    names["new"] = object.__new__
    for index, step in enumerate(steps):
        names.update({f"read{index}": step.read, f"read_per{index}": step.read_per, f"inline{index}": step.inline})
        names[f"default{index}"] = step.default
        source += _step_source(index, step, direct)
    if direct:
        source += "    record = new(kind)\n    record.__dict__.update(values)\n    return record\n"
    else:
        source += "    return kind(**values)\n"
    exec(compile(source, f"<reader of {kind.__qualname__}>", "exec"), names)
    reader: Callable[[Any], Any] = names["read"]
    return reader


def from_document(kind: type[T], value: Any) -> T:
    """The record of type ``kind`` that ``to_document`` wrote as ``value``; raises ``Malformed`` naming the field.

    An absent field keeps its default (documents of older versions hold fewer fields); so does a
    ``null`` where the field's type has no ``None`` (and no number, which reads it as NaN).
    """
    reader = _READERS.get(kind)
    if reader is None:
        reader = _READERS[kind] = _compiled(kind)
    record: T = reader(value)
    return record
