"""Constant costs of measuring through the plugin's routing layer, per span and per block.

Under ``--otel-overhead`` every tracer the application holds delegates to the current arm through
``ArmRouter``'s routed tracers. That layer runs in both arms, so most of it cancels out of the
overhead the plugin reports; this script measures how much it costs and how much does not cancel.
All variants run in one process, in shuffled order within each round; each repeat times
``--spans`` spans (process CPU, all threads) after a garbage collection:

    sdk            an SDK tracer used directly, as in production (flushed at the end of the repeat)
    routed-sdk     the same SDK pipeline behind the router (the instrumented arm)
    noop           the API's no-op tracer, as in production with telemetry off
    routed-noop    the no-op tracer behind the idle router (the baseline arm)
    resolve-sdk    before each span the router switches to the SDK arm and back after it, as it
                   does around each timed block, so each span pays the first-use re-resolution
    toggle-sdk     the same switches without the span, to subtract their own cost (the plugin
                   switches outside the timed block)
    resolve-noop   the same for the no-op arm: a switch to it before each span
    toggle-noop    that switch alone
    flush-sdk      routed-sdk plus a flush after every span: a block that holds one span

Differences are formed per round and summarised by the Hodges–Lehmann estimate with its 95%
Wilcoxon signed-rank interval. The SDK pipeline is the plugin's default instrumented arm
(parent-based always-on sampler, batch processor, discarding exporter).

Run: python docs/routing_cost.py [--rounds 40] [--spans 2000]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.version import __version__ as otel_version

from pytest_otel_overhead.engine.probes import calm_gc
from pytest_otel_overhead.otel.pipeline import build_pipeline
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.settings.records import PipelineSettings
from pytest_otel_overhead.stats.intervals import median, wilcoxon_interval

SCOPE = "routing.cost"


def one_span(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("op") as span:
        span.set_attribute("k", 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--spans", type=int, default=2000)
    args = parser.parse_args()

    pipeline = build_pipeline(PipelineSettings())
    provider = pipeline.provider
    sdk_tracer = provider.get_tracer(SCOPE)
    noop_tracer = trace.NoOpTracer()
    # The router is used as a plain object, not installed as the global provider: the layer is
    # the same, and the script leaves OpenTelemetry's global state alone.
    router = ArmRouter()
    routed = router.get_tracer(SCOPE)

    def steady(tracer: trace.Tracer, arm: trace.TracerProvider | None) -> Callable[[int], None]:
        def run(n: int) -> None:
            router.switch(arm)
            for _ in range(n):
                one_span(tracer)
            provider.force_flush()

        return run

    def resolve(arm: trace.TracerProvider | None, span: bool) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                router.switch(arm)  # a new generation: the next span re-resolves its delegate
                if span:
                    one_span(routed)
                if arm is not None:
                    router.switch(None)
            provider.force_flush()

        return run

    def flushing(n: int) -> None:
        router.switch(provider)
        for _ in range(n):
            one_span(routed)
            provider.force_flush()

    variants: dict[str, Callable[[int], None]] = {
        "sdk": steady(sdk_tracer, None),  # the router plays no part: this tracer is the SDK's own
        "routed-sdk": steady(routed, provider),
        "noop": steady(noop_tracer, None),
        "routed-noop": steady(routed, None),
        "resolve-sdk": resolve(provider, span=True),
        "toggle-sdk": resolve(provider, span=False),
        "resolve-noop": resolve(None, span=True),
        "toggle-noop": resolve(None, span=False),
        "flush-sdk": flushing,
    }
    for run in variants.values():  # warm up every path
        run(200)

    per_span: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(1)
    try:
        with calm_gc() as collect:  # each repeat starts from a collected heap, as the engine's blocks do
            for _ in range(args.rounds):
                names = list(variants)
                rng.shuffle(names)
                for name in names:
                    collect()
                    start = time.process_time()
                    variants[name](args.spans)
                    per_span[name].append((time.process_time() - start) / args.spans)
                    router.switch(None)
    finally:
        router.switch(None)
        pipeline.shutdown()

    def rounds(expression: Callable[[dict[str, float]], float]) -> list[float]:
        return [expression({name: values[i] for name, values in per_span.items()}) * 1e6 for i in range(args.rounds)]

    print(f"Python {platform.python_version()}, OpenTelemetry SDK {otel_version}, {platform.machine()}")
    print(f"{args.rounds} rounds x {args.spans} spans per variant; process CPU per span, median over rounds:")
    for name, values in per_span.items():
        print(f"  {name:13s} {median(values) * 1e6:7.2f} µs")
    print("paired per round (Hodges–Lehmann estimate, 95% Wilcoxon interval):")
    figures: list[tuple[str, Callable[[dict[str, float]], float]]] = [
        ("routing layer per span, SDK arm", lambda v: v["routed-sdk"] - v["sdk"]),
        ("routing layer per span, no-op arm", lambda v: v["routed-noop"] - v["noop"]),
        (
            "routing layer per span, not cancelled",
            lambda v: (v["routed-sdk"] - v["sdk"]) - (v["routed-noop"] - v["noop"]),
        ),
        (
            "re-resolution per block, SDK arm",
            lambda v: v["resolve-sdk"] - v["toggle-sdk"] - v["routed-sdk"],
        ),
        (
            "re-resolution per block, no-op arm",
            lambda v: v["resolve-noop"] - v["toggle-noop"] - v["routed-noop"],
        ),
        ("flush of a block holding one span", lambda v: v["flush-sdk"] - v["routed-sdk"]),
        ("SDK over no-op per span, production", lambda v: v["sdk"] - v["noop"]),
        ("SDK over no-op per span, routed (reported)", lambda v: v["routed-sdk"] - v["routed-noop"]),
    ]
    for label, expression in figures:
        low, estimate, high = wilcoxon_interval(rounds(expression), 0.95)
        print(f"  {label:44s} {estimate:+7.2f} µs  [{low:+.2f}, {high:+.2f}]")


if __name__ == "__main__":
    main()
