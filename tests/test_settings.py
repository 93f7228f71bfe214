"""Layered settings: marker > CLI > ini > environment > defaults, each value keeping its source."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.settings.keys import KEYS, check_keys
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve, with_overrides
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.settings.sources import cli_layer, ini_layer, marker_layer, option_name
from pytest_otel_overhead.units import Budget, SettingsError

NODEID = "tests/test_shop.py::test_checkout"
MARKER_SOURCE = f"marker on {NODEID}"


def marker(**values: object) -> Layer:
    return Layer.parse(values, lambda key: MARKER_SOURCE, name_keys=True)


def cli(**values: object) -> Layer:
    return Layer.parse(values, option_name)


def ini(**values: object) -> Layer:
    return Layer.parse(values, lambda key: f"ini otel_overhead_{key} in tox.ini")


def env(**variables: str) -> Layer:
    return env_layer(variables)


# --- defaults ----------------------------------------------------------------------------------


def test_defaults_follow_the_otel_sdk_and_a_five_percent_cpu_budget() -> None:
    settings = resolve([Layer({}), env()])
    assert settings.pipeline == PipelineSettings()
    assert settings.pipeline.sampler == "parentbased_always_on"
    assert settings.pipeline.sample_rate is None
    assert (settings.pipeline.batch_size, settings.pipeline.queue_size) == (512, 2048)
    assert settings.pipeline.schedule_delay_ms == 5000.0
    assert settings.pipeline.export_timeout_ms == 30000.0
    assert settings.budgets == (("cpu", Budget("relative", 0.05)),)
    assert settings.metric == "cpu"
    assert settings.max_time == 30.0
    assert settings.inconclusive == "warn"
    assert settings.source("queue_size") == "default"
    assert settings.source("cpu") == "default"


# --- precedence --------------------------------------------------------------------------------

LAYER_BUILDERS = {
    "marker": (marker, MARKER_SOURCE),
    "cli": (cli, "--otel-overhead-queue-size"),
    "ini": (ini, "ini otel_overhead_queue_size in tox.ini"),
}


@given(
    present=st.fixed_dictionaries(
        {},
        optional={
            "marker": st.integers(1000, 1999),
            "cli": st.integers(2000, 2999),
            "ini": st.integers(3000, 3999),
            "env": st.integers(4000, 4999),
        },
    )
)
def test_the_highest_layer_that_sets_a_value_wins_and_is_named_as_its_source(present: dict[str, int]) -> None:
    layers = []
    for name in ("marker", "cli", "ini"):
        build, _ = LAYER_BUILDERS[name]
        layers.append(build(queue_size=present[name]) if name in present else Layer({}))
    layers.append(env(OTEL_BSP_MAX_QUEUE_SIZE=str(present["env"])) if "env" in present else env())
    settings = resolve(layers)
    winner = next((name for name in ("marker", "cli", "ini", "env") if name in present), None)
    if winner is None:
        assert settings.pipeline.queue_size == 2048
        assert settings.source("queue_size") == "default"
    else:
        assert settings.pipeline.queue_size == present[winner]
        expected = "$OTEL_BSP_MAX_QUEUE_SIZE" if winner == "env" else LAYER_BUILDERS[winner][1]
        assert settings.source("queue_size") == expected


def test_precedence_holds_per_key_not_per_layer() -> None:
    settings = resolve(
        [
            marker(batch_size=64),
            cli(queue_size="1024"),
            ini(processor="simple", exporter="memory"),
            env(OTEL_BSP_SCHEDULE_DELAY="250", OTEL_BSP_MAX_QUEUE_SIZE="4096", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="32"),
        ]
    )
    p = settings.pipeline
    assert (p.batch_size, p.queue_size, p.processor, p.exporter, p.schedule_delay_ms) == (
        64,
        1024,
        "simple",
        "memory",
        250,
    )
    assert settings.source("batch_size") == MARKER_SOURCE
    assert settings.source("queue_size") == "--otel-overhead-queue-size"
    assert settings.source("processor") == "ini otel_overhead_processor in tox.ini"
    assert settings.source("schedule_delay") == "$OTEL_BSP_SCHEDULE_DELAY"


def test_the_marker_budget_beats_a_cpu_budget_from_the_command_line() -> None:
    settings = resolve([marker(budget="20%"), cli(cpu="5%"), ini(), env()])
    assert settings.budget("cpu") == Budget("relative", 0.20)
    assert settings.source("cpu") == MARKER_SOURCE


def test_a_cpu_budget_in_the_marker_beats_a_generic_budget_on_the_command_line() -> None:
    settings = resolve([marker(cpu="7%"), cli(budget="5%")])
    assert settings.budget("cpu") == Budget("relative", 0.07)


def test_budget_and_its_metric_in_one_layer_must_agree() -> None:
    assert resolve([marker(budget="5%", cpu=0.05)]).budget("cpu") == Budget("relative", 0.05)
    with pytest.raises(SettingsError, match=re.escape(MARKER_SOURCE) + ": budget and cpu disagree"):
        resolve([marker(budget="5%", cpu="10%")])


def test_metric_wall_moves_the_generic_budget_to_wall_time() -> None:
    settings = resolve([marker(metric="wall"), cli(budget="8%")])
    assert settings.metric == "wall"
    assert settings.budget("wall") == Budget("relative", 0.08)
    assert settings.budget("cpu") is None
    assert settings.source("wall") == "--otel-overhead-budget"


def test_metric_wall_without_a_budget_gets_the_default_five_percent() -> None:
    settings = resolve([marker(metric="wall")])
    assert settings.budgets == (("wall", Budget("relative", 0.05)),)


def test_extra_budgets_are_kept_with_their_units() -> None:
    settings = resolve([marker(heap="2MiB", latency_p99="50ms", wall="10%")])
    assert settings.budget("heap") == Budget("absolute", 2 * 1024**2)
    assert settings.budget("latency_p99") == Budget("absolute", 0.05)
    assert settings.budget("wall") == Budget("relative", 0.10)
    assert settings.budget("cpu") == Budget("relative", 0.05)
    assert [name for name, _ in settings.budgets] == ["cpu", "wall", "latency_p99", "heap"]


# --- sampler and rate --------------------------------------------------------------------------


def test_a_rate_alone_selects_the_parent_based_ratio_sampler() -> None:
    settings = resolve([marker(sample_rate="10%")])
    assert settings.pipeline.sampler == "parentbased_traceidratio"
    assert settings.pipeline.sample_rate == pytest.approx(0.1)


def test_the_tuning_guide_rate_variable_selects_the_ratio_sampler() -> None:
    settings = resolve([env(OTEL_TRACING_SAMPLE_RATE="0.01")])
    assert settings.pipeline.sampler == "parentbased_traceidratio"
    assert settings.pipeline.sample_rate == pytest.approx(0.01)
    assert settings.source("sample_rate") == "$OTEL_TRACING_SAMPLE_RATE"


def test_otel_traces_sampler_arg_alone_does_not_select_a_ratio_sampler() -> None:
    settings = resolve([env(OTEL_TRACES_SAMPLER_ARG="0.25")])
    assert settings.pipeline.sampler == "parentbased_always_on"
    assert settings.pipeline.sample_rate is None


@pytest.mark.parametrize("sampler", ["traceidratio", "parentbased_traceidratio"])
def test_otel_traces_sampler_arg_parameterises_a_ratio_sampler(sampler: str) -> None:
    settings = resolve([env(OTEL_TRACES_SAMPLER=sampler, OTEL_TRACES_SAMPLER_ARG="0.25")])
    assert settings.pipeline.sampler == sampler
    assert settings.pipeline.sample_rate == pytest.approx(0.25)


def test_otel_traces_sampler_arg_is_ignored_by_a_non_ratio_sampler_as_in_the_spec() -> None:
    settings = resolve([env(OTEL_TRACES_SAMPLER="always_on", OTEL_TRACES_SAMPLER_ARG="0.25")])
    assert settings.pipeline.sampler == "always_on"
    assert settings.pipeline.sample_rate is None


def test_otel_traces_sampler_arg_serves_a_ratio_sampler_named_in_the_marker() -> None:
    settings = resolve([marker(sampler="traceidratio"), env(OTEL_TRACES_SAMPLER_ARG="0.5")])
    assert (settings.pipeline.sampler, settings.pipeline.sample_rate) == ("traceidratio", 0.5)


def test_a_ratio_sampler_without_a_rate_samples_everything() -> None:
    settings = resolve([env(OTEL_TRACES_SAMPLER="parentbased_traceidratio")])
    assert settings.pipeline.sample_rate == 1.0


def test_sampler_names_are_case_insensitive_in_the_environment() -> None:
    assert resolve([env(OTEL_TRACES_SAMPLER=" ALWAYS_OFF ")]).pipeline.sampler == "always_off"


def test_a_rate_next_to_a_non_ratio_sampler_in_one_layer_is_an_error_naming_it() -> None:
    with pytest.raises(SettingsError, match=re.escape(MARKER_SOURCE) + ": sample_rate=0.1 has no effect"):
        resolve([marker(sampler="always_on", sample_rate=0.1)])
    with pytest.raises(SettingsError, match=r"^\$OTEL_TRACING_SAMPLE_RATE: sample_rate=0.1 has no effect"):
        resolve([env(OTEL_TRACES_SAMPLER="always_on", OTEL_TRACING_SAMPLE_RATE="0.1")])


def test_a_non_ratio_sampler_in_a_higher_layer_overrides_a_rate_below_it() -> None:
    settings = resolve([marker(sampler="always_on"), cli(sample_rate="0.1")])
    assert (settings.pipeline.sampler, settings.pipeline.sample_rate) == ("always_on", None)


def test_a_rate_in_the_marker_is_not_silently_dropped_by_a_sampler_from_the_environment() -> None:
    # Precedence: the marker's rate wins over the environment's sampler and selects a ratio sampler.
    settings = resolve([marker(sample_rate=0.1), env(OTEL_TRACES_SAMPLER="parentbased_always_on")])
    assert settings.pipeline.sample_rate == pytest.approx(0.1)
    assert settings.pipeline.sampler == "parentbased_traceidratio"
    assert settings.source("sample_rate") == MARKER_SOURCE
    assert settings.source("sampler") == MARKER_SOURCE


@pytest.mark.parametrize(
    ("lower_sampler", "ratio_sampler"),
    [
        ("always_on", "traceidratio"),
        ("always_off", "traceidratio"),
        ("parentbased_always_off", "parentbased_traceidratio"),
        ("traceidratio", "traceidratio"),
    ],
)
def test_a_rate_above_the_sampler_selects_that_samplers_ratio_form(lower_sampler: str, ratio_sampler: str) -> None:
    settings = resolve([marker(), cli(sample_rate="5%"), ini(sampler=lower_sampler)])
    assert (settings.pipeline.sampler, settings.pipeline.sample_rate) == (ratio_sampler, pytest.approx(0.05))


def test_a_rate_above_a_strategy_sampler_wins_too() -> None:
    settings = resolve(
        [marker(sample_rate=0.2), env(OTEL_TRACES_SAMPLER="rate_limiting", OTEL_TRACES_SAMPLER_ARG="30")]
    )
    assert (settings.pipeline.sampler, settings.pipeline.sample_rate) == ("parentbased_traceidratio", 0.2)
    assert settings.pipeline.max_traces_per_second is None


def test_the_spec_sampler_arg_never_overrides_a_sampler() -> None:
    settings = resolve([env(OTEL_TRACES_SAMPLER_ARG="0.25"), ini(sampler="always_on")])
    assert (settings.pipeline.sampler, settings.pipeline.sample_rate) == ("always_on", None)


# --- environment variables ---------------------------------------------------------------------

ENV_CASES = [
    ("OTEL_TRACES_SAMPLER", "always_off", "sampler", "always_off"),
    ("OTEL_TRACING_SAMPLE_RATE", "5%", "sample_rate", 0.05),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128", "batch_size", 128),
    ("OTEL_TRACING_BATCH_SIZE", "128", "batch_size", 128),
    ("OTEL_BSP_SCHEDULE_DELAY", "250", "schedule_delay_ms", 250.0),
    ("OTEL_TRACING_BATCH_TIMEOUT", "5s", "schedule_delay_ms", 5000.0),
    ("OTEL_TRACING_BATCH_TIMEOUT", "1s", "schedule_delay_ms", 1000.0),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "4096", "queue_size", 4096),
    ("OTEL_TRACING_QUEUE_SIZE", "8192", "queue_size", 8192),
    ("OTEL_BSP_EXPORT_TIMEOUT", "10000", "export_timeout_ms", 10000.0),
]


@pytest.mark.parametrize(("variable", "raw", "attribute", "expected"), ENV_CASES)
def test_each_environment_variable_sets_its_pipeline_setting(
    variable: str, raw: str, attribute: str, expected: object
) -> None:
    settings = resolve([env(**{variable: raw})])
    assert getattr(settings.pipeline, attribute) == pytest.approx(expected)


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_TRACING_SAMPLE_RATE",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        "OTEL_TRACING_BATCH_SIZE",
        "OTEL_BSP_SCHEDULE_DELAY",
        "OTEL_TRACING_BATCH_TIMEOUT",
        "OTEL_BSP_MAX_QUEUE_SIZE",
        "OTEL_TRACING_QUEUE_SIZE",
        "OTEL_BSP_EXPORT_TIMEOUT",
    ],
)
def test_a_bad_value_in_any_variable_is_an_error_naming_the_variable(variable: str) -> None:
    with pytest.raises(SettingsError, match=rf"^\${variable}: 'abc' "):
        env_layer({variable: "abc"})


def test_empty_variables_are_ignored() -> None:
    assert env_layer({"OTEL_BSP_MAX_QUEUE_SIZE": "", "OTEL_TRACES_SAMPLER": "  "}).values == {}


def test_unrelated_variables_are_ignored() -> None:
    assert env_layer({"OTEL_SERVICE_NAME": "shop", "PATH": "/bin", "HOME": "/root"}).values == {}


def test_env_layer_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "777")
    assert env_layer().values["queue_size"] == (777, "$OTEL_BSP_MAX_QUEUE_SIZE")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "256"), ("OTEL_TRACING_BATCH_SIZE", "128")),
        (("OTEL_BSP_SCHEDULE_DELAY", "5000"), ("OTEL_TRACING_BATCH_TIMEOUT", "1s")),
        (("OTEL_BSP_MAX_QUEUE_SIZE", "2048"), ("OTEL_TRACING_QUEUE_SIZE", "4096")),
        (("OTEL_TRACING_SAMPLE_RATE", "0.1"), ("OTEL_TRACES_SAMPLER_ARG", "0.2")),
    ],
)
def test_two_variables_that_disagree_are_an_error_naming_both(first: tuple[str, str], second: tuple[str, str]) -> None:
    with pytest.raises(SettingsError) as info:
        env_layer(dict([first, second]))
    message = str(info.value)
    assert f"${first[0]}" in message
    assert f"${second[0]}" in message
    assert "disagrees" in message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("OTEL_BSP_SCHEDULE_DELAY", "5000"), ("OTEL_TRACING_BATCH_TIMEOUT", "5s")),
        (("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"), ("OTEL_TRACING_BATCH_SIZE", " 512 ")),
        (("OTEL_TRACING_SAMPLE_RATE", "0.3"), ("OTEL_TRACES_SAMPLER_ARG", "30%")),
    ],
)
def test_two_variables_that_agree_in_different_spellings_are_fine(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    layer = env_layer(dict([first, second]))
    assert len(layer.values) == 1


@pytest.mark.parametrize("value", ["true", "TRUE", " True "])
def test_otel_sdk_disabled_true_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_SDK_DISABLED=true"):
        env_layer({"OTEL_SDK_DISABLED": value})


@pytest.mark.parametrize("value", ["false", "1", "yes", ""])
def test_only_true_disables_the_sdk(value: str) -> None:
    env_layer({"OTEL_SDK_DISABLED": value})


# --- checks across settings --------------------------------------------------------------------


def test_a_batch_larger_than_the_queue_is_an_error_naming_both_sources() -> None:
    with pytest.raises(SettingsError) as info:
        resolve([marker(batch_size=4096), env(OTEL_BSP_MAX_QUEUE_SIZE="1024")])
    message = str(info.value)
    assert "batch_size 4096" in message and MARKER_SOURCE in message
    assert "queue_size 1024" in message and "$OTEL_BSP_MAX_QUEUE_SIZE" in message


def test_a_batch_larger_than_the_default_queue_names_the_default() -> None:
    with pytest.raises(SettingsError, match=r"batch_size 4096 \(--otel-overhead-batch-size\) .* 2048 \(default\)"):
        resolve([cli(batch_size="4096")])


def test_the_batch_limit_does_not_apply_to_the_simple_processor() -> None:
    settings = resolve([marker(processor="simple", batch_size=4096, queue_size=16)])
    assert settings.pipeline.processor == "simple"


def test_a_batch_equal_to_the_queue_is_fine() -> None:
    assert resolve([marker(batch_size=100, queue_size=100)]).pipeline.batch_size == 100


# --- keys and messages -------------------------------------------------------------------------


def test_unknown_marker_arguments_get_a_did_you_mean() -> None:
    with pytest.raises(
        SettingsError, match=re.escape(MARKER_SOURCE) + r": unknown argument 'budjet'; did you mean 'budget'\?"
    ):
        check_keys({"budjet": "5%"}, MARKER_SOURCE)
    with pytest.raises(SettingsError, match=r"unknown argument 'qsize'.*"):
        check_keys({"qsize": 3}, MARKER_SOURCE)


def test_an_unknown_argument_far_from_any_key_lists_the_known_ones() -> None:
    with pytest.raises(SettingsError, match="known: budget, cpu"):
        check_keys({"zzzzzz": 1}, MARKER_SOURCE)


JUNK_FOR_KEY: dict[str, object] = {
    "budget": "five",
    "cpu": "fast",
    "wall": -1,
    "latency_p50": "soon",
    "latency_p95": True,
    "latency_p99": "0%",
    "heap": "lots",
    "metric": "heap",
    "sampler": "jaeger_remote",
    "sample_rate": -1,
    "processor": "async",
    "batch_size": "many",
    "schedule_delay": "later",
    "queue_size": 0,
    "export_timeout": "-5s",
    "exporter": "otlp_via_pigeon",
    "max_time": "forever",
    "inconclusive": "maybe",
    "strategies": "no-such-strategies.json",
    "max_traces_per_second": "fast",
    "load_thresholds": "busy:0.1",
    "load_refresh": "often",
    "profile": "turbo",
    "mode": "cycles",
}


GENERIC_JUNK: tuple[object, ...] = ("%%junk%%", -1, 0, True, "", object(), [1, 2], "-5s")


@pytest.mark.parametrize("key", sorted(KEYS))
@pytest.mark.parametrize(
    "source_of", [lambda key: MARKER_SOURCE, option_name, lambda key: f"ini otel_overhead_{key} in tox.ini"]
)
def test_every_error_message_starts_with_its_source(key: str, source_of: Any) -> None:
    candidates = [JUNK_FOR_KEY[key]] if key in JUNK_FOR_KEY else []
    refused = 0
    for junk in (*candidates, *GENERIC_JUNK):
        try:
            Layer.parse({key: junk}, source_of)
        except SettingsError as error:
            refused += 1
            message = str(error)
            assert message.startswith(source_of(key) + ": "), message
            assert "\n" not in message
    assert refused, f"no bad value found for {key}"
    if key in JUNK_FOR_KEY:
        with pytest.raises(SettingsError):
            Layer.parse({key: JUNK_FOR_KEY[key]}, source_of)


@given(key=st.sampled_from(sorted(KEYS)), value=st.one_of(st.text(max_size=12), st.integers(), st.floats()))
def test_any_value_for_any_key_parses_or_raises_a_settings_error_naming_the_source(key: str, value: object) -> None:
    try:
        Layer.parse({key: value}, option_name)
    except SettingsError as error:
        assert str(error).startswith(option_name(key) + ": ")


def test_a_marker_error_names_the_argument_at_fault() -> None:
    with pytest.raises(SettingsError) as info:
        marker_layer(FakeItem(NODEID, [pytest.mark.otel_overhead(batch_size=64, queue_size="lots").mark]))  # type: ignore[arg-type]
    message = str(info.value)
    assert message == f"{MARKER_SOURCE}: 'lots' is not a whole number of at least 1 (argument queue_size)"
    assert "batch_size" not in message


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [("cpu", "fast", "(argument cpu)"), ("metric", "heap", "(argument metric)"), ("budget", "five", None)],
)
def test_a_marker_error_names_the_argument_unless_the_message_does(key: str, value: object, named: str | None) -> None:
    with pytest.raises(SettingsError) as info:
        marker(**{key: value})
    message = str(info.value)
    assert message.startswith(MARKER_SOURCE + ": ")
    assert "\n" not in message
    if named is None:
        assert "(argument" not in message  # "'five' is not a budget" says which already
    else:
        assert message.endswith(named)


def test_an_error_from_a_source_that_names_the_setting_is_left_as_it_is() -> None:
    with pytest.raises(SettingsError) as info:
        cli(queue_size="lots")
    assert str(info.value) == "--otel-overhead-queue-size: 'lots' is not a whole number of at least 1"


# --- the layers pytest builds ------------------------------------------------------------------


@dataclass
class FakeConfig:
    options: Mapping[str, object] = field(default_factory=dict)
    ini: Mapping[str, object] = field(default_factory=dict)
    inipath: Path | None = None

    def getoption(self, name: str) -> object:
        return self.options.get(name)

    def getini(self, name: str) -> object:
        return self.ini.get(name, "")


@dataclass
class FakeItem:
    nodeid: str
    marks: list[pytest.Mark]

    def iter_markers(self, name: str) -> Iterator[pytest.Mark]:
        return (mark for mark in self.marks if mark.name == name)


def test_cli_layer_reads_the_options_and_names_the_flag() -> None:
    config = FakeConfig(options={"otel_overhead_queue_size": "100", "otel_overhead_budget": "3%"})
    layer = cli_layer(config)  # type: ignore[arg-type]
    assert layer.values["queue_size"] == (100, "--otel-overhead-queue-size")
    assert layer.values["budget"] == (Budget("relative", 0.03), "--otel-overhead-budget")
    with pytest.raises(SettingsError, match=r"^--otel-overhead-max-time: 'x'"):
        cli_layer(FakeConfig(options={"otel_overhead_max_time": "x"}))  # type: ignore[arg-type]


def test_ini_layer_skips_empty_values_and_names_the_file(tmp_path: Path) -> None:
    config = FakeConfig(
        ini={"otel_overhead_exporter": "memory", "otel_overhead_budget": ""}, inipath=tmp_path / "tox.ini"
    )
    layer = ini_layer(config)  # type: ignore[arg-type]
    assert layer.values == {"exporter": ("memory", "ini otel_overhead_exporter in tox.ini")}
    with pytest.raises(SettingsError, match=r"^ini otel_overhead_budget in tox.ini: 'five' is not a budget"):
        ini_layer(FakeConfig(ini={"otel_overhead_budget": "five"}, inipath=tmp_path / "tox.ini"))  # type: ignore[arg-type]


def test_marker_layer_lets_the_closest_marker_win_per_key() -> None:
    function_mark = pytest.mark.otel_overhead(budget="10%").mark
    class_mark = pytest.mark.otel_overhead(budget="50%", exporter="memory").mark
    layer = marker_layer(FakeItem(NODEID, [function_mark, class_mark]))  # type: ignore[arg-type]
    assert layer.values["budget"] == (Budget("relative", 0.10), MARKER_SOURCE)
    assert layer.values["exporter"] == ("memory", MARKER_SOURCE)


def test_marker_layer_refuses_positional_arguments() -> None:
    item = FakeItem(NODEID, [pytest.mark.otel_overhead("5%").mark])
    with pytest.raises(SettingsError, match=re.escape(MARKER_SOURCE) + ": takes keyword arguments only"):
        marker_layer(item)  # type: ignore[arg-type]


def test_marker_layer_rejects_unknown_arguments_with_a_suggestion() -> None:
    item = FakeItem(NODEID, [pytest.mark.otel_overhead(max_tme=3).mark])
    with pytest.raises(SettingsError, match="did you mean 'max_time'"):
        marker_layer(item)  # type: ignore[arg-type]


def test_option_names_mirror_the_keys() -> None:
    assert option_name("sample_rate") == "--otel-overhead-sample-rate"
    assert option_name("latency_p99") == "--otel-overhead-latency-p99"


# --- records -----------------------------------------------------------------------------------


def test_settings_as_dict_carries_budgets_and_sources() -> None:
    settings = resolve([marker(budget="10%", heap="1MiB"), env(OTEL_BSP_MAX_QUEUE_SIZE="4096")])
    data = settings.as_dict()
    assert data["queue_size"] == 4096
    assert data["budgets"] == {
        "cpu": {"kind": "relative", "value": 0.10},
        "heap": {"kind": "absolute", "value": 1024**2},
    }
    assert data["sources"]["queue_size"] == "$OTEL_BSP_MAX_QUEUE_SIZE"  # type: ignore[index]
    assert data["sources"]["cpu"] == MARKER_SOURCE  # type: ignore[index]


def test_pipeline_describe() -> None:
    assert PipelineSettings().describe() == "sampler parentbased_always_on, batch 512/5000ms, queue 2048, exporter none"
    ratio = PipelineSettings(sampler="traceidratio", sample_rate=0.1, processor="simple", exporter="memory")
    assert ratio.describe() == "sampler traceidratio 0.1, simple processor, exporter memory"


def test_with_overrides_replaces_pipeline_fields_only() -> None:
    settings = MeasureSettings(max_time=3.0)
    changed = with_overrides(settings, queue_size=16, batch_size=8)
    assert (changed.pipeline.queue_size, changed.pipeline.batch_size, changed.max_time) == (16, 8, 3.0)
    assert settings.pipeline.queue_size == 2048
