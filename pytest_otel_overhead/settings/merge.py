"""The merge rules: layers of settings, highest precedence first, resolved into one record.

Precedence is marker > CLI > ini > environment > defaults; what no layer sets keeps the default of
its field in :mod:`~pytest_otel_overhead.settings.records`. Values that must agree are checked
here, each error naming where the values came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from pytest_otel_overhead.settings.keys import KEYS, RATIO_SAMPLERS, SAMPLER_ARG_KEYS
from pytest_otel_overhead.settings.layers import SAMPLER_ARG_SOURCE, Layer, profile_layer
from pytest_otel_overhead.settings.origin import DEFAULT_SOURCE, Source, as_source
from pytest_otel_overhead.settings.pipeline import export_fields
from pytest_otel_overhead.settings.records import BUDGET_METRICS, DEFAULT_BUDGET, MeasureSettings, PipelineSettings
from pytest_otel_overhead.settings.sampling import LoadThresholds
from pytest_otel_overhead.units import Budget, SettingsError

__all__ = ["resolve", "with_overrides"]

# The ratio sampler a rate turns a non-ratio one into: root-only samplers stay root-only.
_RATIO_FORM = {"always_on": "traceidratio", "always_off": "traceidratio"}
# A rate from OTEL_TRACES_SAMPLER_ARG only parameterises a ratio sampler, as in the OTel spec;
# every other source of a rate also selects the ratio sampler when none is named.
_SPEC_ONLY_RATE_VARS = ("OTEL_TRACES_SAMPLER_ARG",)


def _pick(layers: Iterable[Layer], key: str) -> tuple[Any, str] | None:
    for layer in layers:
        if key in layer.values:
            return layer.values[key]
    return None


def _rank(layers: Sequence[Layer], key: str) -> int:
    """Index of the highest layer that sets ``key`` (lower is higher precedence); past the end if none."""
    return next((index for index, layer in enumerate(layers) if key in layer.values), len(layers))


def _with_profile(layers: Sequence[Layer]) -> list[Layer]:
    """Insert the highest-precedence profile's values just below the layer that names it."""
    for index, layer in enumerate(layers):
        if "profile" in layer.values:
            name, named_by = layer.values["profile"]
            return [*layers[: index + 1], profile_layer(name, named_by), *layers[index + 1 :]]
    return list(layers)


def _strategy_fields(
    sampler: str, chosen_value: Callable[[str, Any], Any], source: Callable[[str], Source]
) -> dict[str, Any]:
    """Pipeline fields of the plugin's own samplers; each one's required setting must be there."""

    def value(key: str, default: Any) -> Any:
        # $OTEL_TRACES_SAMPLER_ARG parameterises only the sampler $OTEL_TRACES_SAMPLER names, as for rates.
        if source(key) == SAMPLER_ARG_SOURCE and SAMPLER_ARG_KEYS.get(sampler) != key:
            return default
        return chosen_value(key, default)

    fields: dict[str, Any] = {"load_refresh_ms": value("load_refresh", PipelineSettings.load_refresh_ms)}
    if sampler == "per_operation":
        if value("strategies", None) is None:
            raise SettingsError(
                f"{source('sampler')}: sampler 'per_operation' needs strategies, e.g. strategies='sampling.json'"
            )
        fields["strategies"] = value("strategies", None)
    if sampler in ("per_operation", "rate_limiting"):
        fields["max_traces_per_second"] = value("max_traces_per_second", None)
        if sampler == "rate_limiting" and fields["max_traces_per_second"] is None:
            raise SettingsError(f"{source('sampler')}: sampler 'rate_limiting' needs max_traces_per_second, e.g. 100")
    if sampler == "load_adaptive":
        fields["load_thresholds"] = value("load_thresholds", LoadThresholds())
    return fields


class _Chosen:
    """The value of each key from the highest layer that sets it, with its source."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        self.values: dict[str, tuple[Any, str]] = {}
        for key in KEYS:
            picked = _pick(layers, key)
            if picked is not None:
                self.values[key] = picked

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def value(self, key: str, default: Any) -> Any:
        return self.values[key][0] if key in self.values else default

    def source(self, key: str) -> Source:
        return as_source(self.values[key][1]) if key in self.values else DEFAULT_SOURCE


def resolve(layers: Sequence[Layer]) -> MeasureSettings:
    """Merge layers (highest precedence first) into settings, checking values that must agree.

    A profile named in a layer expands into a layer of its own just below that one. What no layer
    sets keeps the records' defaults.
    """
    layers = _with_profile(layers)
    chosen = _Chosen(layers)
    sampler, rate = _sampler_and_rate(layers, chosen)
    pipeline = _pipeline(sampler, rate, chosen)
    defaults = MeasureSettings
    metric = chosen.value("metric", defaults.metric)
    budgets, sources = _budgets(layers, chosen, metric)
    return MeasureSettings(
        pipeline=pipeline,
        budgets=budgets,
        metric=metric,
        max_time=chosen.value("max_time", defaults.max_time),
        confidence=chosen.value("confidence", defaults.confidence),
        inconclusive=chosen.value("inconclusive", defaults.inconclusive),
        sources=tuple(sorted(sources.items())),
        profile=chosen.value("profile", defaults.profile),
        mode=chosen.value("mode", defaults.mode),
        processes=chosen.value("processes", defaults.processes),
        process_term=chosen.value("calibration", defaults.process_term),
        no_telemetry=chosen.value("no_telemetry", defaults.no_telemetry),
        failed_exports=chosen.value("failed_exports", defaults.failed_exports),
    )


def _sampler_and_rate(layers: Sequence[Layer], chosen: _Chosen) -> tuple[str, float | None]:
    """The sampler, named or implied by the settings given, and the rate if it is a ratio sampler.

    A rate that overrides a named sampler is recorded in ``chosen`` as the sampler's source.
    """
    sampler = chosen.value("sampler", None)
    rate = chosen.value("sample_rate", None)
    rate_source = chosen.source("sample_rate")
    selects_ratio = rate is not None and not any(var in rate_source for var in _SPEC_ONLY_RATE_VARS)
    if sampler is None:
        # A setting that only one of the plugin's samplers uses selects that sampler.
        implied = next((name for name, key in SAMPLER_ARG_KEYS.items() if key in chosen), None)
        sampler = implied or ("parentbased_traceidratio" if selects_ratio else PipelineSettings.sampler)
    elif sampler not in RATIO_SAMPLERS and selects_ratio and _rank(layers, "sample_rate") < _rank(layers, "sampler"):
        # A rate set above the sampler's layer wins, as precedence says (a marker's rate over
        # $OTEL_TRACES_SAMPLER): it selects a ratio sampler, as a rate alone does.
        sampler = _RATIO_FORM.get(sampler, "parentbased_traceidratio")
        chosen.values["sampler"] = (sampler, rate_source)
    if sampler in RATIO_SAMPLERS:
        return sampler, 1.0 if rate is None else rate
    if rate is not None:
        _check_rate_unused(layers, sampler, rate)
    # A rate does not apply to a non-ratio sampler chosen elsewhere, as in the OTel spec.
    return sampler, None


def _check_rate_unused(layers: Sequence[Layer], sampler: str, rate: float) -> None:
    """Reject a rate given alongside the non-ratio sampler it would be lost on."""
    for layer in layers:
        # Only a layer whose own sampler was chosen asked for a rate that now has no effect.
        if "sampler" in layer.values and "sample_rate" in layer.values and layer.values["sampler"][0] == sampler:
            rate_src = layer.values["sample_rate"][1]
            if not any(var in rate_src for var in _SPEC_ONLY_RATE_VARS):
                raise SettingsError(
                    f"{rate_src}: sample_rate={rate:g} has no effect with sampler {sampler!r}; "
                    f"use sampler='parentbased_traceidratio' or drop sample_rate"
                )


def _pipeline(sampler: str, rate: float | None, chosen: _Chosen) -> PipelineSettings:
    """The pipeline settings, checking that a batch fits in the queue."""
    defaults = PipelineSettings
    pipeline = PipelineSettings(
        sampler=sampler,
        sample_rate=rate,
        processor=chosen.value("processor", defaults.processor),
        batch_size=chosen.value("batch_size", defaults.batch_size),
        schedule_delay_ms=chosen.value("schedule_delay", defaults.schedule_delay_ms),
        queue_size=chosen.value("queue_size", defaults.queue_size),
        export_timeout_ms=chosen.value("export_timeout", defaults.export_timeout_ms),
        **_strategy_fields(sampler, chosen.value, chosen.source),
        **export_fields(chosen.value, chosen.source),
    )
    if pipeline.processor == "batch" and pipeline.batch_size > pipeline.queue_size:
        raise SettingsError(
            f"batch_size {pipeline.batch_size} ({chosen.source('batch_size')}) exceeds queue_size "
            f"{pipeline.queue_size} ({chosen.source('queue_size')}); a batch must fit in the queue"
        )
    return pipeline


def _budgets(
    layers: Sequence[Layer], chosen: _Chosen, metric: str
) -> tuple[tuple[tuple[str, Budget], ...], dict[str, str]]:
    """The budgets in ``BUDGET_METRICS`` order, and the source of every chosen value and budget."""
    budgets: dict[str, Budget] = {}
    sources = {key: src for key, (_, src) in chosen.values.items()}
    for name in BUDGET_METRICS:
        if name in chosen:
            budgets[name] = chosen.values[name][0]
    # 'budget' is the gate metric's budget; the more precise of the two wins when they share a layer.
    for layer in layers:
        generic = layer.values.get("budget")
        specific = layer.values.get(metric)
        if generic is None and specific is None:
            continue
        if generic is not None and specific is not None and generic[0] != specific[0]:
            raise SettingsError(f"{generic[1]}: budget and {metric} disagree; give only one of them")
        budgets[metric], sources[metric] = specific or generic  # type: ignore[misc]
        break
    else:
        budgets[metric] = DEFAULT_BUDGET
    return tuple((name, budgets[name]) for name in BUDGET_METRICS if name in budgets), sources


def with_overrides(settings: MeasureSettings, **pipeline: Any) -> MeasureSettings:
    """A copy with some pipeline fields replaced (used by sweeps and tools built on the plugin)."""
    return replace(settings, pipeline=replace(settings.pipeline, **pipeline))
