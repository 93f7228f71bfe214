"""From a verdict to advice: the sweep, tune and explain modes, run for each measured workload.

``--otel-overhead-sweep`` and ``--otel-overhead-tune`` explore settings the test does not use, so in
those modes a test is not gated: it passes unless its code fails, and the findings go to the
summary and the JSON. ``--otel-overhead-explain`` keeps the gate and adds the layer breakdown.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.advice.explain import Explanation, explain, explain_lines, noop_span_cost
from pytest_otel_overhead.advice.sweep import SweepAxis, SweepResult, parse_sweep, run_sweep, sweep_lines, sweep_page
from pytest_otel_overhead.advice.tuner import DEFAULT_TIME_CAP_S, Tuning, tune, tuning_lines
from pytest_otel_overhead.engine.runner import measure
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.layers import Layer, MeasureSettings, SettingsError
from pytest_otel_overhead.units import parse_seconds

__all__ = [
    "AdviceOptions",
    "AdvicePlugin",
    "Advisor",
    "add_options",
    "advice_options",
    "advice_requested",
    "json_sections_of",
    "make_advisor",
]

Measurer = Callable[[MeasureSettings, Callable[[], Any], str], TestResult]


def add_options(parser: pytest.Parser, group: Any) -> None:
    group.addoption(
        "--otel-overhead-sweep",
        nargs="+",
        action="extend",
        default=None,
        metavar="KEY=V1,V2",
        help="measure each marked test at every combination of these settings, e.g. "
        "'sample_rate=0.01,0.1,1' 'batch_size=128,512' (implies --otel-overhead; tests are not gated)",
    )
    parser.addini("otel_overhead_sweep", "settings to sweep, one KEY=V1,V2 per line", type="linelist")
    group.addoption(
        "--otel-overhead-sweep-chart",
        default=None,
        metavar="PATH",
        help="write the sweeps' charts and tables to PATH as a self-contained HTML page",
    )
    group.addoption(
        "--otel-overhead-tune",
        action="store_true",
        default=None,
        help="find per test the highest sampling rate within budget and print it as OTEL_* variables "
        "(implies --otel-overhead; tests are not gated)",
    )
    parser.addini("otel_overhead_tune", "run the auto-tuner, as --otel-overhead-tune does", type="bool", default=False)
    group.addoption(
        "--otel-overhead-tune-time",
        default=None,
        metavar="SECONDS",
        help=f"cap on the tuner's time per test, e.g. 90 or 3min (default {DEFAULT_TIME_CAP_S:g} s)",
    )
    parser.addini("otel_overhead_tune_time", "cap on the tuner's time per test, as --otel-overhead-tune-time")
    group.addoption(
        "--otel-overhead-explain",
        action="store_true",
        default=None,
        help="break each measured test's overhead down by pipeline layer (implies --otel-overhead)",
    )
    parser.addini(
        "otel_overhead_explain", "break overhead down by layer, as --otel-overhead-explain", type="bool", default=False
    )


@dataclass(frozen=True)
class AdviceOptions:
    sweep: tuple[SweepAxis, ...] = ()
    sweep_chart: Path | None = None
    tune: bool = False
    tune_time: float = DEFAULT_TIME_CAP_S
    explain: bool = False

    @property
    def any(self) -> bool:
        return bool(self.sweep) or self.tune or self.explain

    @property
    def replaces_gate(self) -> bool:
        return bool(self.sweep) or self.tune


def _flag(config: pytest.Config, name: str) -> bool:
    value = config.getoption(name)
    return bool(value) if value is not None else bool(config.getini(name))


def advice_options(config: pytest.Config) -> AdviceOptions:
    """The advice modes asked for on the command line or in the ini file (the command line wins)."""
    specs: Sequence[str] | None = config.getoption("otel_overhead_sweep")
    source = "--otel-overhead-sweep"
    if not specs:
        specs, source = config.getini("otel_overhead_sweep") or (), "ini otel_overhead_sweep"
    tune_time = DEFAULT_TIME_CAP_S
    raw_time = config.getoption("otel_overhead_tune_time")
    if raw_time is not None:
        tune_time = parse_seconds(raw_time, "--otel-overhead-tune-time")
    elif config.getini("otel_overhead_tune_time"):
        tune_time = parse_seconds(config.getini("otel_overhead_tune_time"), "ini otel_overhead_tune_time")
    chart = config.getoption("otel_overhead_sweep_chart")
    return AdviceOptions(
        sweep=parse_sweep(list(specs), source) if specs else (),
        sweep_chart=config.invocation_params.dir / chart if chart else None,
        tune=_flag(config, "otel_overhead_tune"),
        tune_time=tune_time,
        explain=_flag(config, "otel_overhead_explain"),
    )


@dataclass
class Advisor:
    """Runs the advice modes for each measured workload and keeps what they found."""

    options: AdviceOptions
    router: ArmRouter
    measurer: Measurer | None = None
    sweeps: list[SweepResult] = field(default_factory=list)
    tunings: list[Tuning] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    _api_span_cost: float = math.nan

    def _measure(self, settings: MeasureSettings, workload: Callable[[], Any], label: str) -> TestResult:
        if self.measurer is not None:
            return self.measurer(settings, workload, label)
        return measure(workload, settings, self.router, nodeid=label)

    def advise(
        self,
        layers: Sequence[Layer],
        settings: MeasureSettings,
        workload: Callable[[], Any],
        label: str,
        progress: Callable[[str], None] | None = None,
    ) -> TestResult | None:
        """Sweep and tune ``workload`` (when asked), then explain it; returns the last measurement made."""
        from pytest_otel_overhead.settings.layers import resolve

        last: TestResult | None = None

        def measure_at(point: MeasureSettings, point_label: str) -> TestResult:
            nonlocal last
            last = self._measure(point, workload, point_label)
            return last

        if self.options.sweep:
            sweep = run_sweep(
                label, self.options.sweep, lambda top: resolve((top, *layers)), measure_at, progress=progress
            )
            self.sweeps.append(sweep)
        if self.options.tune:
            self.tunings.append(tune(label, settings, measure_at, time_cap=self.options.tune_time, progress=progress))
        if self.options.explain:
            self.explain(settings, workload, label, None, progress)
        return last

    def explain(
        self,
        settings: MeasureSettings,
        workload: Callable[[], Any],
        label: str,
        full: TestResult | None,
        progress: Callable[[str], None] | None = None,
    ) -> Explanation:
        if math.isnan(self._api_span_cost):
            self._api_span_cost = noop_span_cost(self.router)
        explanation = explain(
            label,
            settings,
            lambda point, point_label: self._measure(point, workload, point_label),
            full=full,
            api_span_cost=self._api_span_cost,
            progress=progress,
        )
        self.explanations.append(explanation)
        return explanation

    @property
    def found(self) -> bool:
        return bool(self.sweeps or self.tunings or self.explanations)

    def summary_lines(self) -> list[str]:
        lines: list[str] = []
        if self.sweeps:
            lines.append("otel-overhead sweeps:")
            lines += [line for sweep in self.sweeps for line in sweep_lines(sweep)]
        if self.tunings:
            lines.append("otel-overhead tuning:")
            lines += [line for tuning in self.tunings for line in tuning_lines(tuning)]
        if self.explanations:
            lines.append("otel-overhead by layer:")
            lines += [line for explanation in self.explanations for line in explain_lines(explanation)]
        if self.options.sweep_chart is not None and self.sweeps:
            lines.append(f"sweep charts: {self.options.sweep_chart}")
        return lines

    def json_sections(self) -> dict[str, object]:
        sections: dict[str, object] = {}
        if self.options.sweep:
            sections["sweeps"] = [s.as_dict() for s in self.sweeps]
        if self.options.tune:
            sections["tuning"] = [t.as_dict() for t in self.tunings]
        if self.options.explain:
            sections["explain"] = [e.as_dict() for e in self.explanations]
        return sections

    def write_chart(self) -> None:
        path = self.options.sweep_chart
        if path is None or not self.sweeps:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sweep_page(self.sweeps), encoding="utf-8")


@contextlib.contextmanager
def settings_errors_fail_the_test() -> Iterator[None]:
    """A grid point that cannot be built fails its test with the one-line message, no traceback."""
    try:
        yield
    except SettingsError as error:
        pytest.fail(f"otel-overhead: {error}", pytrace=False)


def advice_requested(config: pytest.Config) -> bool:
    """Any advice mode asked for; each one implies ``--otel-overhead``."""
    return bool(
        config.getoption("otel_overhead_sweep")
        or config.getini("otel_overhead_sweep")
        or _flag(config, "otel_overhead_tune")
        or _flag(config, "otel_overhead_explain")
    )


def make_advisor(config: pytest.Config, router: ArmRouter) -> Advisor | None:
    options = advice_options(config)
    if not options.any:
        return None
    if getattr(config.option, "numprocesses", None):
        # Findings stay in the worker that made them; the controller would report none.
        raise SettingsError("--otel-overhead-sweep, -tune and -explain run in one process; drop -n")
    return Advisor(options, router)


def json_sections_of(session: object) -> dict[str, object] | None:
    advisor = getattr(session, "advisor", None)
    return advisor.json_sections() if isinstance(advisor, Advisor) else None


class AdvicePlugin:
    """The advice's terminal summary (after the verdict table) and its chart file."""

    def __init__(self, advisor: Advisor) -> None:
        self.advisor = advisor

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.advisor.found:
            return
        terminalreporter.write_sep("-", "otel-overhead advice")
        for line in self.advisor.summary_lines():
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self) -> None:
        self.advisor.write_chart()
