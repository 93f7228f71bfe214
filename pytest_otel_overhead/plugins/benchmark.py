"""pytest-benchmark's tests, measured for telemetry overhead as they are written.

Under ``--otel-overhead``, the ``benchmark`` fixture that pytest-benchmark makes for a test is
turned, right after it is set up, into a subclass whose ``benchmark(fn, *args, **kwargs)`` and
``benchmark.pedantic(...)`` measure ``fn`` in both arms instead of timing it. It stays a
``BenchmarkFixture`` (pytest-benchmark checks that), keeps its attributes (``extra_info``,
``group``, ``name``...), and its ``--benchmark-skip`` still skips. pytest-benchmark's own table
then has nothing to show; one line at the end of the run says why, lest it seem lost. Without
``--otel-overhead`` nothing here is registered, and pytest-benchmark times its tests as usual.

pytest-benchmark is optional: it is imported only once a session measures and has it loaded.
The takeover leans on two internals of its fixture (the class swap, and ``_mode``, its record of
a first use); a release without them keeps timing its tests itself, and a warning says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_otel_overhead.compat import degraded, distribution_version
from pytest_otel_overhead.units import SettingsError

if TYPE_CHECKING:  # for the annotations only: the session comes with the measuring machinery
    from pytest_otel_overhead.session import OverheadSession

__all__ = ["PLUGIN_NAME", "activate", "measures_benchmark"]

PLUGIN_NAME = "otel-overhead-benchmark"
"""Name under which the fixture takeover is registered (only while measuring)."""
_BENCHMARK_PLUGIN = "benchmark"  # pytest-benchmark's entry point name
T = TypeVar("T")


def measures_benchmark(item: pytest.Item) -> bool:
    """Whether this test's ``benchmark`` fixture is measured for overhead (so its body is not)."""
    return "benchmark" in getattr(item, "fixturenames", ()) and item.config.pluginmanager.has_plugin(PLUGIN_NAME)


def activate(config: pytest.Config, session: OverheadSession) -> bool:
    """Take over pytest-benchmark's fixture for this session when pytest-benchmark is loaded."""
    if not config.pluginmanager.has_plugin(_BENCHMARK_PLUGIN):
        return False
    try:
        measured = _measured_fixture_class()
    except ImportError:
        return False
    config.pluginmanager.register(_Takeover(session, measured), PLUGIN_NAME)
    return True


class _Takeover:
    """The plugin object: swaps the class of each ``benchmark`` fixture value as it is made."""

    def __init__(self, session: OverheadSession, measured: type) -> None:
        self.session = session
        self.measured = measured
        self.original = measured.__mro__[1]
        self.taken = 0

    def take_over(self, fixture: Any, node: pytest.Item) -> bool:
        """Turn ``fixture`` into the measuring fixture; ``False`` where its class is not the one expected."""
        if type(fixture) is not self.original:
            return type(fixture) is self.measured
        swapped: Any = fixture
        try:
            swapped.__class__ = self.measured
        except TypeError:  # instances whose layout forbids it (e.g. __slots__)
            return False
        swapped._otel_overhead = (self.session, node)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
        value: Any = yield
        if fixturedef.argname == "benchmark":
            if self.take_over(value, request.node):
                self.taken += 1
            else:
                degraded(
                    "benchmark: measuring the `benchmark` fixture needs pytest-benchmark's BenchmarkFixture "
                    f"(whose class it swaps), not found as expected in {distribution_version('pytest-benchmark')}; "
                    "benchmark tests are timed by pytest-benchmark, not measured for overhead"
                )
        return value

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.taken:
            tests = "1 test" if self.taken == 1 else f"{self.taken} tests"
            terminalreporter.write_line(
                f"otel-overhead: no pytest-benchmark table: the benchmark fixture of {tests} measured "
                "telemetry overhead instead of timing (see the otel-overhead summary; without --otel-overhead "
                "pytest-benchmark times them)"
            )


def _measure(fixture: Any, mode: str, workload: Callable[[], T]) -> T:
    """Call ``workload`` once as the test would, then measure it in both arms; return the first result."""
    from pytest_benchmark.fixture import FixtureAlreadyUsed  # optional dependency

    used = getattr(fixture, "_mode", None)  # pytest-benchmark's record of a first use, kept by it
    if used:
        fixture.has_error = True
        raise FixtureAlreadyUsed(f"Fixture can only be used once. Previously it was used in {used} mode.")
    fixture._mode = mode
    session, item = fixture._otel_overhead
    try:
        settings = session.settings_for(item)
    except SettingsError as error:
        pytest.fail(f"otel-overhead: {error}", pytrace=False)
    try:
        result = workload()
    except Exception:
        fixture.has_error = True
        raise
    session.run(item, settings, workload, item.nodeid)
    return result


@functools.cache
def _measured_fixture_class() -> type:
    from pytest_benchmark.fixture import BenchmarkFixture  # optional dependency

    class OverheadBenchmarkFixture(BenchmarkFixture):
        """``benchmark`` under ``--otel-overhead``: the callable is the workload measured in both arms."""

        def __call__(self, function_to_benchmark: Callable[..., T], *args: Any, **kwargs: Any) -> T:
            return _measure(self, "benchmark(...)", functools.partial(function_to_benchmark, *args, **kwargs))

        def pedantic(
            self,
            target: Callable[..., T],
            args: Sequence[Any] = (),
            kwargs: Mapping[str, Any] | None = None,
            setup: Callable[[], Any] | None = None,
            teardown: Callable[..., Any] | None = None,
            rounds: int = 1,
            warmup_rounds: int = 0,
            iterations: int = 1,
        ) -> T:
            """Each measured call runs ``setup``, ``target`` and ``teardown``, in the arm being measured.

            ``rounds``, ``warmup_rounds`` and ``iterations`` are checked as pytest-benchmark checks
            them, then left to the engine, which picks its own numbers of calls.
            """
            for name, value, least in (("iterations", iterations, 1), ("rounds", rounds, 1)):
                if not isinstance(value, int) or value < least:
                    raise ValueError(f"Must have positive int for `{name}`.")
            if not isinstance(warmup_rounds, int) or warmup_rounds < 0:
                raise ValueError("Must have positive int for `warmup_rounds`.")
            if iterations > 1 and setup:
                raise ValueError("Can't use more than 1 `iterations` with a `setup` function.")
            given_args, given_kwargs = tuple(args), dict(kwargs or {})

            def call() -> T:
                call_args, call_kwargs = given_args, given_kwargs
                if setup is not None:
                    made = setup()
                    if made:
                        if given_args or given_kwargs:
                            raise TypeError("Can't use `args` or `kwargs` if `setup` returns the arguments.")
                        call_args, call_kwargs = tuple(made[0]), dict(made[1])
                result = target(*call_args, **call_kwargs)
                if teardown is not None:
                    teardown(*call_args, **call_kwargs)
                return result

            return _measure(self, "benchmark.pedantic(...)", call)

    return OverheadBenchmarkFixture
