"""pytest hooks: options, marker, fixture and the points where measuring plugs into a test run."""

from __future__ import annotations

import argparse
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from pytest_otel_overhead.advice import plugin as advice
from pytest_otel_overhead.benchmark_support import activate as activate_benchmark
from pytest_otel_overhead.benchmark_support import measures_benchmark
from pytest_otel_overhead.compat import verbosity
from pytest_otel_overhead.history import tracking
from pytest_otel_overhead.history.document import write_json
from pytest_otel_overhead.options import session_options
from pytest_otel_overhead.otel.receiver import stop_shared_receiver
from pytest_otel_overhead.otel.routing import RouterInstallError, install_router
from pytest_otel_overhead.reports.terminal import summary_lines
from pytest_otel_overhead.session import MARKER, OverheadSession, option_name
from pytest_otel_overhead.settings.layers import KEYS, MeasureSettings, SettingsError
from pytest_otel_overhead.xdist_support import PLUGIN_NAME as XDIST_PLUGIN_NAME
from pytest_otel_overhead.xdist_support import XdistPlugin, is_worker

T = TypeVar("T")

_session_key = pytest.StashKey[OverheadSession]()
_settings_key = pytest.StashKey[MeasureSettings]()
_calls_key = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("otel-overhead", "OpenTelemetry overhead (pytest-otel-overhead)")
    group.addoption(
        "--otel-overhead",
        action="store_true",
        default=None,
        help="measure tests marked otel_overhead (and otel_overhead fixture calls) against an "
        "uninstrumented baseline and fail those over budget",
    )
    parser.addini("otel_overhead", "enable measuring, as --otel-overhead does", type="bool", default=False)
    group.addoption("--otel-overhead-json", metavar="PATH", default=None, help="write results as JSON to PATH")
    parser.addini("otel_overhead_json", "write results as JSON to this path, as --otel-overhead-json does")
    advice.add_options(parser, group)
    tracking.add_options(parser, group)
    # Internal: set on the pytest processes that instructions mode starts under valgrind.
    group.addoption("--otel-overhead-child", default=None, help=argparse.SUPPRESS)
    for key in KEYS.values():
        group.addoption(
            option_name(key.name),
            dest="otel_overhead_" + key.name,
            default=None,
            metavar="VALUE",
            help=key.help.replace("%", "%%"),  # argparse %-formats help text: "5%" would break --help
        )
        parser.addini("otel_overhead_" + key.name, key.help + f"; as {option_name(key.name)}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(budget='5%', **settings): measure this test's telemetry overhead under --otel-overhead; "
        "settings: " + ", ".join(KEYS),
    )
    options = session_options(config)  # read once here; every module reads them from the stash
    if options.child:
        from pytest_otel_overhead.instructions.child import (
            ChildSession,  # only in the processes that count instructions
        )

        config.stash[_session_key] = ChildSession(config, install_router(), options.child)
        activate_benchmark(config, config.stash[_session_key])
        return
    if not options.measuring:
        return
    try:
        router = install_router()
        session = OverheadSession(config, router, advice=advice.advice_options(options))
    except (SettingsError, RouterInstallError) as error:
        raise pytest.UsageError(f"otel-overhead: {error}") from None
    config.stash[_session_key] = session
    manager = config.pluginmanager
    manager.register(XdistPlugin(config, session.results), XDIST_PLUGIN_NAME)
    # Tracking, then advice: both summaries come after the verdict table (trylast), in the order
    # registered, so the tracking lines stay under the table and the advice section follows.
    manager.register(tracking.tracking_plugin(config, session, options), tracking.PLUGIN_NAME)
    if session.advisor is not None:
        manager.register(advice.AdvicePlugin(session.advisor), advice.PLUGIN_NAME)
    activate_benchmark(config, session)


def _is_measured_body(item: pytest.Item) -> bool:
    return (
        isinstance(item, pytest.Function)
        and item.get_closest_marker(MARKER) is not None
        and "otel_overhead" not in item.fixturenames
        and not measures_benchmark(item)  # its benchmark(fn) call is measured instead
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    session = item.config.stash.get(_session_key, None)
    if session is None or (
        item.get_closest_marker(MARKER) is None and "otel_overhead" not in getattr(item, "fixturenames", ())
    ):
        return
    problem: str | None = None
    try:
        item.stash[_settings_key] = session.settings_for(item)
    except SettingsError as error:
        problem = str(error)
    if problem is not None:  # failed outside the except, so the report does not chain the SettingsError
        pytest.fail(f"otel-overhead: {problem}", pytrace=False)
    if _is_measured_body(item):
        function = getattr(item, "obj", None)
        if inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function):
            pytest.fail(
                f"otel-overhead: marker on {item.nodeid}: the test body must be a plain function to be "
                "measured; call the async code through the otel_overhead fixture instead",
                pytrace=False,
            )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    session = pyfuncitem.config.stash.get(_session_key, None)
    if session is None or not _is_measured_body(pyfuncitem):
        return None
    funcargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    workload = functools.partial(pyfuncitem.obj, **funcargs)
    workload()  # one ordinary run first: a failing test fails with its own exception, unmeasured
    session.run(pyfuncitem, pyfuncitem.stash[_settings_key], workload, pyfuncitem.nodeid)
    return True


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


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_session_key, None)
    if session is None or not session.results:
        return
    terminalreporter.write_sep("-", "otel-overhead")
    for line in summary_lines(session.results, verbose=verbosity(config) >= 1):
        terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    overhead = session.config.stash.get(_session_key, None)
    if overhead is None or is_worker(session.config):  # under xdist the controller reports for all
        return
    path = session_options(session.config).json
    if path is not None:
        sections = overhead.advisor.json_sections() if overhead.advisor is not None else None
        write_json(path, overhead.results, sections)


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_shared_receiver()  # the embedded OTLP receiver, if a measurement started one
