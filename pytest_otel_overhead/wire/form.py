"""How a record's field appears in documents, declared where the field is: ``field(metadata=form(key="..."))``.

Only the declaration lives here, with no imports: the settings records declare their forms and
every pytest run loads them, measuring or not. What each option means, and the writing and reading
they steer, is :class:`~pytest_otel_overhead.wire.fields.Form`'s.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FORM", "form"]

FORM = "pytest_otel_overhead.document"
"""The key of a field's form in its dataclass metadata."""


def form(**how: Any) -> dict[str, dict[str, Any]]:
    """Dataclass field metadata: the options of :class:`~pytest_otel_overhead.wire.fields.Form`, by name."""
    return {FORM: how}
