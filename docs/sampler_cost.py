"""Cost of the plugin's samplers per span, next to OpenTelemetry's own trace-id ratio sampler.

Two kinds of figure, in one process:

    decision   ``should_sample`` alone, called as the SDK calls it for a root span, at rate 0.05
    span       a whole root span (start, end, batch processor, discarding exporter, flush),
               through a TracerProvider built with each sampler set to sample nothing, so the
               spans cost the same in every variant but for the sampler's own work

Samplers compared, all parent-based as the plugin builds them:

    ratio           ParentBased(TraceIdRatioBased(rate)), the reference
    per_operation   three per-operation rules, default ``rate`` (the span's name has no rule)
    rate_limiting   a token bucket (lock, clock read, arithmetic); for decisions with room for
                    every trace, for spans with none
    load_adaptive   thresholds 80%/60%, load re-read every second (the default)
    load_per_span   the same sampler re-reading the load through psutil on every span: what the
                    cached reading saves

Variants run in shuffled order within each round; each repeat times ``--spans`` calls (process CPU),
after a garbage collection. Differences from ``ratio`` are paired per round and summarised by the
Hodges–Lehmann estimate with its 95% Wilcoxon interval.

Run: python docs/sampler_cost.py [--rounds 30] [--spans 5000]
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.version import __version__ as otel_version

from pytest_otel_overhead.engine.probes import calm_gc
from pytest_otel_overhead.otel.exporters import DiscardingExporter
from pytest_otel_overhead.samplers import (
    LoadAdaptiveSampler,
    LoadThresholds,
    PerOperationSampler,
    RateLimitingSampler,
)
from pytest_otel_overhead.stats.intervals import median, wilcoxon_interval

RATE = 0.05


def samplers(rate: float, traces_per_second: float) -> dict[str, Sampler]:
    thresholds = LoadThresholds(((0.8, rate), (0.6, rate)), rate)  # the rate stays put whatever the load
    return {
        "ratio": ParentBased(TraceIdRatioBased(rate)),
        "per_operation": ParentBased(
            PerOperationSampler({"GET /health": 0.01, "POST /orders": 1.0, "GET /items": 0.2}, default=rate)
        ),
        "rate_limiting": ParentBased(RateLimitingSampler(traces_per_second)),
        "load_adaptive": ParentBased(LoadAdaptiveSampler(thresholds, refresh_ms=1000)),
        "load_per_span": ParentBased(LoadAdaptiveSampler(thresholds, refresh_ms=1e-9)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--spans", type=int, default=5000)
    args = parser.parse_args()

    decision_samplers = samplers(RATE, 1e12)
    providers: dict[str, TracerProvider] = {}
    for name, sampler in samplers(0.0, 1e-9).items():
        provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
        providers[name] = provider
    trace_ids = [random.Random(7).getrandbits(128) for _ in range(args.spans)]

    def decision(sampler: Sampler) -> Callable[[], None]:
        def run() -> None:
            for trace_id in trace_ids:
                sampler.should_sample(None, trace_id, "GET /orders")

        return run

    def spans(provider: TracerProvider) -> Callable[[], None]:
        tracer = provider.get_tracer("sampler.cost")

        def run() -> None:
            for _ in range(args.spans):
                with tracer.start_as_current_span("GET /orders"):
                    pass
            provider.force_flush()

        return run

    variants: dict[str, Callable[[], None]] = {}
    for name, sampler in decision_samplers.items():
        variants[f"decision {name}"] = decision(sampler)
    for name, provider in providers.items():
        variants[f"span {name}"] = spans(provider)
    for run in variants.values():  # warm up every path
        run()

    per_call: dict[str, list[float]] = {name: [] for name in variants}
    rng = random.Random(1)
    try:
        with calm_gc() as collect:  # each repeat starts from a collected heap, as the engine's blocks do
            for _ in range(args.rounds):
                names = list(variants)
                rng.shuffle(names)
                for name in names:
                    collect()
                    start = time.process_time()
                    variants[name]()
                    per_call[name].append((time.process_time() - start) / args.spans)
    finally:
        for provider in providers.values():
            provider.shutdown()

    print(f"Python {platform.python_version()}, OpenTelemetry SDK {otel_version}, {platform.machine()}")
    print(f"{args.rounds} rounds x {args.spans} calls per variant; process CPU per call, median over rounds:")
    for name, values in per_call.items():
        print(f"  {name:24s} {median(values) * 1e6:7.3f} µs")
    print("difference from the ratio sampler, paired per round (Hodges–Lehmann, 95% Wilcoxon interval):")
    for kind in ("decision", "span"):
        for name in decision_samplers:
            if name == "ratio":
                continue
            diffs = [(a - b) * 1e6 for a, b in zip(per_call[f"{kind} {name}"], per_call[f"{kind} ratio"], strict=True)]
            low, estimate, high = wilcoxon_interval(diffs, 0.95)
            print(f"  {kind:8s} {name:16s} {estimate:+7.3f} µs  [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":
    main()
