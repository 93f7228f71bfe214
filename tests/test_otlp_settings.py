"""Settings of the export side: exporter, endpoint, compression, backend behaviour, metrics, instrumentors."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import PipelineSettings
from pytest_otel_overhead.settings.sources import option_name
from pytest_otel_overhead.units import SettingsError

MARKER = "marker on tests/test_shop.py::test_checkout"
SQLITE = "opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor"


def marker(**values: object) -> Layer:
    return Layer.parse(values, lambda key: MARKER)


def cli(**values: object) -> Layer:
    return Layer.parse(values, option_name)


def pipeline(*layers: Layer) -> PipelineSettings:
    return resolve(list(layers)).pipeline


def error_of(*layers: Callable[[], Layer]) -> str:
    """The one-line error of parsing the layers (built lazily) and resolving them."""
    with pytest.raises(SettingsError) as caught:
        resolve([layer() for layer in layers])
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_export_nowhere_and_collect_metrics_every_minute() -> None:
    settings = pipeline(Layer({}))
    assert settings.exporter == "none"
    assert settings.endpoint is None
    assert settings.compression == "none"
    assert (settings.backend_latency_ms, settings.backend_error_rate) == (0.0, 0.0)
    assert settings.metric_interval_ms == 60000.0
    assert settings.instrument == ()
    assert settings.max_dropped is None


@pytest.mark.parametrize("name", ["otlp", "OTLP", "otlp-http", " otlp-http "])
def test_otlp_and_its_alias(name: str) -> None:
    assert pipeline(marker(exporter=name)).exporter == "otlp"


def test_an_endpoint_alone_selects_otlp() -> None:
    settings = pipeline(marker(endpoint="http://collector.internal:4318/"))
    assert settings.exporter == "otlp"
    assert settings.endpoint == "http://collector.internal:4318"


@pytest.mark.parametrize("value", ["collector:4318", "ftp://host", "http://", "http://host:port", 4318])
def test_a_bad_endpoint_names_its_source(value: object) -> None:
    message = error_of(lambda: marker(endpoint=value))
    assert message.startswith(MARKER + ":")
    assert "endpoint" in message or "port" in message


def test_an_endpoint_with_another_exporter_is_an_error() -> None:
    message = error_of(lambda: marker(endpoint="http://localhost:4318"), lambda: cli(exporter="memory"))
    assert message == (f"{MARKER}: endpoint applies to exporter 'otlp', not 'memory' (--otel-overhead-exporter)")


def test_otlp_grpc_is_refused_with_the_alternative() -> None:
    message = error_of(lambda: marker(exporter="otlp-grpc"))
    assert message.startswith(MARKER + ": exporter 'otlp-grpc' is not supported; use 'otlp'")


def test_an_unknown_exporter_lists_the_choices() -> None:
    assert error_of(lambda: cli(exporter="jaeger")) == (
        "--otel-overhead-exporter: 'jaeger' is not an exporter; use none, memory, otlp or module:factory"
    )


def test_otlp_without_the_extra_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes the import fail as it does when the package is not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    message = error_of(lambda: cli(exporter="otlp"))
    assert message.startswith("--otel-overhead-exporter: exporter 'otlp' needs the OTLP/HTTP exporter")
    assert message.endswith("install it with pip install 'pytest-otel-overhead[otlp]'")
    # An endpoint alone asks for OTLP too; the error then names the endpoint's source.
    assert error_of(lambda: marker(endpoint="http://localhost:4318")).startswith(MARKER + ": exporter 'otlp' needs")


def test_compression_from_the_environment_applies_to_otlp_only() -> None:
    environment = env_layer({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"})
    assert pipeline(marker(exporter="otlp"), environment).compression == "gzip"
    # A machine may set the variable for other programs: with a local exporter it is ignored.
    assert pipeline(marker(exporter="memory"), environment).compression == "none"


def test_explicit_compression_with_a_local_exporter_is_an_error() -> None:
    message = error_of(lambda: marker(compression="gzip"))
    assert message == f"{MARKER}: compression applies to exporter 'otlp', not 'none' (default)"


@pytest.mark.parametrize("value", ["zstd", "", 1])
def test_a_bad_compression_names_the_variable(value: object) -> None:
    with pytest.raises(SettingsError, match=r"^\$OTEL_EXPORTER_OTLP_COMPRESSION: .* use none, gzip or deflate$"):
        env_layer({"OTEL_EXPORTER_OTLP_COMPRESSION": str(value) or " x"})


def test_backend_behaviour_of_the_embedded_receiver() -> None:
    settings = pipeline(marker(exporter="otlp", backend_latency="50ms", backend_error_rate="10%"))
    assert settings.backend_latency_ms == pytest.approx(50.0)
    assert settings.backend_error_rate == pytest.approx(0.1)
    assert pipeline(marker(exporter="otlp", backend_latency=0)).backend_latency_ms == 0.0
    assert pipeline(marker(exporter="otlp", backend_latency="0ms")).backend_latency_ms == 0.0
    assert pipeline(marker(exporter="otlp", backend_latency=20)).backend_latency_ms == 20.0  # bare: ms


def test_backend_behaviour_needs_the_embedded_receiver() -> None:
    message = error_of(lambda: marker(backend_latency="50ms", endpoint="http://localhost:4318"))
    assert message == (
        f"{MARKER}: backend_latency shapes the embedded OTLP receiver, so it needs exporter='otlp' "
        "without an endpoint (here: endpoint http://localhost:4318)"
    )
    assert "(here: exporter 'memory')" in error_of(lambda: marker(backend_error_rate=0.5, exporter="memory"))


@pytest.mark.parametrize(("key", "value"), [("backend_error_rate", 1.5), ("backend_latency", "-5ms")])
def test_bad_backend_values_name_their_source(key: str, value: object) -> None:
    with pytest.raises(SettingsError, match=rf"^{option_name(key)}: "):
        cli(**{key: value})


def test_metric_interval_from_marker_or_environment() -> None:
    assert pipeline(marker(metric_interval="250ms")).metric_interval_ms == pytest.approx(250.0)
    environment = env_layer({"OTEL_METRIC_EXPORT_INTERVAL": "1500"})
    assert pipeline(environment).metric_interval_ms == 1500.0
    with pytest.raises(SettingsError, match=r"^\$OTEL_METRIC_EXPORT_INTERVAL: 'soon' is not a duration"):
        env_layer({"OTEL_METRIC_EXPORT_INTERVAL": "soon"})


def test_instrumentors_as_a_list_or_comma_separated() -> None:
    assert pipeline(marker(instrument=[SQLITE])).instrument == (SQLITE,)
    assert pipeline(cli(instrument=f"{SQLITE}, {SQLITE}")).instrument == (SQLITE,)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("sqlite3", "instrumentor 'sqlite3' is not written as module:name"),
        ("no_such_module_here:Instrumentor", "cannot import 'no_such_module_here'"),
        ("opentelemetry.instrumentation.sqlite3:Nope", "has no 'Nope'"),
        ("sqlite3:connect", "is not an OpenTelemetry instrumentor"),
        (42, "is not a list of instrumentors"),
    ],
)
def test_bad_instrumentors_name_their_source(value: object, fragment: str) -> None:
    with pytest.raises(SettingsError) as caught:
        marker(instrument=value)
    assert str(caught.value).startswith(MARKER + ": ")
    assert fragment in str(caught.value)


def test_max_dropped_is_a_count_from_zero() -> None:
    assert pipeline(marker(max_dropped=0)).max_dropped == 0
    with pytest.raises(SettingsError, match=r"^--otel-overhead-max-dropped: -1 is not a whole number of at least 0$"):
        cli(max_dropped=-1)


def test_a_factory_exporter_is_imported_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline(marker(exporter="opentelemetry.sdk.trace.export:ConsoleSpanExporter")).exporter == (
        "opentelemetry.sdk.trace.export:ConsoleSpanExporter"
    )
    assert "cannot import 'nowhere_to_be_found'" in error_of(lambda: marker(exporter="nowhere_to_be_found:make"))
    assert error_of(lambda: marker(exporter="opentelemetry.sdk.trace.export:__doc__")) == (
        f"{MARKER}: exporter factory 'opentelemetry.sdk.trace.export:__doc__' is not callable"
    )


def test_every_new_key_has_a_cli_flag_and_help() -> None:
    for key in ("exporter", "endpoint", "compression", "backend_latency", "backend_error_rate"):
        assert KEYS[key].help
    for key in ("metric_interval", "instrument", "max_dropped"):
        assert KEYS[key].help
    assert KEYS["compression"].env == ("OTEL_EXPORTER_OTLP_COMPRESSION",)
    assert KEYS["metric_interval"].env == ("OTEL_METRIC_EXPORT_INTERVAL",)


def test_describe_and_as_dict_show_the_export_side() -> None:
    settings = pipeline(
        marker(exporter="otlp", compression="gzip", backend_latency="50ms", backend_error_rate=0.1, instrument=[SQLITE])
    )
    assert settings.describe().endswith(
        "exporter otlp gzip to the embedded receiver (50ms, 10% 503), instrumenting SQLite3Instrumentor"
    )
    data = settings.as_dict()
    assert data["compression"] == "gzip"
    assert data["backend_latency_ms"] == pytest.approx(50.0)
    assert data["instrument"] == [SQLITE]
    assert data["max_dropped"] is None
    remote = pipeline(marker(endpoint="http://collector:4318"))
    assert remote.describe().endswith("exporter otlp to http://collector:4318")
