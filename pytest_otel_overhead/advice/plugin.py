"""From a verdict to advice: the sweep, tune and explain modes, run for each measured workload.

The session knows the :class:`Advisor` only as its ``Advice`` protocol: :class:`AdvicePlugin` builds
it when the session hands over its ungated measuring.

``--otel-overhead-sweep`` and ``--otel-overhead-tune`` explore settings the test does not use, so in
those modes a test is not gated: it passes unless its code fails, and the findings go to the
summary and the JSON. ``--otel-overhead-explain`` keeps the gate and adds the layer breakdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_otel_overhead.advice.explain import Explanation, explain, explain_lines, noop_span_cost
from pytest_otel_overhead.advice.sweep import parse_sweep, run_sweep
from pytest_otel_overhead.advice.tuner import DEFAULT_TIME_CAP_S, Tuning, tune, tuning_lines
from pytest_otel_overhead.engine.strategy import Measurer
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.outputs import write_text_file
from pytest_otel_overhead.reports.sweep import SweepAxis, SweepResult, sweep_lines, sweep_page
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.options import SessionOptions
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.units import SettingsError, parse_seconds

__all__ = [
    "PLUGIN_NAME",
    "AdviceOptions",
    "AdvicePlugin",
    "Advisor",
    "advice_options",
]

PLUGIN_NAME = "otel-overhead-advice"


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


def advice_options(options: SessionOptions) -> AdviceOptions:
    """The advice modes asked for, parsed; errors name the flag or ini key they came from."""
    given_time, given_sweep = options.tune_time, options.sweep
    tune_time = parse_seconds(given_time.value, given_time.source) if given_time is not None else DEFAULT_TIME_CAP_S
    advice = AdviceOptions(
        sweep=parse_sweep(list(given_sweep.value), given_sweep.source) if given_sweep is not None else (),
        sweep_chart=options.sweep_chart,
        tune=options.tune,
        tune_time=tune_time,
        explain=options.explain,
    )
    if advice.any and options.xdist_workers:
        # Findings stay in the worker that made them; the controller would report none.
        raise SettingsError("--otel-overhead-sweep, -tune and -explain run in one process; drop -n")
    return advice


@dataclass
class Advisor:
    """Runs the advice modes for each measured workload and keeps what they found."""

    options: AdviceOptions
    router: ArmRouter
    measure: Measurer
    sweeps: list[SweepResult] = field(default_factory=list)
    tunings: list[Tuning] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)
    _api_span_cost: float = math.nan

    @property
    def replaces_gate(self) -> bool:
        return self.options.replaces_gate

    @property
    def explains(self) -> bool:
        return self.options.explain

    def advise(
        self,
        item: pytest.Item,
        layers: Sequence[Layer],
        settings: MeasureSettings,
        workload: Callable[[], Any],
        label: str,
        progress: Callable[[str], None] | None = None,
    ) -> TestResult | None:
        """Sweep and tune ``workload`` (when asked), then explain it; returns the last measurement made."""
        last: TestResult | None = None

        def measure_at(point: MeasureSettings, point_label: str) -> TestResult:
            nonlocal last
            last = self.measure(item, point, workload, point_label)
            return last

        if self.options.sweep:
            sweep = run_sweep(
                label, self.options.sweep, lambda top: resolve((top, *layers)), measure_at, progress=progress
            )
            self.sweeps.append(sweep)
        if self.options.tune:
            self.tunings.append(tune(label, settings, measure_at, time_cap=self.options.tune_time, progress=progress))
        if self.options.explain:
            self.explain(item, settings, workload, label, None, progress)
        return last

    def explain(
        self,
        item: pytest.Item,
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
            lambda point, point_label: self.measure(item, point, workload, point_label),
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
        write_text_file(path, sweep_page(self.sweeps))


class AdvicePlugin:
    """Builds the session's advisor when the session asks; prints its summary (after the verdict table)
    and writes its chart file."""

    def __init__(self, options: AdviceOptions, router: ArmRouter) -> None:
        self.options = options
        self.router = router
        self.advisor: Advisor | None = None
        self.errors: list[str] = []

    def advisor_for(self, measure: Measurer) -> Advisor:
        """The session's advisor, measuring through ``measure`` (the session's ungated measuring)."""
        self.advisor = Advisor(self.options, self.router, measure)
        return self.advisor

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.advisor is None or not self.advisor.found:
            return
        terminalreporter.write_sep("-", "otel-overhead advice")
        for line in self.advisor.summary_lines():
            terminalreporter.write_line(line)
        for line in self.errors:
            terminalreporter.write_line(line, red=True)

    def pytest_sessionfinish(self) -> None:
        if self.advisor is not None:
            try:
                self.advisor.write_chart()
            except OSError as error:  # outputs.OutputError: one line naming the file and the cause
                self.errors.append(f"ERROR {error}")
