"""The settings and budgets of a measured test read back from documents, as ``MeasureSettings.as_dict`` writes them.

The settings records live below the results (``settings.layers``) and write themselves; what they
wrote is read here, strictly for the fields reports and comparisons use, and field by field by type
for the rest, so a settings field of a simple type carries over with no code here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from pytest_otel_overhead.settings.layers import MeasureSettings, PipelineSettings
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire.checks import (
    LARGEST_COUNT,
    Malformed,
    describe,
    optional,
    read_amount,
    read_count,
    read_entries,
    read_field,
    read_number,
    read_object,
    read_text,
    type_hints,
)

__all__ = ["read_budget", "read_settings"]


def read_budget(value: Any) -> Budget | None:
    if value is None:
        return None
    data = read_object(value)
    kind = read_field(data, "kind", read_text)
    if kind not in ("relative", "absolute"):
        raise Malformed(f"{describe(kind)} is not a budget kind (relative or absolute)", ("kind",))
    amount = read_field(data, "value", read_number)
    if not amount > 0:
        raise Malformed(f"{describe(amount)} is not a budget (above 0)", ("value",))
    return Budget(kind, amount)  # type: ignore[arg-type]


def _accepts(hint: Any, value: Any) -> tuple[bool, Any]:
    """Whether a JSON value fits a simple field type (scalars, optional, tuples of them), and the value to pass.

    Numbers fit only when finite, and whole numbers only up to ``LARGEST_COUNT`` either way.
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            fits, converted = _accepts(option, value)
            if fits:
                return True, converted
        return False, None
    if hint is type(None):
        return value is None, None
    if hint in (float, str):
        if value is None:
            return False, None
        try:
            return True, read_number(value) if hint is float else read_text(value)
        except Malformed:
            return False, None
    if hint is int:
        fits = type(value) is int and -LARGEST_COUNT <= value <= LARGEST_COUNT
        return fits, value if fits else None
    if hint is bool:
        return type(value) is bool, value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            items = [_accepts(args[0], v) for v in value]
            if all(fits for fits, _ in items):
                return True, tuple(v for _, v in items)
    return False, None


def _extra_fields(cls: type, data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Fields beyond the ones read explicitly, where the document holds them under the field's own name.

    A field of a simple type carries over, anything else (or a value that does not fit) keeps its
    default: reports then show less about it, nothing breaks.
    """
    try:
        hints = type_hints(cls)
    except Exception:  # a hint that cannot be resolved here: keep the defaults
        return {}
    extra = {}
    for field in dataclasses.fields(cls):
        if field.name not in known and field.name in data:
            fits, value = _accepts(hints.get(field.name), data[field.name])
            if fits:
                extra[field.name] = value
    return extra


def _pipeline(data: dict[str, Any]) -> PipelineSettings:
    core: dict[str, Any] = {
        "sampler": read_field(data, "sampler", read_text),
        "sample_rate": read_field(data, "sample_rate", optional(read_number), required=False),
        "processor": read_field(data, "processor", read_text),
        "batch_size": read_field(data, "batch_size", read_count),
        "schedule_delay_ms": read_field(data, "schedule_delay_ms", read_amount),
        "queue_size": read_field(data, "queue_size", read_count),
        "export_timeout_ms": read_field(data, "export_timeout_ms", read_amount),
        "exporter": read_field(data, "exporter", read_text),
    }
    return PipelineSettings(**core, **_extra_fields(PipelineSettings, data, frozenset(core)))


def read_settings(value: Any) -> MeasureSettings:
    """The inverse of ``MeasureSettings.as_dict``: the pipeline's fields and the measurement's, side by side."""
    data = read_object(value)
    budgets = read_field(data, "budgets", lambda v: read_entries(v, read_budget))
    settings: dict[str, Any] = {
        "pipeline": _pipeline(data),
        "budgets": tuple((name, budget) for name, budget in budgets if budget is not None),
        "metric": read_field(data, "metric", read_text),
        "max_time": read_field(data, "max_time_s", read_amount),
        "inconclusive": read_field(data, "inconclusive", read_text),
        "sources": tuple(
            read_field(data, "sources", lambda v: read_entries(v if v is not None else {}, read_text), required=False)
        ),
    }
    return MeasureSettings(**settings, **_extra_fields(MeasureSettings, data, frozenset(settings)))
