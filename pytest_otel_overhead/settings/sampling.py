"""Settings of the plugin's own samplers, parsed without loading them: strategies, rate caps, load thresholds.

The samplers themselves (:mod:`pytest_otel_overhead.samplers`) need the OpenTelemetry SDK and psutil;
what users write to configure them is read here, with the standard library only, so that settings
can be checked in every pytest run, measuring or not. Each parser takes the raw value and its source
and raises a one-line :class:`SettingsError` naming that source, as :mod:`pytest_otel_overhead.units` does.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_otel_overhead.settings.defaults import LOAD_BASE, LOAD_STEPS, STRATEGY_SAMPLERS, load_thresholds_text
from pytest_otel_overhead.units import SettingsError, parse_fraction
from pytest_otel_overhead.wire.form import form

__all__ = [
    "DEFAULT_LOAD_THRESHOLDS",
    "STRATEGY_SAMPLERS",
    "LoadThresholds",
    "Strategies",
    "load_strategies",
    "parse_load_thresholds",
    "parse_strategies",
    "parse_traces_per_second",
]


def parse_traces_per_second(value: object, source: str) -> float:
    """A positive number of traces per second: ``100``, ``"2.5"``."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removesuffix("/s"))
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise SettingsError(f"{source}: {value!r} is not a number of traces per second; use e.g. 100 or 2.5")
    return number


@dataclass(frozen=True)
class Strategies:
    """Per-operation sampling rules: a probability per span name, a default, an optional rate cap."""

    default: float = 1.0
    operations: tuple[tuple[str, float], ...] = field(default=(), metadata=form(entries=True))
    """Probability per span name; written as an object."""
    max_traces_per_second: float | None = None
    source: str = ""

    def describe(self) -> str:
        cap = f", ≤{self.max_traces_per_second:g} traces/s" if self.max_traces_per_second is not None else ""
        return f"default {self.default:g}, {len(self.operations)} operation rule(s){cap}"


_STRATEGY_KEYS = {"default_strategy", "per_operation_strategies", "max_traces_per_second", "service_strategies"}
_RULE_KEYS = {"operation", "type", "param", "probability", "max_traces_per_second"}


def _probability(entry: object, where: str) -> float:
    """A bare probability, or ``{"type": "probabilistic", "param": p}`` (``probability`` also taken)."""
    if isinstance(entry, Mapping):
        kind = str(entry.get("type", "probabilistic")).strip().lower()
        if kind != "probabilistic":
            raise SettingsError(
                f"{where}: type {kind!r} is not supported here; use 'probabilistic' with 'param', "
                "and max_traces_per_second for a rate cap"
            )
        if "param" in entry:
            entry = entry["param"]
        elif "probability" in entry:
            entry = entry["probability"]
        else:
            raise SettingsError(f"{where}: needs 'param' (a probability from 0 to 1)")
    return parse_fraction(entry, where, what="a sampling probability")


def _operations(value: object, where: str) -> list[tuple[str, float]]:
    """``[{"operation": name, "type": "probabilistic", "param": p}, …]`` or ``{name: p, …}``."""
    if isinstance(value, Mapping):
        return [(str(name), _probability(p, f"{where}[{name!r}]")) for name, p in value.items()]
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{where}: expected a list of {{operation, type, param}} entries or a mapping")
    rules = []
    for index, entry in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or "operation" not in entry:
            raise SettingsError(f"{here}: expected {{'operation': NAME, 'type': 'probabilistic', 'param': P}}")
        unknown = set(entry) - _RULE_KEYS
        if unknown:
            raise SettingsError(f"{here}: unknown field(s) {', '.join(sorted(unknown))}")
        rules.append((str(entry["operation"]), _probability(entry, f"{here} ({entry['operation']})")))
    return rules


def parse_strategies(data: object, source: str, *, service: str | None = None) -> Strategies:
    """Rules in the shape of the tuning guide's ``per_operation_strategies`` (see docs/tuning.md).

    ``{"default_strategy": {"type": "probabilistic", "param": 0.1}, "max_traces_per_second": 100,
    "per_operation_strategies": [{"operation": "GET /health", "type": "probabilistic", "param": 0.01}]}``;
    a bare number for the default and a ``{name: probability}`` mapping for the operations are taken
    too, as are Jaeger's ``operation_strategies`` inside ``default_strategy``, a top-level ``sampling``
    wrapper, and ``service_strategies`` entries (the one whose ``service`` matches ``service``, or
    ``$OTEL_SERVICE_NAME``, overrides the top level).
    """
    if isinstance(data, Mapping) and set(data) == {"sampling"}:
        data = data["sampling"]
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source}: sampling strategies must be a mapping with per_operation_strategies")
    unknown = set(data) - _STRATEGY_KEYS
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise SettingsError(f"{source}: unknown field(s) {names}; known: {', '.join(sorted(_STRATEGY_KEYS))}")
    default = 1.0
    operations: dict[str, float] = {}
    cap: float | None = None

    def apply(section: Mapping[str, Any], where: str) -> None:
        nonlocal default, cap
        strategy = section.get("default_strategy")
        if strategy is not None:
            default = _probability(strategy, f"{where} default_strategy")
            if isinstance(strategy, Mapping) and "operation_strategies" in strategy:
                operations.update(_operations(strategy["operation_strategies"], f"{where} operation_strategies"))
        if "per_operation_strategies" in section:
            operations.update(_operations(section["per_operation_strategies"], f"{where} per_operation_strategies"))
        if section.get("max_traces_per_second") is not None:
            cap = parse_traces_per_second(section["max_traces_per_second"], f"{where} max_traces_per_second")

    apply(data, source)
    service = service if service is not None else os.environ.get("OTEL_SERVICE_NAME")
    services = data.get("service_strategies") or []
    if not isinstance(services, (list, tuple)):
        raise SettingsError(f"{source} service_strategies: expected a list of {{service, …}} entries")
    for index, entry in enumerate(services):
        if not isinstance(entry, Mapping) or "service" not in entry:
            raise SettingsError(f"{source} service_strategies[{index}]: needs a 'service' name")
        if service is not None and str(entry["service"]) == service:
            rest = {k: v for k, v in entry.items() if k != "service"}
            unknown = set(rest) - (_STRATEGY_KEYS - {"service_strategies"}) - {"type", "param"}
            if unknown:
                raise SettingsError(f"{source} service {service!r}: unknown field(s) {', '.join(sorted(unknown))}")
            if "param" in rest:  # Jaeger's flat form: the service's own probabilistic default
                rest["default_strategy"] = {"type": rest.pop("type", "probabilistic"), "param": rest.pop("param")}
            apply(rest, f"{source} service {service!r}")
    return Strategies(default=default, operations=tuple(operations.items()), max_traces_per_second=cap, source=source)


def load_strategies(value: object, source: str) -> Strategies:
    """Strategies from a mapping (a marker kwarg), inline JSON text, or a JSON / YAML file path.

    Relative paths are taken from the current directory.
    """
    if isinstance(value, Strategies):
        return value
    if isinstance(value, Mapping):
        return parse_strategies(value, source)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{source}: {value!r} is not sampling strategies; give a JSON or YAML file path")
    text = value.strip()
    if text.startswith("{"):
        try:
            return parse_strategies(json.loads(text), source)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{source}: inline strategies are not valid JSON: {error}") from None
    path = Path(text).expanduser()
    where = f"{source}: {path}"
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as error:  # ValueError: a NUL in the path
        reason = getattr(error, "strerror", None) or str(error).splitlines()[0]
        raise SettingsError(f"{source}: cannot read the strategies file {path}: {reason}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            yaml = importlib.import_module("yaml")
        except ImportError:
            raise SettingsError(
                f"{where}: reading YAML needs PyYAML; pip install 'pytest-otel-overhead[yaml]' or use JSON"
            ) from None
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise SettingsError(f"{where}: not valid YAML: {str(error).splitlines()[0]}") from None
    else:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise SettingsError(f"{where}: not valid JSON: {error}") from None
    return parse_strategies(data, where)


@dataclass(frozen=True)
class LoadThresholds:
    """Probability by load: the first threshold the load exceeds picks its rate; below all, ``base``."""

    steps: tuple[tuple[float, float], ...] = LOAD_STEPS
    base: float = LOAD_BASE

    def rate(self, load: float) -> float:
        for threshold, rate in self.steps:
            if load > threshold:
                return rate
        return self.base

    def describe(self) -> str:
        return ", ".join(f">{t * 100:g}%: {r:g}" for t, r in self.steps) + f", else {self.base:g}"

    def as_text(self) -> str:
        return load_thresholds_text(self.steps, self.base)


DEFAULT_LOAD_THRESHOLDS = LoadThresholds()


def parse_load_thresholds(value: object, source: str) -> LoadThresholds:
    """``"80%:0.05, 60%:0.1, 0.2"``: LOAD:RATE pairs, then the rate below every threshold (default 0.2).

    A mapping ``{"80%": 0.05, "60%": 0.1, "else": 0.2}`` is taken too (from a marker).
    """
    if isinstance(value, LoadThresholds):
        return value
    items: list[tuple[str, object]] = []
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, str) and value.strip():
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            threshold, sep, rate_text = part.partition(":")
            items.append((threshold.strip(), rate_text.strip()) if sep else ("else", threshold.strip()))
    else:
        raise SettingsError(f"{source}: {value!r} is not load thresholds; use e.g. '80%:0.05,60%:0.1,0.2'")
    steps: list[tuple[float, float]] = []
    base = DEFAULT_LOAD_THRESHOLDS.base
    for threshold, rate in items:
        parsed_rate = parse_fraction(rate, source, what="a sampling rate")
        if threshold.lower() in ("else", "base", "default", "*"):
            base = parsed_rate
        else:
            steps.append((parse_fraction(threshold, source, what="a load threshold"), parsed_rate))
    if not steps:
        raise SettingsError(f"{source}: {value!r} has no LOAD:RATE threshold; use e.g. '80%:0.05,60%:0.1,0.2'")
    if len({t for t, _ in steps}) != len(steps):
        raise SettingsError(f"{source}: {value!r} names a load threshold twice")
    return LoadThresholds(tuple(sorted(steps, reverse=True)), base)
