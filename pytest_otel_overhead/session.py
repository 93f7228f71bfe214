"""One pytest session's measuring: settings per test, measuring, gating, collecting results.

``plugin.py`` holds the pytest hooks and hands each decision here. The session is told what it
measures and by whom: which strategy measures each mode (:class:`~.engine.strategy.Strategies`),
which tests an integration measures a call of instead of their body (pytest-benchmark), and the
advice modes, if any (:class:`Advice`). It knows only those interfaces, not the integrations
that fill them. It brings in the measuring machinery (engine, OpenTelemetry SDK, reports), so
``plugin.py`` imports it only once a session measures.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_otel_overhead.compat import is_worker, verbosity
from pytest_otel_overhead.engine.repeatable import RepetitionFailed, single_use_argument
from pytest_otel_overhead.engine.replica_child import replica_child
from pytest_otel_overhead.engine.strategy import Measurement, Measurer, OpenGate, Strategies
from pytest_otel_overhead.engine.surroundings import MeasurementStopped
from pytest_otel_overhead.engine.telemetry import with_telemetry_outcome
from pytest_otel_overhead.formatting import junit_number
from pytest_otel_overhead.history.document import write_json
from pytest_otel_overhead.history.merge import UNMEASURED
from pytest_otel_overhead.otel.receiver import stop_shared_receiver
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.reports.terminal import DEFAULT_WIDTH, result_message, summary_lines, wrap
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.calibration import project_layer
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.options import session_options
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.settings.sources import MARKER, cli_layer, ini_layer, marker_layer
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import SettingsError
from pytest_otel_overhead.warning_types import (
    OverheadFailedExportsWarning,
    OverheadInconclusiveWarning,
    OverheadNoTelemetryWarning,
)

__all__ = ["Advice", "AdviceFactory", "OverheadSession", "record_properties", "terminal_width"]


class Advice(Protocol):
    """What the session asks of the advice modes (sweep, tune, explain); ``advice/plugin.py`` provides it."""

    @property
    def replaces_gate(self) -> bool:
        """Sweep and tune: the test is advised on, not gated."""

    @property
    def explains(self) -> bool:
        """Explain: each gated measurement is followed by its breakdown by layer."""

    def advise(
        self,
        item: pytest.Item,
        layers: Sequence[Layer],
        settings: MeasureSettings,
        workload: Callable[[], Any],
        label: str,
        progress: Callable[[str], None] | None,
    ) -> TestResult | None:
        """Measure the workload as the advice modes ask; the last measurement made."""

    def explain(
        self,
        item: pytest.Item,
        settings: MeasureSettings,
        workload: Callable[[], Any],
        label: str,
        full: TestResult | None,
        progress: Callable[[str], None] | None,
    ) -> object:
        """Break a measured workload's overhead down by layer."""

    def json_sections(self) -> dict[str, object]:
        """What the advice found, as sections of the JSON document."""


AdviceFactory = Callable[[Measurer], Advice]
"""Builds the advice for a session, given the session's ungated measuring (``measure_ungated``)."""


def _no_call_measured(item: pytest.Item) -> bool:
    return False


class OverheadSession:
    """State of the measuring for one session: the base layers, the router, the advisor and the results.

    What it measures with is given: ``strategies`` (which strategy measures each mode),
    ``call_measured_instead(item)`` (whether an integration measures a call inside the test, as
    pytest-benchmark's ``benchmark(fn)``, rather than its body) and ``advice`` (builds the advice
    modes from the session's ungated measuring), so the session imports none of them.
    """

    def __init__(
        self,
        config: pytest.Config,
        router: ArmRouter,
        environ: Mapping[str, str] | None = None,
        *,
        strategies: Strategies,
        call_measured_instead: Callable[[pytest.Item], bool] = _no_call_measured,
        advice: AdviceFactory | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.strategies = strategies
        self.call_measured_instead = call_measured_instead
        self.base_layers = (cli_layer(config), ini_layer(config), env_layer(environ), project_layer(config.rootpath))
        self.base = resolve(self.base_layers)  # fails fast on CLI/ini/env values that cannot agree
        strategies.check(self.base)  # one clear error up front when, e.g., instructions mode cannot run
        self.results: list[TestResult] = []
        self.unmeasured: list[dict[str, str]] = []
        """Tests that were to be measured and were not (``plugins/unmeasured.py``), settled at the session's end."""
        self.json_written: Path | None = None
        self.still_open: OpenGate | None = None
        """Another gate on the test's results (``engine.OpenGate``), set by the integration that makes it."""
        self.min_processes = 1
        """Processes that gate wants for each test whatever the first shows (a saved run's minimum)."""
        self.verbose = verbosity(config) >= 1
        # sweep / tune / explain, when asked for; it measures as `measure_ungated` does
        self.advisor: Advice | None = advice(self.measure_ungated) if advice is not None else None

    def measures_body(self, item: pytest.Item) -> bool:
        """Whether the test's body itself is measured (a marker, no fixture call, no benchmark call)."""
        return (
            isinstance(item, pytest.Function)
            and item.get_closest_marker(MARKER) is not None
            and "otel_overhead" not in item.fixturenames
            and not self.call_measured_instead(item)  # e.g. its benchmark(fn) call
        )

    def check_body(self, item: pytest.Item) -> str | None:
        """Why the test's body cannot be measured, or None."""
        function = getattr(item, "obj", None)
        plain = not (inspect.iscoroutinefunction(function) or inspect.isgeneratorfunction(function))
        if self.measures_body(item) and not plain:
            return (
                f"marker on {item.nodeid}: the test body must be a plain function to be measured; "
                "call the async code through the otel_overhead fixture instead"
            )
        return None

    def write_summary(self, terminalreporter: Any) -> None:
        """The verdict table at the end of the terminal report, fitted to the terminal; the JSON file written."""
        if self.results:
            terminalreporter.write_sep("-", "otel-overhead")
            for line in summary_lines(self.results, verbose=self.verbose, width=terminal_width(self.config)):
                terminalreporter.write_line(line)
        if self.json_written is not None and replica_child(self.config) is None:  # a child's file is its parent's
            terminalreporter.write_line(f"wrote JSON report to {self.json_written}")

    def finish(self) -> None:
        """Write the JSON results, if asked for; under xdist the controller writes them for all.

        A report that cannot be written is one red line naming the file and why, not a traceback:
        the session's summary and exit status stay those of its tests.
        """
        path = session_options(self.config).json
        if path is None or is_worker(self.config):
            return
        sections = dict(self.advisor.json_sections()) if self.advisor is not None else {}
        if self.unmeasured:
            sections[UNMEASURED] = self.unmeasured
        try:
            self.json_written = write_json(path, self.results, sections or None)
        except (OSError, UnicodeError) as error:
            # OutputError names the file and the cause; text that cannot be encoded is named here.
            line = f"ERROR otel-overhead: {error if isinstance(error, OSError) else f'could not write {path}: {error}'}"
            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is None:
                print(line, file=sys.stderr)
                return
            reporter.ensure_newline()
            reporter.write_line(line, red=True)

    def close(self) -> None:
        stop_shared_receiver()  # the embedded OTLP receiver, if a measurement started one

    def layers_for(self, item: pytest.Item) -> tuple[Layer, ...]:
        return (marker_layer(item), *self.base_layers)

    def settings_for(self, item: pytest.Item) -> MeasureSettings:
        return resolve(self.layers_for(item))

    def measure_ungated(
        self, item: pytest.Item, settings: MeasureSettings, workload: Callable[[], Any], label: str
    ) -> TestResult:
        """One measurement, neither kept nor gated: what the advice modes make."""
        return self._measure(item, settings, workload, label, gated=False)

    def _measure(
        self, item: pytest.Item, settings: MeasureSettings, workload: Callable[[], Any], label: str, *, gated: bool
    ) -> TestResult:
        """Measure ``workload``; a ``gated`` measurement is held open by this session's other gates."""
        still_open, least = (self.still_open, self.min_processes) if gated else (None, 1)
        asked = Measurement(item, settings, workload, label, self.router, self._progress(item), still_open, least)
        return self.strategies.measure(asked)

    def _progress(self, item: pytest.Item) -> Callable[[str], None] | None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if not self.verbose or reporter is None:
            return None
        width = terminal_width(self.config)

        def say(message: str) -> None:
            # pytest -v has just printed the test's id on the line above: the message starts after it
            # (a second fixture call keeps its "#call2").
            shown = (
                message.removeprefix(item.nodeid).removeprefix(":").strip()
                if message.startswith(item.nodeid)
                else message
            )
            # Progress goes to the terminal while the test runs, past output capturing.
            with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
                reporter.ensure_newline()
                for line in wrap(f"otel-overhead: {shown}", width, indent="  "):
                    reporter.write_line(line)

        return say

    def run(self, item: pytest.Item, settings: MeasureSettings, workload: Callable[[], Any], label: str) -> TestResult:
        """Measure, keep the result, record it for junit, and gate the test on its verdict.

        Arguments that one call uses up, and measured code that replaces a global provider, fail the
        test with one line; a result whose instrumented arm recorded no telemetry warns or fails as
        the ``no_telemetry`` setting says, one whose every export failed as ``failed_exports`` says,
        before its budgets gate it.
        """
        caller = "otel_overhead" if "otel_overhead" in getattr(item, "fixturenames", ()) else "benchmark"
        problem = single_use_argument(workload, caller, getattr(item, "obj", None))
        if problem is not None:
            pytest.fail(f"otel-overhead: {label}: {problem}", pytrace=False)
        advisor = self.advisor
        if advisor is not None and advisor.replaces_gate:  # sweep / tune: advice, no gate
            with _settings_errors_fail_the_test():
                last = advisor.advise(item, self.layers_for(item), settings, workload, label, self._progress(item))
            assert last is not None  # both modes measure at least once
            return last
        try:
            # The test's own measurement: what this session saves and compares (``gated``).
            result = with_telemetry_outcome(self._measure(item, settings, workload, label, gated=True))
        except MeasurementStopped as stopped:
            problem = str(stopped)
        except RepetitionFailed as failed:
            # The fix first, then the body's own frames: the engine's would only bury them. The first
            # line is what -r shows after the test's id: the id is not repeated there.
            problem = failed.report()
            if label == item.nodeid:
                label = ""
        if problem is not None:  # failed outside the except, so the report does not chain it
            pytest.fail(f"otel-overhead: {label}: {problem}" if label else f"otel-overhead: {problem}", pytrace=False)
        self.results.append(result)
        record_properties(item, result)
        if advisor is not None and advisor.explains:
            advisor.explain(item, settings, workload, label, result, self._progress(item))
        self._gate(item, settings, result, label)
        return result

    def _gate(self, item: pytest.Item, settings: MeasureSettings, result: TestResult, label: str) -> None:
        """Fail or warn as the result and the policies say; the first line of a failure is what ``-r`` shows."""
        # A second or later fixture call names itself; the first is the test pytest already names.
        call = "" if label == item.nodeid else label.rsplit("#", 1)[-1] + ": "
        if result.no_telemetry is not None:
            _outcome_gate(
                item,
                settings,
                "no_telemetry",
                f"{call}no telemetry measured: no budget decided",
                f"{label}: no telemetry measured: {result.no_telemetry}",
                OverheadNoTelemetryWarning,
            )
        elif result.failed_exports is not None:
            _outcome_gate(
                item,
                settings,
                "failed_exports",
                f"{call}failed exports: nothing reached the backend",
                f"{label}: failed exports: {result.failed_exports}",
                OverheadFailedExportsWarning,
            )
        verdict = result.verdict
        if verdict is Verdict.FAIL:
            pytest.fail(call + result_message(result, Verdict.FAIL), pytrace=False)
        if verdict is Verdict.INCONCLUSIVE:
            first, rest = result_message(result, Verdict.INCONCLUSIVE).split("\n", 1)
            if settings.inconclusive == "fail":
                source = settings.source("inconclusive")
                pytest.fail(f"{call}{first} (inconclusive=fail, {source})\n{rest}", pytrace=False)
            if settings.inconclusive == "warn":
                item.warn(OverheadInconclusiveWarning(f"{label}: {rest}"))


def terminal_width(config: pytest.Config) -> int:
    """The width pytest writes to; ``DEFAULT_WIDTH`` when it cannot tell (no terminal, no ``$COLUMNS``)."""
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return int(config.get_terminal_writer().fullwidth)
    return DEFAULT_WIDTH


@contextlib.contextmanager
def _settings_errors_fail_the_test() -> Iterator[None]:
    """A grid point that cannot be built fails its test with the one-line message, no traceback."""
    try:
        yield
    except SettingsError as error:
        pytest.fail(f"otel-overhead: {error}", pytrace=False)


def _outcome_gate(
    item: pytest.Item, settings: MeasureSettings, key: str, headline: str, detail: str, category: type[Warning]
) -> None:
    """A result that measured nothing worth a verdict fails, warns or passes as its policy ``key`` says.

    A warning names the test's own line (``item.warn``), not the plugin's frame that issued it.
    """
    policy = getattr(settings, key)
    if policy == "ignore":
        return
    if policy == "fail":
        source = settings.source(key)
        pytest.fail(f"{headline} ({key}=fail, {source}; {key}=warn only warns)\notel-overhead: {detail}", pytrace=False)
    item.warn(category(detail))


def record_properties(item: pytest.Item, result: TestResult) -> None:
    """Key figures as junit properties (what ``record_property`` would add)."""
    prefix = "otel_overhead"
    if result.nodeid != item.nodeid:  # a second or later fixture call: "<nodeid>#call2"
        prefix += "." + result.nodeid.rsplit("#", 1)[-1]
    props = [
        (f"{prefix}.verdict", result.verdict.value),
        (f"{prefix}.outcome", result.outcome),
        (f"{prefix}.pairs", result.pairs),
    ]
    for m in result.metrics:
        if m.verdict is None and m.metric not in ("cpu", "wall"):
            continue
        props.append((f"{prefix}.{m.metric}.overhead", junit_number(m.overhead)))
        props.append((f"{prefix}.{m.metric}.ci", f"{junit_number(m.ci_low)}..{junit_number(m.ci_high)}"))
        if m.verdict is not None:
            props.append((f"{prefix}.{m.metric}.verdict", m.verdict.value))
    if result.health is not None:
        h = result.health
        props.append((f"{prefix}.spans_per_call", junit_number(h.per_call(h.started))))
        props.append((f"{prefix}.spans_dropped", h.dropped))
    if result.no_telemetry is not None:
        props.append((f"{prefix}.no_telemetry", result.no_telemetry))
    if result.failed_exports is not None:
        props.append((f"{prefix}.failed_exports", result.failed_exports))
    props += [(f"{prefix}.note", note) for note in result.notes]
    item.user_properties.extend(props)
