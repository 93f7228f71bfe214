"""Layers of settings from pytest's own sources: the command line, the ini file and the test's marker.

Parsing them needs nothing of the measuring, so every pytest run can check them, with or without
``--otel-overhead`` (the environment's layer is :func:`~pytest_otel_overhead.settings.layers.env_layer`,
read only when measuring).
"""

from __future__ import annotations

import pytest

from pytest_otel_overhead.settings.flags import MARKER, cli_settings, ini_settings, option_dest, option_flag
from pytest_otel_overhead.settings.keys import check_keys
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.origin import Source, SourceKind
from pytest_otel_overhead.units import SettingsError

__all__ = ["MARKER", "cli_layer", "ini_layer", "marker_layer", "option_name"]


def option_name(key: str) -> Source:
    """The command-line flag of setting ``key`` as a source: ``batch_size`` → ``--otel-overhead-batch-size``."""
    return Source(option_flag(key), SourceKind.COMMAND_LINE)


def cli_layer(config: pytest.Config, *, imports: bool = True) -> Layer:
    """Settings from the command line; ``imports`` as for :meth:`Layer.parse`."""
    return Layer.parse(cli_settings(config), option_name, imports=imports)


def ini_layer(config: pytest.Config, *, imports: bool = True) -> Layer:
    """Settings from the ini file; ``imports`` as for :meth:`Layer.parse`."""
    where = f" in {config.inipath.name}" if config.inipath else ""
    return Layer.parse(
        ini_settings(config), lambda k: Source(f"ini {option_dest(k)}{where}", SourceKind.INI), imports=imports
    )


def marker_layer(item: pytest.Item, *, imports: bool = True) -> Layer:
    """Marker kwargs of the test (the closest marker wins per key, as pytest orders them);
    ``imports`` as for :meth:`Layer.parse`."""
    source = Source(f"marker on {item.nodeid}", SourceKind.MARKER)
    merged: dict[str, object] = {}
    for mark in item.iter_markers(MARKER):
        if mark.args:
            raise SettingsError(f"{source}: takes keyword arguments only, e.g. otel_overhead(budget='5%')")
        check_keys(mark.kwargs, source)
        for key, value in mark.kwargs.items():
            merged.setdefault(key, value)
    return Layer.parse(merged, lambda key: source, name_keys=True, imports=imports)
