"""One global TracerProvider whose tracers follow the arm being measured.

OpenTelemetry lets a process set its global TracerProvider once, and tracers that application
modules obtained at import time resolve to that provider on first use and keep what they got.
So the plugin installs a single :class:`ArmRouter` for the session; the tracers it hands out
delegate every call to the tracer of the current arm: a no-op tracer in the baseline (and whenever
nothing is being measured), an SDK tracer while the instrumented arm runs.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider

from pytest_otel_overhead.compat import tracer_args
from pytest_otel_overhead.otel.foreign import track_provider_origins
from pytest_otel_overhead.otel.metrics_routing import MeterRouter, foreign_meter_provider, install_meter_router
from pytest_otel_overhead.otel.setters import provider_setting_lines

__all__ = ["ArmExtras", "ArmRouter", "RouterInstallError", "attach_extras", "install_router"]

F = TypeVar("F", bound=Callable[..., Any])
_TracerKey = tuple[str, "str | None", "str | None", Any]


class RouterInstallError(RuntimeError):
    """Another global TracerProvider was set before the plugin could install its own."""


class ArmExtras(Protocol):
    """What an instrumented arm brings besides its TracerProvider (see :func:`attach_extras`)."""

    @property
    def meter_provider(self) -> metrics.MeterProvider | None: ...

    def enter(self, router: ArmRouter) -> None:
        """The arm starts: e.g. instrument libraries with the router's providers."""

    def leave(self, router: ArmRouter) -> None:
        """The arm ends: undo what ``enter`` did."""


# Keyed weakly by TracerProvider: the engine switches arms by TracerProvider alone.
_extras: weakref.WeakKeyDictionary[trace.TracerProvider, ArmExtras] = weakref.WeakKeyDictionary()


def attach_extras(provider: trace.TracerProvider, extras: ArmExtras) -> None:
    """Switching to ``provider`` also routes meters to its MeterProvider and enters ``extras``."""
    _extras[provider] = extras


class ArmRouter(trace.TracerProvider):
    """A TracerProvider whose tracers delegate to the provider of the current arm."""

    def __init__(self) -> None:
        self._idle: trace.TracerProvider = NoOpTracerProvider()
        self._current: trace.TracerProvider = self._idle
        self._generation = 0
        self._lock = threading.Lock()
        self.meters = MeterRouter()  # meters and instruments follow the same arm

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def active(self) -> trace.TracerProvider:
        return self._current

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> trace.Tracer:
        return _RoutedTracer(self, (instrumenting_module_name, instrumenting_library_version, schema_url, attributes))

    def switch(self, provider: trace.TracerProvider | None) -> None:
        """Route all tracers to ``provider`` (``None``: telemetry off), and meters with them."""
        with self._lock:
            previous = self._current
            self._current = self._idle if provider is None else provider
            self._generation += 1
        if previous is self._current:
            return
        leaving, entering = _extras.get(previous), _extras.get(self._current)
        if leaving is not None:
            leaving.leave(self)
        self.meters.switch(entering.meter_provider if entering is not None else None)
        if entering is not None:
            entering.enter(self)

    @contextmanager
    def routed_to(self, provider: trace.TracerProvider | None) -> Iterator[None]:
        previous = self._current
        self.switch(provider)
        try:
            yield
        finally:
            self.switch(None if previous is self._idle else previous)

    @property
    def idle(self) -> bool:
        return self._current is self._idle


_MAX_CACHED_PROVIDERS = 4
"""Delegates a routed tracer keeps: the idle provider, the arm's, and a diagnostic one fit."""


class _RoutedTracer(trace.Tracer):
    """A tracer that follows the router's current provider, resolving each provider's tracer once.

    Resolving costs tens of µs on the SDK (scope objects, a warnings filter, a lock), and the
    engine switches arms before every block, so delegates are cached per provider. The cache is
    weak: a provider dropped after its test takes its delegate with it.
    """

    __slots__ = ("_args", "_delegate", "_delegates", "_generation", "_router")

    def __init__(self, router: ArmRouter, key: _TracerKey) -> None:
        self._router = router
        self._args = tracer_args(key)  # what this API's get_tracer takes, worked out once
        self._generation = -1
        self._delegate: trace.Tracer = trace.NoOpTracer()
        # Made on the first switch after first use, so tracers got per request do not pay for it.
        self._delegates: weakref.WeakKeyDictionary[trace.TracerProvider, trace.Tracer] | None = None

    def _tracer(self) -> trace.Tracer:
        router = self._router
        generation = router._generation
        if self._generation != generation:
            # Generation before provider: a switch in between leaves the generation stale, so the
            # next call resolves again instead of keeping a delegate of the previous arm.
            self._delegate = self._resolve(router._current)
            self._generation = generation
        return self._delegate

    def _resolve(self, provider: trace.TracerProvider) -> trace.Tracer:
        delegates = self._delegates
        if delegates is None:
            if self._generation == -1:  # first use: code calling get_tracer() per request never switches
                return provider.get_tracer(*self._args)
            delegates = self._delegates = weakref.WeakKeyDictionary()
        try:
            cached = delegates.get(provider)
        except TypeError:  # a provider that cannot be weakly referenced is resolved every time
            return provider.get_tracer(*self._args)
        if cached is not None:
            return cached
        delegate = provider.get_tracer(*self._args)
        # Bounded too, in case some provider's tracers hold their provider (the key) alive.
        if len(delegates) >= _MAX_CACHED_PROVIDERS:
            delegates.clear()
        delegates[provider] = delegate
        return delegate

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        return _RoutedSpanContext(self, args, kwargs)


class _RoutedSpanContext:
    """``start_as_current_span`` as context manager and decorator, resolved at each entry.

    A decorator applied at import time must follow the arm at call time, so the delegate's
    context manager is created on ``__enter__``, not when the decorator is built.
    """

    __slots__ = ("_args", "_inner", "_kwargs", "_tracer")

    def __init__(self, tracer: _RoutedTracer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._tracer = tracer
        self._args = args
        self._kwargs = kwargs
        self._inner: Any = None

    def __enter__(self) -> trace.Span:
        self._inner = self._tracer._tracer().start_as_current_span(*self._args, **self._kwargs)
        return self._inner.__enter__()  # type: ignore[no-any-return]

    def __exit__(self, *exc_info: Any) -> Any:
        return self._inner.__exit__(*exc_info)

    def __call__(self, func: F) -> F:
        tracer, args, kwargs = self._tracer, self._args, self._kwargs

        if inspect.iscoroutinefunction(func):
            # As OpenTelemetry's own decorator does: the span must stay open until the coroutine
            # finishes, not end when the coroutine object is created.
            @functools.wraps(func)
            async def async_wrapper(*a: Any, **kw: Any) -> Any:
                with _RoutedSpanContext(tracer, args, kwargs):
                    return await func(*a, **kw)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            with _RoutedSpanContext(tracer, args, kwargs):
                return func(*a, **kw)

        return wrapper  # type: ignore[return-value]


_router: ArmRouter | None = None


def _set_where(kind: str) -> str:
    """Where the project's code sets that provider, as ``"(at conftest.py:12) "``, or nothing when unknown."""
    lines = provider_setting_lines(kind)
    return f"(at {', '.join(lines)}) " if lines else ""


def install_router() -> ArmRouter:
    """Install the session's router as the global TracerProvider (once per process).

    From then on, where each SDK TracerProvider is created is remembered, so that a measurement
    whose spans go through a provider of their own can say where it was made (``otel.foreign``).
    """
    global _router
    current = trace.get_tracer_provider()
    if _router is not None and current is _router:
        return _router
    if not isinstance(current, ProxyTracerProvider):
        raise RouterInstallError(
            f"a global TracerProvider ({type(current).__module__}.{type(current).__qualname__}) was set "
            f"{_set_where('tracer')}before --otel-overhead could install its own; OpenTelemetry allows one "
            "per process, so skip setting it when --otel-overhead is given (e.g. in conftest.py: "
            "`if not config.getoption('otel_overhead'): trace.set_tracer_provider(...)`)"
        )
    foreign_meters = foreign_meter_provider()
    if foreign_meters is not None:
        raise RouterInstallError(
            f"a global MeterProvider ({type(foreign_meters).__module__}.{type(foreign_meters).__qualname__}) "
            f"was set {_set_where('meter')}before --otel-overhead could install its own; OpenTelemetry allows one "
            "per process, so skip setting it when --otel-overhead is given"
        )
    router = ArmRouter()
    trace.set_tracer_provider(router)
    if trace.get_tracer_provider() is not router:
        raise RouterInstallError("the global TracerProvider could not be installed")
    if not install_meter_router(router.meters):
        raise RouterInstallError("the global MeterProvider could not be installed")
    _router = router
    track_provider_origins()
    return router
