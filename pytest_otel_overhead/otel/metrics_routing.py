"""One global MeterProvider whose meters and instruments follow the arm being measured.

The metrics API behaves like the tracing API: the global MeterProvider can be set once per process;
meters and instruments created before that are proxies that bind to the real ones when it is set,
and keep them. Application code creates its instruments at import time, so the plugin installs a
single :class:`MeterRouter` (beside the tracer router) whose instruments delegate every call to the
instrument of the current arm: a no-op instrument in the baseline, an SDK instrument while the
instrumented arm runs.

Synchronous instruments (counter, up-down counter, histogram, gauge) resolve their delegate on first
use after a switch. Observable instruments have no calls to hook: their callbacks run when the SDK
collects, so each one is registered with every SDK MeterProvider the router switches to.

While :meth:`MeterRouter.counting` is on (the diagnostic round, never a timed block), the delegates
resolved for an SDK provider count the measurements made on them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackT, NoOpMeterProvider
from opentelemetry.util.types import Attributes

from pytest_otel_overhead.compat import gauge_base, histogram_takes_advisory, is_placeholder_meter_provider, meter_args

if TYPE_CHECKING:
    from opentelemetry.metrics import _Gauge as Gauge
else:  # the API's gauge has no stable public name: found by a feature check
    Gauge = gauge_base()

__all__ = ["MeasurementCount", "MeterRouter", "foreign_meter_provider", "install_meter_router"]

I = TypeVar("I")  # noqa: E741 - an instrument type
_MeterKey = tuple[str, "str | None", "str | None", Any]


@dataclass(frozen=True, eq=False)
class _Spec:
    """How to create one instrument in any MeterProvider."""

    meter: _MeterKey
    kind: str  # the Meter method, e.g. "create_counter"
    name: str
    unit: str
    description: str
    callbacks: tuple[CallbackT, ...] | None = None
    advisory: tuple[float, ...] | None = None

    @property
    def key(self) -> tuple[object, ...]:
        name, version, schema_url, attributes = self.meter
        scope = (name, version, schema_url, repr(sorted(attributes.items())) if attributes else None)
        return (*scope, self.kind, self.name, self.unit, self.description, self.advisory)

    def create(self, provider: metrics.MeterProvider) -> Any:
        meter = provider.get_meter(*meter_args(self.meter))
        method: Callable[..., Any] = getattr(meter, self.kind)
        if self.callbacks is not None:
            return method(self.name, list(self.callbacks), self.unit, self.description)
        if self.kind == "create_histogram" and histogram_takes_advisory():
            advisory = list(self.advisory) if self.advisory is not None else None
            return method(self.name, self.unit, self.description, explicit_bucket_boundaries_advisory=advisory)
        return method(self.name, self.unit, self.description)


@dataclass
class MeasurementCount:
    """Measurements made on synchronous instruments while counting; thread-safe."""

    measurements: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self) -> None:
        with self.lock:
            self.measurements += 1


class _Counted:
    """An SDK instrument whose every measurement is counted first (the diagnostic round only)."""

    __slots__ = ("_count", "_inner")

    def __init__(self, inner: Any, count: MeasurementCount) -> None:
        self._inner = inner
        self._count = count

    def add(self, *args: Any, **kwargs: Any) -> None:
        self._count.add()
        self._inner.add(*args, **kwargs)

    def record(self, *args: Any, **kwargs: Any) -> None:
        self._count.add()
        self._inner.record(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> None:
        self._count.add()
        self._inner.set(*args, **kwargs)


class MeterRouter(metrics.MeterProvider):
    """A MeterProvider whose instruments delegate to the provider of the current arm."""

    def __init__(self) -> None:
        self._idle: metrics.MeterProvider = NoOpMeterProvider()
        self._current: metrics.MeterProvider = self._idle
        self._generation = 0
        self._lock = threading.Lock()
        # Per provider, the instruments made in it: created once, so the SDK sees no duplicates.
        self._made: weakref.WeakKeyDictionary[metrics.MeterProvider, dict[tuple[object, ...], Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._observables: list[_Spec] = []
        self._count: MeasurementCount | None = None

    @property
    def active(self) -> metrics.MeterProvider:
        return self._current

    @property
    def idle(self) -> bool:
        return self._current is self._idle

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> metrics.Meter:
        return _RoutedMeter(self, (name, version, schema_url, attributes))

    def switch(self, provider: metrics.MeterProvider | None) -> None:
        """Route all instruments to ``provider`` (``None``: metrics off)."""
        with self._lock:
            target = self._idle if provider is None else provider
            if target is not self._idle:
                for spec in self._observables:
                    self._instrument_in(target, spec)
            self._current = target
            self._generation += 1

    def _instrument_in(self, provider: metrics.MeterProvider, spec: _Spec) -> Any:
        made = self._made.get(provider)
        if made is None:
            made = self._made[provider] = {}
        key = spec.key if spec.callbacks is None else (id(spec),)
        instrument = made.get(key)
        if instrument is None:
            instrument = made[key] = spec.create(provider)
        return instrument

    @contextmanager
    def counting(self) -> Iterator[MeasurementCount]:
        """Count the measurements made on instruments routed to an SDK provider meanwhile.

        Each switch makes instruments resolve their delegate again, so switch to the arm after
        entering and back before leaving: delegates resolved outside stay uncounted.
        """
        count = MeasurementCount()
        with self._lock:
            self._count = count
            self._generation += 1
        try:
            yield count
        finally:
            with self._lock:
                self._count = None
                self._generation += 1

    def _resolve(self, spec: _Spec) -> Any:
        with self._lock:
            instrument = self._instrument_in(self._current, spec)
            if self._count is not None and self._current is not self._idle:
                return _Counted(instrument, self._count)
            return instrument

    def _observe(self, spec: _Spec) -> None:
        with self._lock:
            self._observables.append(spec)
            if self._current is not self._idle:
                self._instrument_in(self._current, spec)


class _RoutedMeter(metrics.Meter):
    def __init__(self, router: MeterRouter, key: _MeterKey) -> None:
        super().__init__(key[0], version=key[1], schema_url=key[2])
        self._router = router
        self._key = key

    def _spec(self, kind: str, name: str, unit: str, description: str, **extra: Any) -> _Spec:
        return _Spec(self._key, kind, name, unit or "", description or "", **extra)

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics.Counter:
        return _RoutedCounter(self._router, self._spec("create_counter", name, unit, description))

    def create_up_down_counter(self, name: str, unit: str = "", description: str = "") -> metrics.UpDownCounter:
        return _RoutedUpDownCounter(self._router, self._spec("create_up_down_counter", name, unit, description))

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> metrics.Histogram:
        advisory = tuple(explicit_bucket_boundaries_advisory) if explicit_bucket_boundaries_advisory else None
        spec = self._spec("create_histogram", name, unit, description, advisory=advisory)
        return _RoutedHistogram(self._router, spec)

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> Gauge:
        return _RoutedGauge(self._router, self._spec("create_gauge", name, unit, description))

    def _observable(self, kind: str, name: str, callbacks: Sequence[CallbackT] | None, unit: str, desc: str) -> _Spec:
        spec = self._spec(kind, name, unit, desc, callbacks=tuple(callbacks or ()))
        self._router._observe(spec)
        return spec

    def create_observable_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableCounter:
        self._observable("create_observable_counter", name, callbacks, unit, description)
        return metrics.NoOpObservableCounter(name, callbacks, unit=unit, description=description)

    def create_observable_up_down_counter(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableUpDownCounter:
        self._observable("create_observable_up_down_counter", name, callbacks, unit, description)
        return metrics.NoOpObservableUpDownCounter(name, callbacks, unit=unit, description=description)

    def create_observable_gauge(
        self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "", description: str = ""
    ) -> metrics.ObservableGauge:
        self._observable("create_observable_gauge", name, callbacks, unit, description)
        return metrics.NoOpObservableGauge(name, callbacks, unit=unit, description=description)


class _Routed:
    """What the synchronous instruments share: the delegate lookup (once per switch, then cached) and the call."""

    _router: MeterRouter
    _spec: _Spec
    _generation: int
    _delegate: Any

    def __init__(self, router: MeterRouter, spec: _Spec) -> None:  # the API's Instrument.__init__ stores nothing
        self._router = router
        self._spec = spec
        self._generation = -1
        self._delegate = None

    def _target(self) -> Any:
        router = self._router
        if self._generation != router._generation:
            self._delegate = router._resolve(self._spec)
            self._generation = router._generation
        return self._delegate

    def _forward(self, method: str, amount: float, attributes: Attributes, context: Context | None) -> None:
        """Call the delegate's ``method`` (add, record, set) with what the instrument was given."""
        target = getattr(self._target(), method)
        if context is None:  # API 1.25's instruments take no context argument
            target(amount, attributes)
        else:
            target(amount, attributes, context)


class _RoutedCounter(_Routed, metrics.Counter):
    def add(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._forward("add", amount, attributes, context)


class _RoutedUpDownCounter(_Routed, metrics.UpDownCounter):
    def add(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._forward("add", amount, attributes, context)


class _RoutedHistogram(_Routed, metrics.Histogram):
    def record(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._forward("record", amount, attributes, context)


class _RoutedGauge(_Routed, Gauge):
    def set(self, amount: float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._forward("set", amount, attributes, context)


def foreign_meter_provider(router: MeterRouter | None = None) -> metrics.MeterProvider | None:
    """The global MeterProvider if one other than ``router`` was already set, else ``None``."""
    current = metrics.get_meter_provider()
    if current is router or is_placeholder_meter_provider(current):
        return None
    return current


def install_meter_router(router: MeterRouter) -> bool:
    """Set ``router`` as the global MeterProvider; ``False`` if another one holds the place."""
    if metrics.get_meter_provider() is router:
        return True
    if foreign_meter_provider(router) is not None:
        return False
    metrics.set_meter_provider(router)
    return metrics.get_meter_provider() is router
