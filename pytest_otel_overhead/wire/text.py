"""``TextEnum``: an enum whose members are their text, in print, in f-strings and in JSON."""

from __future__ import annotations

import enum

__all__ = ["TextEnum"]


class TextEnum(str, enum.Enum):
    """A member prints and formats as its value (``PASS``, not ``Verdict.PASS``), and, being a ``str``,
    compares with and serialises as it too. ``enum.StrEnum`` does this from Python 3.11."""

    def __str__(self) -> str:
        return str(self.value)
