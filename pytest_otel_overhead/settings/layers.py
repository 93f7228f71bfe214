"""Layers of settings: values parsed from one source each, keeping where each came from.

A layer holds what one place says (a marker, the command line, the ini file, the environment, a
profile), every value parsed where it is read and paired with its
:class:`~pytest_otel_overhead.settings.origin.Source`, so every error (and the JSON report) can say
where a value came from. Merging layers is :mod:`~pytest_otel_overhead.settings.merge`'s job; the
keys are :mod:`~pytest_otel_overhead.settings.keys`', the records
:mod:`~pytest_otel_overhead.settings.records`'. Import each name from the module that defines it.

pytest imports this module in every run, measuring or not, so it loads neither the records nor
the merge rules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from pytest_otel_overhead.settings.keys import KEYS, SAMPLER_ARG_KEYS
from pytest_otel_overhead.settings.origin import Source, SourceKind, as_source
from pytest_otel_overhead.units import SettingsError

__all__ = ["SAMPLER_ARG_SOURCE", "Layer", "env_layer", "profile_layer"]

SAMPLER_ARG_SOURCE = Source("$OTEL_TRACES_SAMPLER_ARG", SourceKind.ENVIRONMENT)
"""The variable that parameterises the sampler ``$OTEL_TRACES_SAMPLER`` names."""


class Layer(NamedTuple):
    """Parsed values from one source level; each value keeps the place it came from."""

    values: Mapping[str, tuple[Any, str]]

    @classmethod
    def parse(
        cls,
        raw: Mapping[str, object],
        source_of: Callable[[str], str],
        *,
        name_keys: bool = False,
        imports: bool = True,
    ) -> Layer:
        """Parse every value; ``name_keys`` for a source shared by all keys (a marker's names the
        test), whose errors must then say which argument, batch_size or queue_size, is bad.
        Without ``imports``, what a value names is checked as written, not imported (see :class:`Key`)."""
        values = {}
        for key, value in raw.items():
            source = as_source(source_of(key))
            values[key] = (_parse_value(key, value, source, name_key=name_keys, imports=imports), source)
        return cls(values)


def _parse_value(key: str, value: object, source: str, *, name_key: bool, imports: bool) -> Any:
    setting = KEYS[key]
    parse = setting.parse if imports or setting.check is None else setting.check
    try:
        return parse(value, source)
    except SettingsError as error:
        message = str(error)
        said = message[len(source) :] if message.startswith(source) else message
        if not name_key or re.search(rf"\b{key}\b", said):  # "'five' is not a budget" names budget already
            raise
        raise SettingsError(f"{message} (argument {key})") from None


def env_layer(environ: Mapping[str, str] | None = None) -> Layer:
    """Settings from OTel's own and the tuning guide's environment variables.

    Unlike the SDK, which falls back to defaults on a bad value, a bad value here is an error
    naming the variable. Two variables that set one setting differently are an error too.
    """
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        raise SettingsError(
            "$OTEL_SDK_DISABLED=true would make the instrumented arm record nothing; unset it to measure overhead"
        )
    values: dict[str, tuple[Any, str]] = {}
    arg_key = SAMPLER_ARG_KEYS.get(environ.get("OTEL_TRACES_SAMPLER", "").strip().lower())
    for key in KEYS.values():
        for var in key.env:
            raw = environ.get(var)
            if raw is None or raw.strip() == "" or (arg_key is not None and var == "OTEL_TRACES_SAMPLER_ARG"):
                continue
            source = Source(f"${var}", SourceKind.ENVIRONMENT)
            parsed = key.parse(raw, source)
            if key.name in values and values[key.name][0] != parsed:
                other = values[key.name][1]
                raise SettingsError(f"{source}={raw} disagrees with {other}; set one of them")
            values.setdefault(key.name, (parsed, source))
    raw_arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "")
    if arg_key is not None and raw_arg.strip():
        values[arg_key] = (KEYS[arg_key].parse(raw_arg, SAMPLER_ARG_SOURCE), SAMPLER_ARG_SOURCE)
    return Layer(values)


def profile_layer(name: str, named_by: str) -> Layer:
    """The values of profile ``name`` as a layer, each naming the profile and where it was chosen."""
    from pytest_otel_overhead.settings.profiles import PROFILES

    source = Source(f"profile {name} ({named_by})", SourceKind.PROFILE)
    return Layer.parse(PROFILES[name].values, lambda key: source)
