"""Where a setting came from: the kind of layer as a typed value, with the text that names the place.

A :class:`Source` is the text users read in errors and reports (``"marker on t.py::test_x"``,
``"--otel-overhead-budget"``, ``"$OTEL_BSP_SCHEDULE_DELAY"``), so it prints, compares and serialises
as that text; code that acts on the kind of place asks :attr:`Source.kind`. The plugin's own layers
make typed sources; text that arrives without a kind (a saved run, a layer built by a program) is
typed once, by :func:`as_source`.
"""

from __future__ import annotations

import enum

__all__ = ["DEFAULT_SOURCE", "Source", "SourceKind", "as_source"]


class SourceKind(enum.Enum):
    """The kind of layer a setting came from."""

    DEFAULT = "default"
    MARKER = "marker"
    COMMAND_LINE = "command line"
    INI = "ini"
    ENVIRONMENT = "environment"
    PROFILE = "profile"
    PROJECT_FILE = "project file"  # a file the plugin finds in the root folder (the calibration)
    OTHER = "other"  # a layer built by a program: a sweep, a tool built on the plugin


class Source(str):
    """The text naming where a setting came from, carrying the kind of that place."""

    kind: SourceKind

    def __new__(cls, text: str, kind: SourceKind) -> Source:
        source = super().__new__(cls, text)
        source.kind = kind
        return source

    def __reduce__(self) -> tuple[type[Source], tuple[str, SourceKind]]:
        return Source, (str(self), self.kind)


DEFAULT_SOURCE = Source("default", SourceKind.DEFAULT)

# How the plugin's own layers write their sources, for text that arrives without its kind.
_PREFIXES = (
    ("marker on ", SourceKind.MARKER),
    ("--", SourceKind.COMMAND_LINE),
    ("ini ", SourceKind.INI),
    ("$", SourceKind.ENVIRONMENT),
    ("profile ", SourceKind.PROFILE),
)


def as_source(text: str) -> Source:
    """``text`` as a typed source: a :class:`Source` as it is, plain text by the way the layers write it."""
    if isinstance(text, Source):
        return text
    if text == DEFAULT_SOURCE:
        return DEFAULT_SOURCE
    kind = next((kind for prefix, kind in _PREFIXES if text.startswith(prefix)), SourceKind.OTHER)
    return Source(text, kind)
