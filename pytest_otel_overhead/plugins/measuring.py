"""A measuring session's start and its hooks per test.

The entry point (``plugin.py``) is loaded by every pytest run; what only a measuring session needs
is here, imported in ``pytest_configure`` when the session measures: the strategy for each mode,
the session built and the plugins that go with it registered, and the hooks that settle each
marked test's settings and measure its body or its fixture calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from pytest_otel_overhead.plugins.marked import fail_on_settings_error
from pytest_otel_overhead.settings.flags import to_measure

if TYPE_CHECKING:
    from pytest_otel_overhead.engine.strategy import Strategies
    from pytest_otel_overhead.results.records import TestResult
    from pytest_otel_overhead.session import OverheadSession
    from pytest_otel_overhead.settings.options import SessionOptions
    from pytest_otel_overhead.settings.records import MeasureSettings

__all__ = ["MeasuredTests", "measure_call", "start_child", "start_measuring"]

_settings_key: pytest.StashKey[MeasureSettings] = pytest.StashKey()
_calls_key: pytest.StashKey[int] = pytest.StashKey()


def _strategies(config: pytest.Config) -> Strategies:
    """Which strategy measures each mode in this session: what the session is told it measures, and by whom."""
    from pytest_otel_overhead.engine.replica_child import replica_child
    from pytest_otel_overhead.engine.strategy import ReplicaShare, Strategies, TimeMode
    from pytest_otel_overhead.instructions.strategy import CountedInstructions
    from pytest_otel_overhead.plugins.xdist import measuring_alone

    replica = replica_child(config)
    if replica is not None:  # this process was started to measure one share of a measurement over processes
        return Strategies.each(ReplicaShare(replica))
    # Time measurements run alone on the host under xdist; instruction counts do not depend on contention.
    time_mode = TimeMode(alone=functools.partial(measuring_alone, config))
    return Strategies({"time": time_mode, "instructions": CountedInstructions()})


def start_child(config: pytest.Config, spec_path: str) -> OverheadSession:
    """A process that counts instructions under valgrind, started by an instructions-mode session."""
    from pytest_otel_overhead.instructions.child import ChildSession
    from pytest_otel_overhead.otel.routing import install_router
    from pytest_otel_overhead.plugins.benchmark import activate as activate_benchmark
    from pytest_otel_overhead.plugins.benchmark import measures_benchmark

    session = ChildSession(
        config, install_router(), spec_path, strategies=_strategies(config), call_measured_instead=measures_benchmark
    )
    config.pluginmanager.register(MeasuredTests(session), MeasuredTests.NAME)
    activate_benchmark(config, session)
    return session


def start_measuring(config: pytest.Config, options: SessionOptions) -> OverheadSession:
    """Import the measuring machinery, build the session and register the plugins that go with it."""
    from pytest_otel_overhead.advice import plugin as advice
    from pytest_otel_overhead.otel.routing import RouterInstallError, install_router
    from pytest_otel_overhead.plugins import tracking
    from pytest_otel_overhead.plugins.benchmark import activate as activate_benchmark
    from pytest_otel_overhead.plugins.benchmark import measures_benchmark
    from pytest_otel_overhead.plugins.unmeasured import PLUGIN_NAME as UNMEASURED_PLUGIN_NAME
    from pytest_otel_overhead.plugins.unmeasured import UnmeasuredPlugin
    from pytest_otel_overhead.plugins.xdist import PLUGIN_NAME as XDIST_PLUGIN_NAME
    from pytest_otel_overhead.plugins.xdist import XdistPlugin
    from pytest_otel_overhead.session import OverheadSession
    from pytest_otel_overhead.units import SettingsError

    try:
        router = install_router()
        advice_options = advice.advice_options(options)
        advising = advice.AdvicePlugin(advice_options, router) if advice_options.any else None
        session = OverheadSession(
            config,
            router,
            strategies=_strategies(config),
            call_measured_instead=measures_benchmark,  # its benchmark(fn) call is measured, not the body
            advice=advising.advisor_for if advising is not None else None,
        )
    except (SettingsError, RouterInstallError) as error:
        raise pytest.UsageError(f"otel-overhead: {error}") from None
    manager = config.pluginmanager
    manager.register(MeasuredTests(session), MeasuredTests.NAME)
    manager.register(XdistPlugin(config, session.results), XDIST_PLUGIN_NAME)
    manager.register(UnmeasuredPlugin(session), UNMEASURED_PLUGIN_NAME)
    # Tracking, then advice: both summaries come after the verdict table (trylast), in the order
    # registered, so the tracking lines stay under the table and the advice section follows.
    manager.register(tracking.tracking_plugin(config, session, options), tracking.PLUGIN_NAME)
    if advising is not None:
        manager.register(advising, advice.PLUGIN_NAME)
    activate_benchmark(config, session)
    return session


class MeasuredTests:
    """A measuring session's hooks per test: each marked test's settings, then its body measured."""

    NAME = "otel-overhead-measured"

    def __init__(self, session: OverheadSession) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not to_measure(item):
            return
        session = self.session

        def settle() -> None:
            item.stash[_settings_key] = session.settings_for(item)

        fail_on_settings_error(settle)
        problem = session.check_body(item)
        if problem is not None:
            pytest.fail(f"otel-overhead: {problem}", pytrace=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        session = self.session
        if not session.measures_body(pyfuncitem):
            return None
        funcargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        workload = functools.partial(pyfuncitem.obj, **funcargs)
        workload()  # one ordinary run first: a failing test fails with its own exception, unmeasured
        session.run(pyfuncitem, pyfuncitem.stash[_settings_key], workload, pyfuncitem.nodeid)
        return True


def measure_call(session: OverheadSession, item: pytest.Item, call: Callable[[], object]) -> TestResult:
    """Measure one call the ``otel_overhead`` fixture was given, labelled ``nodeid#callN`` after the first."""
    calls = item.stash.get(_calls_key, 0) + 1
    item.stash[_calls_key] = calls
    label = item.nodeid if calls == 1 else f"{item.nodeid}#call{calls}"
    return session.run(item, item.stash[_settings_key], call, label)
