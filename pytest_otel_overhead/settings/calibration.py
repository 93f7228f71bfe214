"""The calibration file: a between-process term measured on the user's own tests and runner.

``python -m pytest_otel_overhead calibrate`` writes it; every measurement then counts its term in
place of the built-in prior (``stats.process_term.BUILT_IN_TERM``). The plugin finds it as
``otel-overhead-calibration.json`` in the root folder, or where the ``calibration`` setting says
(``--otel-overhead-calibration``, ini ``otel_overhead_calibration``, ``$OTEL_OVERHEAD_CALIBRATION``;
a relative path is taken from the folder pytest runs in). A file that cannot be read or does not
hold a calibration stops the run with one line naming the file and where its name came from.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.origin import Source, SourceKind
from pytest_otel_overhead.stats.process_term import ProcessTerm, TermSource
from pytest_otel_overhead.units import SettingsError

__all__ = ["CALIBRATION_FILE", "FORMAT", "LARGEST_TERM", "Calibration", "project_layer", "read_calibration"]

CALIBRATION_FILE = "otel-overhead-calibration.json"
"""The file's name in the root folder, where the plugin looks for it when no setting names one."""
FORMAT = "pytest-otel-overhead calibration 1"
_TERMS = ("tau", "slope", "df", "load")
_OPTIONAL_TERMS = ("load_share",)
"""Terms a file written before they were measured lacks: the record's default stands for them."""
LARGEST_TERM = 1.0
"""No term above a log ratio of 1 (a factor of e between processes) is a calibration of this tool."""


@dataclass(frozen=True)
class Calibration:
    """The term and what it was measured on (tests, processes, time, machine), as the file holds them."""

    term: ProcessTerm
    measured: dict[str, Any] = field(default_factory=dict)
    """What the calibration ran: tests, processes per test, seconds, CPU model, Python, date."""

    def to_json(self) -> str:
        terms = {name: getattr(self.term, name) for name in _TERMS + _OPTIONAL_TERMS}
        return json.dumps({"format": FORMAT, **terms, "measured": self.measured}, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path, source: str) -> Calibration:
        """The calibration in ``path``; a ``SettingsError`` naming the file and ``source`` when it holds none."""
        where = f"{source}: {path}"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise SettingsError(f"{where}: cannot read the calibration file ({error.strerror or error})") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise SettingsError(f"{where}: not a JSON calibration file ({error})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SettingsError(
                f"{where}: not a calibration file of this plugin (expected format {FORMAT!r}); "
                "write it with `python -m pytest_otel_overhead calibrate`"
            )
        values = {name: _term(document, name, where) for name in _TERMS}
        values |= {name: _term(document, name, where) for name in _OPTIONAL_TERMS if name in document}
        measured = document.get("measured", {})
        if not isinstance(measured, dict):
            raise SettingsError(f"{where}: 'measured' is not an object")
        return cls(ProcessTerm(**values, source=TermSource.CALIBRATED), measured)


def _term(document: dict[str, Any], name: str, where: str) -> float:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SettingsError(f"{where}: {name!r} is {value!r}, not a number")
    if name == "df" and value < 1:
        raise SettingsError(f"{where}: 'df' is {value!r}; degrees of freedom are at least 1")
    if name != "df" and not 0 <= value <= LARGEST_TERM:
        scale = f"a term on the log-ratio scale lies in [0, {LARGEST_TERM:g}]"
        raise SettingsError(f"{where}: {name!r} is {value!r}; {scale}")
    return float(value)


def read_calibration(value: object, source: str) -> ProcessTerm:
    """The ``calibration`` setting's parser: the term in the file the value names."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise SettingsError(f"{source}: {value!r} is not a path to a calibration file")
    return Calibration.read(Path(str(value).strip()).expanduser(), source).term


def project_layer(root: Path) -> Layer:
    """The calibration file in the root folder, when there is one, as the lowest layer of settings."""
    path = root / CALIBRATION_FILE
    if not path.is_file():
        return Layer({})
    source = Source(f"{CALIBRATION_FILE} in the root folder", SourceKind.PROJECT_FILE)
    return Layer({"calibration": (Calibration.read(path, str(source)).term, source)})
