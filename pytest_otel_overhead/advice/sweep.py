"""Sweeps: one test measured over a grid of pipeline settings.

``--otel-overhead-sweep "sample_rate=0.01,0.05,0.1" "batch_size=128,512"`` measures each marked test
at every combination. A grid point is a settings layer above the test's own layers (marker, CLI,
ini, environment), so it overrides them and goes through the same checks: a batch larger than the
queue is an error before anything is measured, and a profile can be swept like any setting. The
records of a sweep, its table, chart and page are in :mod:`pytest_otel_overhead.reports.sweep`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from pytest_otel_overhead.reports.sweep import SweepAxis, SweepPoint, SweepResult
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.keys import KEYS, RATIO_SAMPLERS
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.units import SettingsError

__all__ = ["NOT_SWEEPABLE", "SOURCE", "grid", "parse_sweep", "point_layers", "run_sweep"]

# What a sweep varies is the pipeline; budgets and limits say how it is judged, not what it is.
NOT_SWEEPABLE = frozenset(
    {"budget", "cpu", "wall", "latency_p50", "latency_p95", "latency_p99", "heap", "metric", "max_time", "inconclusive"}
)
SOURCE = "--otel-overhead-sweep"


def parse_sweep(specs: Sequence[str], source: str = SOURCE) -> tuple[SweepAxis, ...]:
    """``KEY=V1,V2,…`` per spec (values split on ``;`` instead when any is present)."""
    axes: list[SweepAxis] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise SettingsError(
                f"{source}: {spec!r} is not KEY=V1,V2,…; give test paths before {SOURCE}, or repeat the flag"
            )
        if key not in KEYS:
            raise SettingsError(f"{source}: unknown setting {key!r}; sweep one of {', '.join(_sweepable())}")
        if key in NOT_SWEEPABLE:
            raise SettingsError(
                f"{source}: {key} says how a point is judged, not what it measures; sweep one of "
                f"{', '.join(_sweepable())}"
            )
        if any(axis.key == key for axis in axes):
            raise SettingsError(f"{source}: {key} is swept twice; give all its values in one spec")
        separator = ";" if ";" in text else ","
        labels = tuple(dict.fromkeys(part.strip() for part in text.split(separator) if part.strip()))
        if not labels:
            raise SettingsError(f"{source}: {key}= has no values")
        values = tuple(KEYS[key].parse(label, f"{source} {key}") for label in labels)
        axes.append(SweepAxis(key, values, labels))
    return tuple(axes)


def _sweepable() -> list[str]:
    return [key for key in KEYS if key not in NOT_SWEEPABLE]


def grid(axes: Sequence[SweepAxis]) -> list[tuple[tuple[tuple[str, str], ...], dict[str, object]]]:
    """Every combination: ((key, label), …) and {key: parsed value}."""
    points = []
    for combination in itertools.product(*(range(len(axis.values)) for axis in axes)):
        labels = tuple((axis.key, axis.labels[i]) for axis, i in zip(axes, combination, strict=True))
        values = {axis.key: axis.values[i] for axis, i in zip(axes, combination, strict=True)}
        points.append((labels, values))
    return points


def point_layers(
    axes: Sequence[SweepAxis], settings_at: Callable[[Layer], MeasureSettings], source: str = SOURCE
) -> list[tuple[tuple[tuple[str, str], ...], MeasureSettings]]:
    """Settings of every grid point, all checked before anything is measured.

    A swept rate with no swept sampler also selects the ratio sampler, so the points differ by the
    rate even when the test's own sampler takes none.
    """
    points = []
    for labels, values in grid(axes):
        layer_values = {key: (value, f"{source} {key}") for key, value in values.items()}
        settings = settings_at(Layer(layer_values))
        if "sample_rate" in values and "sampler" not in values and settings.pipeline.sampler not in RATIO_SAMPLERS:
            layer_values["sampler"] = ("parentbased_traceidratio", f"{source} sample_rate")
            settings = settings_at(Layer(layer_values))
        points.append((labels, settings))
    return points


def run_sweep(
    nodeid: str,
    axes: Sequence[SweepAxis],
    settings_at: Callable[[Layer], MeasureSettings],
    measure_at: Callable[[MeasureSettings, str], TestResult],
    progress: Callable[[str], None] | None = None,
) -> SweepResult:
    """Measure the workload at every grid point; ``measure_at(settings, label)`` runs one measurement."""
    say = progress or (lambda message: None)
    planned = point_layers(axes, settings_at)
    gate_settings = settings_at(Layer({}))
    points = []
    for index, (labels, settings) in enumerate(planned, 1):
        text = ", ".join(f"{k}={v}" for k, v in labels)
        say(f"sweep point {index}/{len(planned)}: {text}")
        result = measure_at(settings, f"{nodeid}[{text}]")
        points.append(SweepPoint(labels, result))
    return SweepResult(
        nodeid=nodeid,
        axes=tuple(axes),
        metric=gate_settings.metric,
        budget=gate_settings.budget(gate_settings.metric),
        points=tuple(points),
    )
