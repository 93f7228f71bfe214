"""pytest hooks: options, marker, fixture and the points where measuring plugs into a test run.

pytest imports this module in every run of every project that has the package installed (and
rewrites the asserts of every module of the package it loads), so a run that does not measure loads
only pytest and the settings' declarations (``settings/flags`` and ``declared``; the session's
``options`` too when the run gives the plugin a flag or an ini key). The
measuring machinery (the engine, the OpenTelemetry SDK, psutil, reports, history, advice) is
imported in ``pytest_configure``, and only when the session measures (``--otel-overhead``, ini
``otel_overhead`` or an advice flag). Marker arguments and setting values are checked in every run
all the same, so that a typo fails at once rather than in the first run that measures; the parsers
load only when there is a value to check. The hooks called for every test are on plugins registered
only where a session needs them: a measuring session's (``plugins/measuring``, which also starts the
session), or, without measuring, one registered when marked tests were collected (``plugins/marked``).
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
    gives_anything,
    ini_settings,
    items_to_measure,
)

if TYPE_CHECKING:
    from pytest_otel_overhead.session import OverheadSession

T = TypeVar("T")

_session_key: pytest.StashKey[OverheadSession] = pytest.StashKey()
_unmeasured_key: pytest.StashKey[UnmeasuredTests] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(budget='5%', **settings): measure this test's telemetry overhead under --otel-overhead; "
        "settings: " + ", ".join(KEY_HELP),
    )
    # Most runs of a project that has the plugin installed give it nothing: no option to read, no value to check.
    if gives_anything(config):
        from pytest_otel_overhead.settings.options import session_options

        options = session_options(config)  # read once here; every module reads them from the stash
        if options.child or options.measuring:  # the measuring machinery, and the plugins that go with it
            from pytest_otel_overhead.plugins import measuring

            if options.child:
                session = measuring.start_child(config, options.child)
            else:
                session = measuring.start_measuring(config, options)
            config.stash[_session_key] = session
            return
        _check_without_measuring(config)
    config.stash[_unmeasured_key] = UnmeasuredTests(config)


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


class UnmeasuredTests:
    """Without measuring: the tests that would have been measured with ``--otel-overhead``, said at the end.

    A CI job that lost the flag has lost its gate and every test still passes: one line at the end
    of the terminal report tells. Not under ``-qq``, which asks for nothing but the outcome. Once the
    tests are collected, their markers are checked as each runs (``plugins/marked``), registered
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
            self._register(marked)

    def before_tests(self) -> None:
        if not self.collected:  # pytest-xdist's controller: the workers collect and run, it hears their reports
            self._register(frozenset())

    def _register(self, marked: Set[pytest.Item]) -> None:
        from pytest_otel_overhead.plugins.marked import MarkedTests

        self.config.pluginmanager.register(MarkedTests(marked, self.nodeids), MarkedTests.NAME)

    def write_line(self, terminalreporter: Any) -> None:
        if not self.nodeids or self.config.getoption("verbose") < -1 or hasattr(self.config, "workerinput"):
            return
        count = len(self.nodeids)
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"otel-overhead: {count} {tests} with an otel_overhead marker or fixture ran without measuring: "
            "add --otel-overhead to measure them"
        )


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
        from pytest_otel_overhead.plugins.measuring import measure_call

        self.results.append(measure_call(session, self._item, functools.partial(fn, *args, **kwargs)))
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
