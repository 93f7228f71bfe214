"""The settings records hold the defaults, say where each value came from as a typed source, and keep
their choices as enums that read, compare and serialise as the text they were."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_otel_overhead.reports.terminal import budget_origin
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.origin import DEFAULT_SOURCE, Source, SourceKind, as_source
from pytest_otel_overhead.settings.records import (
    DEFAULT_BUDGET,
    InconclusivePolicy,
    MeasureSettings,
    Mode,
    NoTelemetryPolicy,
    PipelineSettings,
)
from pytest_otel_overhead.settings.sampling import LoadThresholds, Strategies
from pytest_otel_overhead.settings.sources import cli_layer, ini_layer, marker_layer
from pytest_otel_overhead.units import Budget
from pytest_otel_overhead.wire import transport
from pytest_otel_overhead.wire.checks import Malformed
from pytest_otel_overhead.wire.document import from_document


def test_nothing_set_resolves_to_the_records_defaults() -> None:
    assert resolve([Layer({})]) == MeasureSettings()
    assert MeasureSettings().budgets == (("cpu", DEFAULT_BUDGET),)


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("batch_size", f"(default {PipelineSettings.batch_size})"),
        ("queue_size", f"(default {PipelineSettings.queue_size})"),
        ("schedule_delay", f"(default {PipelineSettings.schedule_delay_ms:g})"),
        ("max_time", f"(default {MeasureSettings.max_time:g} s)"),
        ("inconclusive", f"{MeasureSettings.inconclusive} (default)"),
        ("processor", f"{PipelineSettings.processor} (default)"),
    ],
)
def test_the_help_text_states_the_records_default(key: str, default: str) -> None:
    assert default in KEYS[key].help


def test_each_layer_pytest_builds_names_its_kind() -> None:
    ini = {"otel_overhead_batch_size": "128"}
    config: Any = SimpleNamespace(
        getoption={"otel_overhead_queue_size": "4096"}.get, getini=lambda name: ini.get(name, ""), inipath=None
    )
    marked: Any = SimpleNamespace(
        nodeid="t.py::test_x", iter_markers=lambda name: [pytest.mark.otel_overhead(budget="10%").mark]
    )
    env = env_layer({"OTEL_BSP_EXPORT_TIMEOUT": "9"})
    settings = resolve([marker_layer(marked), cli_layer(config), ini_layer(config), env])
    kinds = {key: settings.source(key).kind for key in ("cpu", "queue_size", "batch_size", "export_timeout", "mode")}
    assert kinds == {
        "cpu": SourceKind.MARKER,
        "queue_size": SourceKind.COMMAND_LINE,
        "batch_size": SourceKind.INI,
        "export_timeout": SourceKind.ENVIRONMENT,
        "mode": SourceKind.DEFAULT,
    }
    assert settings.source("cpu") == "marker on t.py::test_x"


def test_a_profiles_values_name_the_profile_as_their_kind() -> None:
    settings = resolve([Layer.parse({"profile": "staging"}, lambda key: "--otel-overhead-profile")])
    assert settings.source("batch_size").kind is SourceKind.PROFILE


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("default", SourceKind.DEFAULT),
        ("marker on t.py::t", SourceKind.MARKER),
        ("--otel-overhead-budget", SourceKind.COMMAND_LINE),
        ("ini otel_overhead_budget in tox.ini", SourceKind.INI),
        ("$OTEL_BSP_MAX_QUEUE_SIZE", SourceKind.ENVIRONMENT),
        ("profile low (--otel-overhead-profile)", SourceKind.PROFILE),
        ("--otel-overhead-sweep batch_size", SourceKind.COMMAND_LINE),
        ("docs/otlp_cost.py", SourceKind.OTHER),
    ],
)
def test_text_read_back_from_a_saved_run_gets_its_kind(text: str, kind: SourceKind) -> None:
    assert as_source(text).kind is kind
    assert MeasureSettings(sources=(("cpu", text),)).source("cpu").kind is kind


def test_the_kind_not_the_text_makes_a_budget_come_from_the_marker() -> None:
    assert budget_origin(Source("marker on t.py::t", SourceKind.MARKER)) == "marker"
    assert budget_origin(Source("marker on t.py::t", SourceKind.OTHER)) == "marker on t.py::t"
    assert budget_origin(DEFAULT_SOURCE) == "default"


def test_a_source_is_its_text_and_survives_a_copy_between_processes() -> None:
    source = Source("--otel-overhead-budget", SourceKind.COMMAND_LINE)
    copied = pickle.loads(pickle.dumps(source))
    assert copied == "--otel-overhead-budget" and copied.kind is SourceKind.COMMAND_LINE
    assert json.dumps({"cpu": source}) == '{"cpu": "--otel-overhead-budget"}'


def test_choices_are_enums_that_read_and_serialise_as_their_text() -> None:
    layer = Layer.parse({"mode": "Instructions", "inconclusive": "fail", "no_telemetry": "ignore"}, lambda key: "t")
    settings = resolve([layer])
    assert settings.mode is Mode.INSTRUCTIONS and settings.mode == "instructions"
    assert settings.inconclusive is InconclusivePolicy.FAIL and settings.inconclusive == "fail"
    assert settings.no_telemetry is NoTelemetryPolicy.IGNORE and f"{settings.no_telemetry}" == "ignore"
    data = settings.as_dict()
    assert [type(data[key]) for key in ("mode", "inconclusive", "no_telemetry")] == [str, str, str]
    assert json.loads(json.dumps(data))["mode"] == "instructions"
    assert {"instructions": 1}[settings.mode] == 1  # hashes as its text, so text-keyed tables still find it
    assert transport.from_json(MeasureSettings, transport.to_json(settings)) == settings


# -- the document form: written and read through wire.document, as the result records are ----------


def _every_field_set() -> MeasureSettings:
    pipeline = PipelineSettings(
        sampler="per_operation",
        sample_rate=0.5,
        strategies=Strategies(0.5, (("GET /", 0.1), ("x", 1.0)), 10.0, "file.json"),
        max_traces_per_second=5.0,
        load_thresholds=LoadThresholds(((0.9, 0.01),), 0.5),
        endpoint="http://collector:4318",
        compression="gzip",
        instrument=("opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor",),
        max_dropped=4,
    )
    return MeasureSettings(
        pipeline=pipeline,
        metric="wall",
        max_time=7.5,
        inconclusive=InconclusivePolicy.FAIL,
        profile="staging",
        mode=Mode.INSTRUCTIONS,
        processes=3,
        no_telemetry=NoTelemetryPolicy.IGNORE,
        budgets=(("cpu", Budget("absolute", 5e-05)), ("wall", Budget("relative", 0.1))),
        sources=(("cpu", "marker on t.py::t"), ("processes", "--otel-overhead-processes")),
    )


def test_a_settings_record_reads_back_as_it_was_written() -> None:
    settings = _every_field_set()
    document = json.loads(json.dumps(settings.as_dict(), allow_nan=False))
    again = from_document(MeasureSettings, document)
    assert again == settings
    assert again.mode is Mode.INSTRUCTIONS and again.no_telemetry is NoTelemetryPolicy.IGNORE


def test_the_pipeline_stands_among_the_settings_and_pairs_are_objects() -> None:
    document = _every_field_set().as_dict()
    assert "pipeline" not in document and document["sampler"] == "per_operation" and document["max_time_s"] == 7.5
    assert document["strategies"] == {
        "default": 0.5,
        "operations": {"GET /": 0.1, "x": 1.0},
        "max_traces_per_second": 10.0,
        "source": "file.json",
    }
    assert document["load_thresholds"] == "90%:0.01,0.5"
    assert document["budgets"] == {
        "cpu": {"kind": "absolute", "value": 5e-05},
        "wall": {"kind": "relative", "value": 0.1},
    }
    assert document["sources"] == {"cpu": "marker on t.py::t", "processes": "--otel-overhead-processes"}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("mode", "cycles", "mode: 'cycles' is not a mode (time, instructions)"),
        ("no_telemetry", "loud", "no_telemetry: 'loud' is not a notelemetrypolicy (warn, fail, ignore)"),
        ("load_thresholds", "high", "load_thresholds: as written: 'high' is not a sampling rate"),
        ("budgets", {"cpu": {"kind": "more", "value": 0.1}}, "budgets.cpu.kind: 'more' is not a budget kind"),
        ("batch_size", -1, "batch_size: -1 is not a count"),
    ],
)
def test_a_settings_value_that_does_not_fit_names_its_field(key: str, value: object, expected: str) -> None:
    document = MeasureSettings().as_dict()
    document[key] = value
    with pytest.raises(Malformed) as caught:
        from_document(MeasureSettings, document)
    assert str(caught.value).startswith(expected)
