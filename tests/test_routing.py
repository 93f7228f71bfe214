"""ArmRouter: tracers that follow the arm being measured.

In-process tests use a private router and call ``router.get_tracer`` directly; the global
TracerProvider of this process is never touched. The global-install path runs in subprocesses.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from pytest_otel_overhead.otel.routing import ArmRouter


class Arm:
    """An SDK provider recording into memory, as the instrumented arm."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(shutdown_on_exit=False)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def names(self) -> list[str]:
        return [span.name for span in self.exporter.get_finished_spans()]


@pytest.fixture(autouse=True)
def _global_provider_untouched() -> Iterator[None]:
    before = trace.get_tracer_provider()
    yield
    assert trace.get_tracer_provider() is before


@pytest.fixture
def router() -> ArmRouter:
    return ArmRouter()


@pytest.fixture
def arm() -> Iterator[Arm]:
    instrumented = Arm()
    yield instrumented
    instrumented.provider.shutdown()


def test_a_new_router_is_idle_and_records_nothing(router: ArmRouter, arm: Arm) -> None:
    assert router.idle
    tracer = router.get_tracer("shop")
    with tracer.start_as_current_span("checkout") as span:
        assert not span.is_recording()
        assert not trace.get_current_span().is_recording()
    tracer.start_span("plain").end()
    assert arm.names() == []


def test_the_instrumented_arm_records_into_its_provider(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("shop")
    router.switch(arm.provider)
    assert not router.idle
    assert router.active is arm.provider
    with tracer.start_as_current_span("checkout", attributes={"order.items": 3}) as parent:
        assert parent.is_recording()
        assert trace.get_current_span() is parent
        with tracer.start_as_current_span("charge"):
            pass
    tracer.start_span("detached", kind=trace.SpanKind.CLIENT).end()
    spans = {span.name: span for span in arm.exporter.get_finished_spans()}
    assert set(spans) == {"checkout", "charge", "detached"}
    charge_parent = spans["charge"].parent
    assert charge_parent is not None
    assert charge_parent.span_id == parent.get_span_context().span_id
    assert spans["detached"].parent is None
    assert spans["checkout"].attributes == {"order.items": 3}
    assert spans["detached"].kind is trace.SpanKind.CLIENT


def test_switching_back_to_the_baseline_stops_recording(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("shop")
    router.switch(arm.provider)
    with tracer.start_as_current_span("instrumented"):
        pass
    router.switch(None)
    assert router.idle
    with tracer.start_as_current_span("baseline") as span:
        assert not span.is_recording()
    assert arm.names() == ["instrumented"]


def test_a_tracer_made_once_follows_every_switch(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("made-at-import")
    recorded: list[bool] = []
    for instrumented in (False, True, True, False, True, False):
        router.switch(arm.provider if instrumented else None)
        with tracer.start_as_current_span(f"s{len(recorded)}") as span:
            recorded.append(span.is_recording())
    assert recorded == [False, True, True, False, True, False]
    assert arm.names() == ["s1", "s2", "s4"]


def test_a_decorator_built_before_switching_follows_the_arm_at_call_time(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("decorated")

    @tracer.start_as_current_span("handle")
    def handle(order: int) -> bool:
        return trace.get_current_span().is_recording()

    assert handle.__name__ == "handle"
    assert handle(1) is False
    router.switch(arm.provider)
    assert handle(2) is True
    assert handle(3) is True
    router.switch(None)
    assert handle(4) is False
    assert arm.names() == ["handle", "handle"]


def test_a_context_manager_made_in_one_arm_resolves_when_entered(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("shop")
    pending = tracer.start_as_current_span("late")
    router.switch(arm.provider)
    with pending as span:
        assert span.is_recording()
    assert arm.names() == ["late"]


def test_exceptions_in_spans_propagate_and_are_recorded(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("shop")
    router.switch(arm.provider)
    with pytest.raises(KeyError, match="sku-42"), tracer.start_as_current_span("lookup"):
        raise KeyError("sku-42")
    (span,) = arm.exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


@pytest.mark.parametrize("instrumented", [False, True])
def test_exceptions_in_decorated_functions_propagate_in_both_arms(
    router: ArmRouter, arm: Arm, instrumented: bool
) -> None:
    tracer = router.get_tracer("shop")

    @tracer.start_as_current_span("fails")
    def fails() -> None:
        raise RuntimeError("payment declined")

    router.switch(arm.provider if instrumented else None)
    with pytest.raises(RuntimeError, match="payment declined"):
        fails()
    assert arm.names() == (["fails"] if instrumented else [])


def test_the_current_span_is_restored_after_an_exception(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("shop")
    router.switch(arm.provider)
    with tracer.start_as_current_span("outer") as outer:
        with pytest.raises(ValueError), tracer.start_as_current_span("inner"):
            raise ValueError
        assert trace.get_current_span() is outer


def test_routed_to_restores_the_previous_arm_even_on_error(router: ArmRouter, arm: Arm) -> None:
    other = Arm()
    try:
        with router.routed_to(arm.provider):
            assert router.active is arm.provider
            with pytest.raises(ZeroDivisionError), router.routed_to(other.provider):
                assert router.active is other.provider
                _ = 1 / 0
            assert router.active is arm.provider
        assert router.idle
    finally:
        other.provider.shutdown()


def test_every_switch_starts_a_new_generation(router: ArmRouter, arm: Arm) -> None:
    start = router.generation
    router.switch(arm.provider)
    router.switch(None)
    router.switch(None)
    assert router.generation == start + 3


def test_tracer_identity_reaches_the_sdk(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("shop.payments", "1.2.3", "https://opentelemetry.io/schemas/1.21.0")
    router.switch(arm.provider)
    with tracer.start_as_current_span("pay"):
        pass
    (span,) = arm.exporter.get_finished_spans()
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "shop.payments"
    assert span.instrumentation_scope.version == "1.2.3"
    assert span.instrumentation_scope.schema_url == "https://opentelemetry.io/schemas/1.21.0"


def test_spans_from_other_threads_follow_the_arm(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("worker")
    seen: list[bool] = []

    def work() -> None:
        with tracer.start_as_current_span("background") as span:
            seen.append(span.is_recording())

    for instrumented in (True, False):
        router.switch(arm.provider if instrumented else None)
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert seen == [True, False]
    assert arm.names() == ["background"]


def test_a_decorated_coroutine_function_stays_a_coroutine_function_and_runs_inside_its_span(
    router: ArmRouter, arm: Arm
) -> None:
    tracer = router.get_tracer("async")

    @tracer.start_as_current_span("fetch")
    async def fetch() -> bool:
        await asyncio.sleep(0)
        return trace.get_current_span().is_recording()

    router.switch(arm.provider)
    assert asyncio.run(fetch()) is True
    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch"
    assert arm.names() == ["fetch"]


def test_a_decorated_coroutine_follows_the_arm_when_it_runs_and_records_its_error(router: ArmRouter, arm: Arm) -> None:
    tracer = router.get_tracer("async")

    @tracer.start_as_current_span("fail")
    async def fail() -> None:
        await asyncio.sleep(0)
        raise KeyError("gone")

    pending = fail()  # created in the baseline, run in the instrumented arm: the arm at run time counts
    router.switch(arm.provider)
    with pytest.raises(KeyError):
        asyncio.run(pending)
    (span,) = arm.exporter.get_finished_spans()
    assert span.name == "fail"
    assert span.status.status_code is StatusCode.ERROR


class CountingProvider(TracerProvider):
    """An SDK provider that counts how often a tracer is resolved on it."""

    def __init__(self) -> None:
        super().__init__(shutdown_on_exit=False)
        self.resolved = 0

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        self.resolved += 1
        return super().get_tracer(*args, **kwargs)


def test_a_routed_tracer_resolves_each_provider_once_and_a_new_provider_afresh(router: ArmRouter) -> None:
    first, second = CountingProvider(), CountingProvider()
    exporter = InMemorySpanExporter()
    second.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = router.get_tracer("shop")
    with tracer.start_as_current_span("ordinary run"):
        pass
    for _ in range(5):  # the engine's pattern: the arm, then idle, block after block
        router.switch(first)
        with tracer.start_as_current_span("instrumented"):
            pass
        router.switch(None)
        with tracer.start_as_current_span("baseline"):
            pass
    assert first.resolved == 1
    for _ in range(3):
        router.switch(second)
        with tracer.start_as_current_span("next test") as span:
            assert span.is_recording()
        router.switch(None)
    assert (first.resolved, second.resolved) == (1, 1)
    assert [s.name for s in exporter.get_finished_spans()] == ["next test"] * 3
    router.switch(first)
    tracer.start_span("back to the first").end()
    assert (first.resolved, second.resolved) == (1, 1)
    first.shutdown()
    second.shutdown()


def test_the_delegate_cache_does_not_keep_a_finished_provider_alive(router: ArmRouter) -> None:
    tracer = router.get_tracer("shop")
    tracer.start_span("ordinary run").end()
    provider = TracerProvider(shutdown_on_exit=False)
    gone = weakref.ref(provider)
    router.switch(provider)
    tracer.start_span("instrumented").end()
    router.switch(None)
    tracer.start_span("baseline").end()
    provider.shutdown()
    del provider
    gc.collect()
    assert gone() is None


# --- the global install, in subprocesses -------------------------------------------------------

ROUTING_CONFTEST = """
import pytest_otel_overhead.engine.arms as arms
from opentelemetry import trace

# Obtained while loading conftest, before the plugin installs its provider at configure time.
EARLY_TRACER = trace.get_tracer("early")
EARLY_TRACER_TYPE = type(EARLY_TRACER).__name__
ARM = {"instrumented": None}

_block = arms.Arms.block


def _observed_block(self, instrumented, calls, collect):
    ARM["instrumented"] = instrumented
    try:
        return _block(self, instrumented, calls, collect)
    finally:
        ARM["instrumented"] = None


arms.Arms.block = _observed_block
"""

ROUTING_TESTS = """
import pytest
from opentelemetry import trace

import conftest

module_tracer = trace.get_tracer("module")
RECORDS = []


@module_tracer.start_as_current_span("decorated")
def decorated():
    return trace.get_current_span().is_recording()


@pytest.mark.otel_overhead(budget="100000%")
def test_workload():
    with conftest.EARLY_TRACER.start_as_current_span("early") as early:
        with module_tracer.start_as_current_span("module") as module:
            seen = (conftest.ARM["instrumented"], early.is_recording(), module.is_recording(), decorated())
    RECORDS.append(seen)


def test_every_tracer_followed_the_arm():
    assert conftest.EARLY_TRACER_TYPE == "ProxyTracer"
    assert RECORDS[0] == (None, False, False, False)  # the ordinary first run: telemetry off
    baseline = [r[1:] for r in RECORDS if r[0] is False]
    instrumented = [r[1:] for r in RECORDS if r[0] is True]
    assert baseline and instrumented
    assert set(baseline) == {(False, False, False)}
    assert set(instrumented) == {(True, True, True)}
    print(f"ROUTING-CHECKED baseline={len(baseline)} instrumented={len(instrumented)}")
"""


def test_tracers_from_import_time_follow_the_arms_when_installed_globally(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROUTING_CONFTEST)
    pytester.makepyfile(test_routing_global=ROUTING_TESTS)
    result = pytester.runpytest_subprocess(
        "--otel-overhead",
        "--otel-overhead-max-time=2",
        "--otel-overhead-json=out.json",
        "-p",
        "no:randomly",
        "-s",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*ROUTING-CHECKED baseline=* instrumented=*"])
    document = json.loads((pytester.path / "out.json").read_text())
    (measured,) = document["tests"]
    assert measured["pipeline"]["spans_started_per_call"] == 3.0
    assert measured["pipeline"]["spans_per_call_by_name"] == {"early": 1.0, "module": 1.0, "decorated": 1.0}


def test_a_provider_set_before_the_plugin_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider(shutdown_on_exit=False))
        """
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--otel-overhead")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: otel-overhead: a global TracerProvider (*TracerProvider) was set (at conftest.py:4) before*"]
    )
    assert "Traceback" not in result.stderr.str()
