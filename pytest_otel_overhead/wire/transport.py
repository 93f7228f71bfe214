"""Dataclass records as JSON text and back, without loss, for passing them between processes.

Floats keep NaN and infinities (Python's JSON extension literals), tuples come back as tuples,
enums as enums and nested records as records, driven by the type hints of each dataclass, so a new
field needs no code here.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from pathlib import PurePath
from typing import Any, TypeVar, Union

__all__ = ["from_json", "to_json"]

T = TypeVar("T")


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    return value


def _decode(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        (chosen,) = [option for option in options if option is not type(None)]
        return _decode(chosen, value)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(arg, v) for arg, v in zip(args, value, strict=True))
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: _decode(item, v) for k, v in value.items()}
    if origin is typing.Literal or kind is Any:
        return value
    if isinstance(kind, type) and issubclass(kind, PurePath):
        return kind(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{name: _decode(hints[name], v) for name, v in value.items() if name in known})
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(value)
    if kind is float:
        return float(value)
    return value


def to_json(record: object) -> str:
    return json.dumps(_encode(record), allow_nan=True)


def from_json(kind: type[T], text: str) -> T:
    rebuilt = _decode(kind, json.loads(text))
    if not isinstance(rebuilt, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(rebuilt).__name__}")
    return rebuilt
