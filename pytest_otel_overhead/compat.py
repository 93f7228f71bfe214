"""Differences between the supported versions of pytest, OpenTelemetry and pytest-benchmark.

Also the one check of which side of a pytest-xdist run a process is on (:func:`is_worker`), which
the session and the plugins share. Each difference is found once, by a feature check rather than
a version comparison, so code on a hot path pays nothing for it. Where a feature rests on a
private internal of a dependency that a newer release no longer has, the feature degrades and
:func:`degraded` says so in one line (once per process) instead of failing with a traceback.

Nothing here imports OpenTelemetry until a check that needs it runs, so the plugin's start-up
stays light when the session does not measure.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import pytest

__all__ = [
    "OverheadCompatWarning",
    "accepts",
    "degraded",
    "dependency_conflict",
    "distribution_version",
    "gauge_base",
    "histogram_takes_advisory",
    "is_placeholder_meter_provider",
    "is_worker",
    "meter_args",
    "meter_takes_attributes",
    "tracer_args",
    "tracer_takes_attributes",
    "verbosity",
]


class OverheadCompatWarning(pytest.PytestWarning):
    """A feature works only in part with the installed version of a dependency; the message says what is lost."""


_said: set[str] = set()


def degraded(message: str) -> None:
    """Say once per process that a feature is degraded, as a one-line pytest warning."""
    if message not in _said:
        _said.add(message)
        warnings.warn(OverheadCompatWarning(message), stacklevel=2)


def distribution_version(name: str) -> str:
    """The installed version of distribution ``name``, for messages (``"?"`` when unknown)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def accepts(function: Callable[..., Any], parameter: str) -> bool:
    """Whether ``function`` takes an argument named ``parameter`` (or any keyword)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - every OpenTelemetry method has a signature
        return False
    return parameter in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


# -- pytest --------------------------------------------------------------------------------------


def verbosity(config: pytest.Config) -> int:
    """pytest's verbosity level: ``Config.get_verbosity()`` (pytest 8+), or the ``-v`` count before it."""
    get_verbosity = getattr(config, "get_verbosity", None)
    if get_verbosity is not None:
        return int(get_verbosity())
    return int(config.getoption("verbose"))


def is_worker(config: pytest.Config) -> bool:
    """Whether this process is a pytest-xdist worker; xdist gives a worker's config ``workerinput``."""
    return hasattr(config, "workerinput")


# -- OpenTelemetry API ---------------------------------------------------------------------------

Scope = tuple[str, "str | None", "str | None", Any]
"""An instrumentation scope as ``get_tracer``/``get_meter`` take it: name, version, schema URL, attributes."""


@functools.cache
def tracer_takes_attributes() -> bool:
    """``TracerProvider.get_tracer`` takes ``attributes`` (API 1.26+; 1.25 takes three arguments)."""
    from opentelemetry import trace

    return accepts(trace.NoOpTracerProvider.get_tracer, "attributes")


@functools.cache
def meter_takes_attributes() -> bool:
    """``MeterProvider.get_meter`` takes ``attributes`` (newer than API 1.25)."""
    from opentelemetry import metrics

    return accepts(metrics.NoOpMeterProvider.get_meter, "attributes")


@functools.cache
def histogram_takes_advisory() -> bool:
    """``Meter.create_histogram`` takes bucket boundaries as advice (newer than API 1.25)."""
    from opentelemetry import metrics

    return accepts(metrics.NoOpMeter.create_histogram, "explicit_bucket_boundaries_advisory")


def tracer_args(scope: Scope) -> tuple[Any, ...]:
    """Positional arguments for this API's ``get_tracer``: without attributes where it takes none."""
    return scope if tracer_takes_attributes() else scope[:3]


def meter_args(scope: Scope) -> tuple[Any, ...]:
    """Positional arguments for this API's ``get_meter``: without attributes where it takes none."""
    return scope if meter_takes_attributes() else scope[:3]


def gauge_base() -> type:
    """The API's synchronous gauge class, which has no stable public name yet."""
    for owner, name in (
        ("opentelemetry.metrics", "Gauge"),
        ("opentelemetry.metrics", "_Gauge"),
        ("opentelemetry.metrics._internal.instrument", "Gauge"),
    ):
        try:
            found = getattr(importlib.import_module(owner), name, None)
        except ImportError:  # pragma: no cover - depends on the API's layout
            continue
        if isinstance(found, type):
            return found
    from opentelemetry import metrics

    # An API without any of them: gauges still route, but are no instance of the API's gauge.
    return metrics.Instrument  # pragma: no cover


@functools.cache
def _placeholder_meter_provider_class() -> type | None:
    try:
        module = importlib.import_module("opentelemetry.metrics._internal")
    except ImportError:  # pragma: no cover - depends on the API's layout
        return None
    found = getattr(module, "_ProxyMeterProvider", None)
    return found if isinstance(found, type) else None


def is_placeholder_meter_provider(provider: object) -> bool:
    """Whether ``provider`` is the API's stand-in that is the global MeterProvider until one is set.

    The API has no public name for it (the tracing API has ``ProxyTracerProvider``); where its
    private class has moved, the class name tells.
    """
    placeholder = _placeholder_meter_provider_class()
    if placeholder is not None:
        return isinstance(provider, placeholder)
    kind = type(provider)
    return kind.__module__.startswith("opentelemetry.metrics") and "Proxy" in kind.__name__


# -- OpenTelemetry instrumentation ---------------------------------------------------------------


def dependency_conflict(instrumentor: Any) -> str | None:
    """Why ``instrumentor`` cannot instrument the installed library, or ``None`` when it can.

    The instrumentor's own check is private (``_check_dependency_conflicts``) but may be overridden
    by an instrumentor with extra rules, so it is preferred; the public function is the fallback.
    """
    check = getattr(instrumentor, "_check_dependency_conflicts", None)
    if callable(check):
        conflict = check()
    else:
        from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
    if conflict is None:
        return None
    describe = getattr(conflict, "_format_message", None)
    return str(describe(type(instrumentor).__name__)) if callable(describe) else str(conflict)
