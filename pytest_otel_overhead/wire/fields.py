"""What a record declares about its fields' document form: ``Form``, read once per field, and ``Derived``.

A field declares its form with :func:`~pytest_otel_overhead.wire.form.form` (which imports nothing, so that
every pytest run can load the records that declare one); the options it names are :class:`Form`'s, which
:mod:`~pytest_otel_overhead.wire.document` writes and reads by, and the schema page describes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_otel_overhead.wire.form import FORM

__all__ = ["PLAIN", "Derived", "Form", "form_of"]


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
    recurs: bool = False
    """The same value recurs across records (a suite's settings, in each test): read once per distinct
    document, and the record (frozen) shared."""

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


_FORMS: dict[dataclasses.Field[Any], Form] = {}


def form_of(field: dataclasses.Field[Any]) -> Form:
    """The field's form, made once per field: reading a merged run asks it a million times."""
    spec = _FORMS.get(field)
    if spec is None:
        how = field.metadata.get(FORM)
        spec = _FORMS[field] = PLAIN if how is None else Form(**how)
    return spec
