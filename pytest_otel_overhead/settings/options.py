"""Session options: what a session does (measure, save, compare, report, advise), read once.

Measurement settings (budget, sampler, batch size...) go through ``settings.layers``; the options
here say what the session does around them. They are read once, in ``pytest_configure``, into a
frozen :class:`SessionOptions` kept in ``config.stash``; every module asks :func:`session_options`.
Both records here are light classes rather than dataclasses, frozen all the same: every pytest run
defines them, and a dataclass costs a millisecond to define.

A command-line value wins over its ini twin. A path from the command line is relative to the folder
pytest was started in; a path from the ini file to the ini file's folder (the root folder without
one). Values that need parsing keep where they came from (:class:`Given`), so that an error names
the flag or ini key. Reading here is cheap and imports nothing of the measuring.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import pytest

__all__ = ["Given", "SessionOptions", "ini_folder", "option_or_ini", "read_options", "session_options"]

T = TypeVar("T")


def _frozen(record: object, name: str, value: object = None) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a {type(record).__name__}")


class Given(Generic[T]):
    """A value and where it came from: ``"--otel-overhead-x"`` or ``"ini otel_overhead_x"``."""

    __slots__ = ("source", "value")

    value: T
    source: str

    def __init__(self, value: T, source: str) -> None:
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "source", source)

    __setattr__ = _frozen
    __delattr__ = _frozen

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Given) and (self.value, self.source) == (other.value, other.source)

    def __hash__(self) -> int:
        return hash((self.value, self.source))

    def __repr__(self) -> str:
        return f"Given(value={self.value!r}, source={self.source!r})"

    def __reduce__(self) -> tuple[type[Given[T]], tuple[T, str]]:
        return Given, (self.value, self.source)

    @property
    def on_command_line(self) -> bool:
        return self.source.startswith("--")


class SessionOptions(NamedTuple):
    """The session's options, with the command line's and the ini file's values merged."""

    enabled: bool = False  # --otel-overhead / otel_overhead; an advice mode implies it (see `measuring`)
    json: Path | None = None
    child: str | None = None  # internal: the spec file of a process counting instructions under valgrind
    # Saving and comparing runs, CI reports (history/tracking.py).
    save: str | None = None  # "" when --otel-overhead-save was given without a name
    autosave: bool = False
    storage: Path | None = None
    compare: Given[str] | None = None
    compare_fail: Given[tuple[str, ...]] | None = None
    min_processes: Given[str] | None = None
    markdown: Path | None = None
    html: Path | None = None
    # Advice modes (advice/plugin.py).
    sweep: Given[tuple[str, ...]] | None = None
    sweep_chart: Path | None = None
    tune: bool = False
    tune_time: Given[str] | None = None
    explain: bool = False
    xdist_workers: bool = False  # pytest-xdist's -n asks for worker processes

    def __setattr__(self, name: str, value: object) -> None:
        _frozen(self, name, value)

    def __delattr__(self, name: str) -> None:
        _frozen(self, name)

    @property
    def advice(self) -> bool:
        """Any advice mode asked for."""
        return self.sweep is not None or self.tune or self.explain

    @property
    def measuring(self) -> bool:
        return self.enabled or self.advice


def _unset(value: object) -> bool:
    return value is None or value == "" or value == []


def option_or_ini(config: pytest.Config, name: str) -> Given[Any] | None:
    """The option ``name`` from the command line, else from the ini file, else None (with its source)."""
    value = config.getoption(name)
    if not _unset(value):
        return Given(value, "--" + name.replace("_", "-"))
    value = config.getini(name)
    if not _unset(value):
        return Given(value, f"ini {name}")
    return None


def ini_folder(config: pytest.Config) -> Path:
    """What paths in the ini file are relative to."""
    return config.inipath.parent if config.inipath else config.rootpath


def _path(config: pytest.Config, name: str) -> Path | None:
    given = option_or_ini(config, name)
    if given is None:
        return None
    base = Path(config.invocation_params.dir) if given.on_command_line else ini_folder(config)
    return base / str(given.value)


def _flag(config: pytest.Config, name: str) -> bool:
    given = option_or_ini(config, name)
    return given is not None and bool(given.value)


def _text(config: pytest.Config, name: str) -> Given[str] | None:
    given = option_or_ini(config, name)
    return None if given is None else Given(str(given.value), given.source)


def _texts(config: pytest.Config, name: str) -> Given[tuple[str, ...]] | None:
    given = option_or_ini(config, name)
    if given is None:
        return None
    values = (given.value,) if isinstance(given.value, str) else tuple(str(v) for v in given.value)
    return Given(values, given.source)


def read_options(config: pytest.Config) -> SessionOptions:
    """Read every session option from the command line and the ini file."""
    chart = config.getoption("otel_overhead_sweep_chart")
    return SessionOptions(
        enabled=_flag(config, "otel_overhead"),
        json=_path(config, "otel_overhead_json"),
        child=config.getoption("otel_overhead_child") or None,
        save=config.getoption("otel_overhead_save"),
        autosave=_flag(config, "otel_overhead_autosave"),
        storage=_path(config, "otel_overhead_storage"),
        compare=_text(config, "otel_overhead_compare"),
        compare_fail=_texts(config, "otel_overhead_compare_fail"),
        min_processes=_text(config, "otel_overhead_min_processes"),
        markdown=_path(config, "otel_overhead_markdown"),
        html=_path(config, "otel_overhead_html"),
        sweep=_texts(config, "otel_overhead_sweep"),
        sweep_chart=Path(config.invocation_params.dir) / chart if chart else None,
        tune=_flag(config, "otel_overhead_tune"),
        tune_time=_text(config, "otel_overhead_tune_time"),
        explain=_flag(config, "otel_overhead_explain"),
        xdist_workers=bool(getattr(config.option, "numprocesses", None)),
    )


_key = pytest.StashKey[SessionOptions]()


def session_options(config: pytest.Config) -> SessionOptions:
    """The session's options: read on the first call (in ``pytest_configure``), then kept in the stash."""
    options = config.stash.get(_key, None)
    if options is None:
        options = config.stash[_key] = read_options(config)
    return options
