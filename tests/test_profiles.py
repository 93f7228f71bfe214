"""Profiles and presets: their settings, and where they sit in the precedence of layers."""

from __future__ import annotations

import pytest

from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.profiles import PROFILES, canonical_profile
from pytest_otel_overhead.settings.sources import option_name
from pytest_otel_overhead.units import SettingsError

MARKER_SOURCE = "marker on t.py::test_x"


def marker(**values: object) -> Layer:
    return Layer.parse(values, lambda key: MARKER_SOURCE)


def cli(**values: object) -> Layer:
    return Layer.parse(values, option_name)


def ini(**values: object) -> Layer:
    return Layer.parse(values, lambda key: f"ini otel_overhead_{key} in tox.ini")


@pytest.mark.parametrize(
    ("profile", "rate", "batch", "delay_ms", "queue"),
    [
        ("high", 0.01, 4096, 30000, 8192),
        ("medium", 0.05, 512, 1000, 2048),
        ("low", 0.005, 128, 5000, 512),
        ("development", 1.0, 512, 1000, 2048),
        ("staging", 0.5, 512, 5000, 2048),
        ("production", 0.1, 512, 5000, 2048),
        ("high-traffic", 0.01, 4096, 30000, 8192),
    ],
)
def test_each_profile_gives_its_pipeline(profile: str, rate: float, batch: int, delay_ms: float, queue: int) -> None:
    settings = resolve([marker(profile=profile)])
    pipeline = settings.pipeline
    assert (pipeline.sampler, pipeline.sample_rate) == ("parentbased_traceidratio", rate)
    assert (pipeline.batch_size, pipeline.schedule_delay_ms, pipeline.queue_size) == (batch, delay_ms, queue)
    assert settings.profile == profile
    assert settings.source("batch_size") == f"profile {profile} ({MARKER_SOURCE})"


def test_every_profile_is_documented_and_consistent() -> None:
    for profile in PROFILES.values():
        assert profile.title and profile.note
        assert int(str(profile.values["batch_size"])) <= int(str(profile.values["queue_size"]))


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("HIGH", "high"),
        ("high_traffic", "high-traffic"),
        ("High Traffic", "high-traffic"),
        ("low-latency", "medium"),
        ("resource_constrained", "low"),
        ("prod", "production"),
        ("turbo", None),
    ],
)
def test_profile_spellings(spelling: str, name: str | None) -> None:
    assert canonical_profile(spelling) == name


def test_a_setting_next_to_the_profile_wins() -> None:
    settings = resolve([marker(profile="high", sample_rate=0.2, queue_size=4096)])
    assert (settings.pipeline.sample_rate, settings.pipeline.queue_size, settings.pipeline.batch_size) == (
        0.2,
        4096,
        4096,
    )
    assert settings.source("sample_rate") == MARKER_SOURCE


def test_a_profile_sits_just_below_the_layer_that_names_it() -> None:
    # A marker's profile beats the command line (the marker is more specific)...
    by_marker = resolve([marker(profile="high"), cli(batch_size=128), env_layer({})])
    assert by_marker.pipeline.batch_size == 4096
    # ...and a command-line profile loses to the marker, but beats ini and environment.
    by_cli = resolve(
        [
            marker(batch_size=256),
            cli(profile="low"),
            ini(sample_rate=0.5),
            env_layer({"OTEL_BSP_SCHEDULE_DELAY": "100"}),
        ]
    )
    assert by_cli.pipeline.batch_size == 256
    assert by_cli.pipeline.sample_rate == 0.005
    assert by_cli.pipeline.schedule_delay_ms == 5000
    assert by_cli.source("sample_rate") == "profile low (--otel-overhead-profile)"


def test_environment_profile_and_explicit_variables() -> None:
    env = env_layer({"OTEL_PERFORMANCE_PROFILE": "high", "OTEL_TRACING_SAMPLE_RATE": "0.02"})
    settings = resolve([Layer({}), env])
    assert (settings.pipeline.sample_rate, settings.pipeline.batch_size) == (0.02, 4096)
    assert settings.source("profile") == "$OTEL_PERFORMANCE_PROFILE"
    # Any explicit setting above the environment wins over the environment's profile.
    assert resolve([cli(batch_size=64), env]).pipeline.batch_size == 64


def test_only_the_highest_profile_applies() -> None:
    settings = resolve([marker(profile="medium"), env_layer({"OTEL_PERFORMANCE_PROFILE": "high"})])
    assert settings.profile == "medium"
    assert (settings.pipeline.schedule_delay_ms, settings.pipeline.queue_size) == (1000, 2048)


def test_an_explicit_sampler_replaces_the_profiles_ratio_sampler() -> None:
    settings = resolve([marker(profile="production", sampler="rate_limiting", max_traces_per_second=5)])
    assert (settings.pipeline.sampler, settings.pipeline.sample_rate) == ("rate_limiting", None)
    assert settings.pipeline.batch_size == 512
    # A strategy setting alone does not: the profile names its sampler, and the profile sits higher.
    assert resolve([marker(profile="development", sample_rate=0.3)]).pipeline.sample_rate == 0.3


def test_a_rate_that_the_chosen_sampler_ignores_is_still_an_error_in_its_own_layer() -> None:
    with pytest.raises(SettingsError, match=r"sample_rate=0\.2 has no effect with sampler 'always_on'"):
        resolve([marker(profile="production", sampler="always_on", sample_rate=0.2)])


def test_unknown_profile_is_a_one_line_error_naming_the_source() -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_PERFORMANCE_PROFILE: 'extreme' is not a profile; use one of"):
        env_layer({"OTEL_PERFORMANCE_PROFILE": "extreme"})
    with pytest.raises(SettingsError, match=r"^marker on t.py::test_x: 3 is not a profile"):
        marker(profile=3)


def test_profile_is_in_the_json_settings() -> None:
    data = resolve([cli(profile="staging")]).as_dict()
    assert data["profile"] == "staging"
    assert data["sources"]["sample_rate"] == "profile staging (--otel-overhead-profile)"  # type: ignore[index]
