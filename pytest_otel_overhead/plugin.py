"""pytest hooks: options, marker, fixture and the points where measuring plugs into a test run.

pytest imports this module in every run of every project that has the package installed (and
rewrites the asserts of every module of the package it loads), so a run that does not measure loads
only pytest and the settings' declarations (``settings/flags``, ``declared`` and ``options``). The
measuring machinery (the engine, the OpenTelemetry SDK, psutil, reports, history, advice) is
imported in ``pytest_configure``, and only when the session measures (``--otel-overhead``, ini
``otel_overhead`` or an advice flag). Marker arguments and setting values are checked in every run
all the same, so that a typo fails at once rather than in the first run that measures; the parsers
load only when there is a value to check. The hooks called for every test are on plugins registered
only where a session needs them: a measuring session's (:class:`MeasuredTests`), or, without
measuring, one registered when marked tests were collected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Set
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_otel_overhead.settings.declared import KEY_HELP
from pytest_otel_overhead.settings.flags import (
    MARKER,
    add_options,
    given_flags,
    ini_settings,
    items_to_measure,
    to_measure,
)
from pytest_otel_overhead.settings.options import session_options

if TYPE_CHECKING:
    from pytest_otel_overhead.engine.strategy import Strategies
    from pytest_otel_overhead.session import OverheadSession
    from pytest_otel_overhead.settings.options import SessionOptions
    from pytest_otel_overhead.settings.records import MeasureSettings

T = TypeVar("T")

_session_key: pytest.StashKey[OverheadSession] = pytest.StashKey()
_settings_key: pytest.StashKey[MeasureSettings] = pytest.StashKey()
_calls_key: pytest.StashKey[int] = pytest.StashKey()
_unmeasured_key: pytest.StashKey[UnmeasuredTests] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(budget='5%', **settings): measure this test's telemetry overhead under --otel-overhead; "
        "settings: " + ", ".join(KEY_HELP),
    )
    options = session_options(config)  # read once here; every module reads them from the stash
    if options.child:
        _start_child(config, options.child)
    elif options.measuring:
        _start_measuring(config, options)
    else:
        _check_without_measuring(config)


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


def _start_child(config: pytest.Config, spec_path: str) -> None:
    """A process that counts instructions under valgrind, started by an instructions-mode session."""
    from pytest_otel_overhead.instructions.child import ChildSession
    from pytest_otel_overhead.otel.routing import install_router
    from pytest_otel_overhead.plugins.benchmark import activate as activate_benchmark
    from pytest_otel_overhead.plugins.benchmark import measures_benchmark

    session = ChildSession(
        config, install_router(), spec_path, strategies=_strategies(config), call_measured_instead=measures_benchmark
    )
    config.stash[_session_key] = session
    config.pluginmanager.register(MeasuredTests(session), MeasuredTests.NAME)
    activate_benchmark(config, session)


def _start_measuring(config: pytest.Config, options: SessionOptions) -> None:
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
    config.stash[_session_key] = session
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


_UNMEASURED = "otel_overhead_unmeasured"
"""The keyword a test that would have been measured carries in its setup report, under xdist too."""


def _check_without_measuring(config: pytest.Config) -> None:
    """Check the settings' flags and ini keys as a measuring session would; say which flags do nothing.

    The environment is not checked: its OTEL_* variables may hold values meant for the code under
    test, and only a measuring session reads them. Exporter factories and instrumentors are checked
    as written, not imported. The layers and their parsers are imported only when there is a value
    to check (``settings.keys``), so a run given nothing of the plugin's loads none.
    """
    given = given_flags(config)
    ini = ini_settings(config)
    if given or ini:  # every flag defaults to None: without one, the command line has no settings to check
        from pytest_otel_overhead.settings.sources import cli_layer, ini_layer
        from pytest_otel_overhead.units import SettingsError

        try:
            if given:
                cli_layer(config, imports=False)
            if ini:
                ini_layer(config, imports=False)
        except SettingsError as error:
            raise pytest.UsageError(f"otel-overhead: {error}") from None
    if given and not hasattr(config, "workerinput"):  # an xdist worker: its controller says it once
        verb = "has" if len(given) == 1 else "have"
        message = f"otel-overhead: {', '.join(given)} {verb} no effect without --otel-overhead"
        config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
    config.stash[_unmeasured_key] = UnmeasuredTests(config)


class UnmeasuredTests:
    """Without measuring: the tests that would have been measured with ``--otel-overhead``, said at the end.

    A CI job that lost the flag has lost its gate and every test still passes: one line at the end
    of the terminal report tells. Not under ``-qq``, which asks for nothing but the outcome. Once the
    tests are collected, their markers are checked as each runs (:class:`MarkedTests`), registered
    only when some are marked, so that a run without any calls nothing of the plugin's per test.
    Kept in the stash, not registered: the module's hooks call it.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.nodeids: set[str] = set()
        self.collected = False

    def check(self, items: list[pytest.Item]) -> None:
        """Collected: check the marked among ``items`` as they run."""
        self.collected = True
        marked = items_to_measure(items)
        if marked:
            self.config.pluginmanager.register(MarkedTests(marked, self.nodeids), MarkedTests.NAME)

    def before_tests(self) -> None:
        if not self.collected:  # pytest-xdist's controller: the workers collect and run, it hears their reports
            self.config.pluginmanager.register(MarkedTests(frozenset(), self.nodeids), MarkedTests.NAME)

    def write_line(self, terminalreporter: Any) -> None:
        if not self.nodeids or self.config.getoption("verbose") < -1 or hasattr(self.config, "workerinput"):
            return
        count = len(self.nodeids)
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"otel-overhead: {count} {tests} with an otel_overhead marker or fixture ran without measuring: "
            "add --otel-overhead to measure them"
        )


class MarkedTests:
    """Without measuring, per test: a marked test's marker is checked, and its setup report names it.

    A typo fails in every run, measuring or not; what a value names is imported only to measure. The
    keyword in the setup report lets an xdist controller count the test too.
    """

    NAME = "otel-overhead-marked"

    def __init__(self, marked: Set[pytest.Item], nodeids: set[str]) -> None:
        self.marked = marked
        self.nodeids = nodeids

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if item not in self.marked:
            return
        from pytest_otel_overhead.settings.sources import marker_layer

        _fail_on_settings_error(lambda: marker_layer(item, imports=False))
        item.keywords[_UNMEASURED] = True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup" and _UNMEASURED in report.keywords:
            self.nodeids.add(report.nodeid)


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

        _fail_on_settings_error(settle)
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


def _fail_on_settings_error(check: Callable[[], object]) -> None:
    """Run ``check``; a SettingsError fails the test with its one line (no traceback, no chained error)."""
    from pytest_otel_overhead.units import SettingsError  # loaded by then: the check parses values

    problem: str | None = None
    try:
        check()
    except SettingsError as error:
        problem = str(error)
    if problem is not None:  # failed outside the except, so the report does not chain the SettingsError
        pytest.fail(f"otel-overhead: {problem}", pytrace=False)


class OverheadFixture:
    """``otel_overhead(fn, *args, **kwargs)``: measure ``fn(*args, **kwargs)`` and return its result.

    Without ``--otel-overhead`` it only calls ``fn``. With it, ``fn`` is called once as usual (its
    result is returned and its exceptions propagate), then measured in both arms; a budget
    exceeded fails the test. Settings come from the test's ``otel_overhead`` marker, the command
    line, ini file and environment.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        self.results: list[Any] = []

    def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        result = fn(*args, **kwargs)
        session = self._item.config.stash.get(_session_key, None)
        if session is None:
            return result
        calls = self._item.stash.get(_calls_key, 0) + 1
        self._item.stash[_calls_key] = calls
        label = self._item.nodeid if calls == 1 else f"{self._item.nodeid}#call{calls}"
        self.results.append(
            session.run(self._item, self._item.stash[_settings_key], functools.partial(fn, *args, **kwargs), label)
        )
        return result


@pytest.fixture
def otel_overhead(request: pytest.FixtureRequest) -> OverheadFixture:
    """Measure a callable's telemetry overhead: ``result = otel_overhead(handle, order)``."""
    return OverheadFixture(request.node)


def pytest_collection_finish(session: pytest.Session) -> None:
    unmeasured = session.config.stash.get(_unmeasured_key, None)
    if unmeasured is not None:
        unmeasured.check(session.items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    unmeasured = session.config.stash.get(_unmeasured_key, None)
    if unmeasured is not None:
        unmeasured.before_tests()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_session_key, None)
    if session is not None:
        session.write_summary(terminalreporter)
    unmeasured = config.stash.get(_unmeasured_key, None)
    if unmeasured is not None:
        unmeasured.write_line(terminalreporter)


def pytest_sessionfinish(session: pytest.Session) -> None:
    overhead = session.config.stash.get(_session_key, None)
    if overhead is not None:
        overhead.finish()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_session_key, None)
    if session is not None:
        session.close()
