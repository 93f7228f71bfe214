"""The auto-tuner: the highest sampling rate whose overhead is within budget, shown with confidence.

Each probe is a full measurement with its verdict. The search starts at rate 1 (everything
sampled: done if it passes), then the lowest rate tried (``MIN_RATE``: if even that fails, no rate
fits and the spans themselves must change), then bisects between the highest rate that passed and
the lowest that did not, on a log scale, until they are within a factor of ``RESOLUTION`` or the
time cap is reached. PASS moves up; FAIL and INCONCLUSIVE move down, so a recommendation is always a
rate that was shown to fit, never one that merely was not shown to exceed.

Batch settings are derived, then checked: the queue is sized by the tuning guide's rule (sampled
spans per second × schedule delay × 2) from the rate at which the test produced sampled spans at
the recommended rate, and a last probe measures the recommended pipeline as a whole.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.flags import DEFAULT_TUNE_TIME_S
from pytest_otel_overhead.settings.merge import with_overrides
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.verdict import Verdict

__all__ = ["MIN_RATE", "Probe", "Tuning", "nice_rate", "queue_for", "tune", "tuning_lines"]

MIN_RATE = 0.001
RESOLUTION = 1.6
MIN_PROBE_S = 1.0
DEFAULT_TIME_CAP_S = DEFAULT_TUNE_TIME_S  # declared with --otel-overhead-tune-time
_NICE = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)


def nice_rate(rate: float) -> float:
    """The largest of 1, 1.5, 2, 3, 5, 7 × 10^k not above ``rate``: easier to deploy, no costlier."""
    if rate >= 1.0:
        return 1.0
    exponent = math.floor(math.log10(rate))
    for mantissa in reversed(_NICE):
        candidate = round(mantissa * 10.0**exponent, 12)
        if candidate <= rate * (1 + 1e-9):
            return candidate
    return rate


def queue_for(sampled_per_s: float, schedule_delay_ms: float, minimum: int) -> int:
    """The guide's sizing rule, rounded up to a power of two and never below ``minimum``."""
    need = sampled_per_s * schedule_delay_ms / 1000.0 * 2
    if not math.isfinite(need) or need <= minimum:
        return minimum
    return int(2 ** math.ceil(math.log2(need)))


@dataclass(frozen=True)
class Probe:
    """One measurement of the search: the pipeline tried and what the verdict engine said."""

    rate: float
    pipeline: PipelineSettings
    result: TestResult
    purpose: str = "rate"

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    def as_dict(self, metric: str) -> dict[str, object]:
        gate = self.result.metric(metric)
        return {
            "rate": self.rate,
            "purpose": self.purpose,
            "pipeline": self.pipeline.as_dict(),
            "verdict": self.verdict.value,
            "gate": None if gate is None else gate.as_dict(),
            "pairs": self.result.pairs,
            "duration_s": self.result.duration_s,
        }


@dataclass(frozen=True)
class Tuning:
    """The search's outcome for one test: a recommended pipeline, or why there is none."""

    nodeid: str
    metric: str
    outcome: str
    """``fits`` (a rate below 1), ``all`` (every trace fits), ``none`` (not even MIN_RATE fits),
    ``undecided`` (no rate was shown to fit: too noisy), ``time`` (the cap came first)."""
    message: str
    probes: tuple[Probe, ...]
    recommended: PipelineSettings | None = None
    duration_s: float = 0.0

    def env(self) -> list[tuple[str, str]]:
        """The recommendation as the environment variables an OTel SDK reads."""
        pipeline = self.recommended
        if pipeline is None:
            return []
        if pipeline.sampler == "parentbased_always_on":
            variables = [("OTEL_TRACES_SAMPLER", "parentbased_always_on")]
        else:
            variables = [
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", f"{pipeline.sample_rate:g}"),
            ]
        if pipeline.processor == "batch":
            variables += [
                ("OTEL_BSP_SCHEDULE_DELAY", f"{pipeline.schedule_delay_ms:g}"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", str(pipeline.queue_size)),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", str(pipeline.batch_size)),
            ]
        return variables

    def as_dict(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "metric": self.metric,
            "outcome": self.outcome,
            "message": self.message,
            "recommended": None if self.recommended is None else self.recommended.as_dict(),
            "env": dict(self.env()),
            "probes": [probe.as_dict(self.metric) for probe in self.probes],
            "duration_s": self.duration_s,
        }


def _at_rate(settings: MeasureSettings, rate: float) -> MeasureSettings:
    if rate >= 1.0:
        return with_overrides(settings, sampler="parentbased_always_on", sample_rate=None)
    return with_overrides(settings, sampler="parentbased_traceidratio", sample_rate=rate)


def _figures(probe: Probe, metric: str) -> str:
    gate = probe.result.metric(metric)
    if gate is None:
        return probe.verdict.value
    return f"{gate.format_overhead(gate.overhead)} {gate.format_interval()} {probe.verdict.value}"


def _top_spans(result: TestResult, count: int = 3) -> str:
    health = result.health
    if health is None or not health.by_name:
        return ""
    named = ", ".join(f"{name} {health.per_call(n):.3g}" for name, n in health.by_name[:count])
    return f" (spans per call: {named})"


class _Search:
    """The probes of one search so far, and the time left for more."""

    def __init__(
        self,
        nodeid: str,
        settings: MeasureSettings,
        measure_at: Callable[[MeasureSettings, str], TestResult],
        clock: Callable[[], float],
        time_cap: float,
        say: Callable[[str], None],
    ) -> None:
        self.nodeid = nodeid
        self.settings = settings
        self.measure_at = measure_at
        self.clock = clock
        self.say = say
        self.started = clock()
        self.deadline = self.started + time_cap
        self.metric = settings.metric
        budget = settings.budget(self.metric)
        self.budget_text = budget.describe(self.metric) if budget is not None else "the budget"
        self.probes: list[Probe] = []

    def probe(self, rate: float, base: MeasureSettings | None = None, purpose: str = "rate") -> Probe | None:
        """Measure at ``rate`` (or with ``base``'s pipeline), within the time left; None if too little is."""
        remaining = self.deadline - self.clock()
        if remaining < MIN_PROBE_S and self.probes:
            return None
        candidate = base or _at_rate(self.settings, rate)
        candidate = replace(candidate, max_time=max(MIN_PROBE_S, min(candidate.max_time, remaining)))
        label = f"{self.nodeid}[tune {purpose} {rate:g}]"
        result = self.measure_at(candidate, label)
        done = Probe(rate, candidate.pipeline, result, purpose)
        self.probes.append(done)
        self.say(f"tune {self.nodeid}: rate {rate:g} → {self.figures(done)}")
        return done

    def figures(self, probe: Probe) -> str:
        return _figures(probe, self.metric)

    def finish(self, outcome: str, message: str, recommended: PipelineSettings | None = None) -> Tuning:
        duration = self.clock() - self.started
        return Tuning(self.nodeid, self.metric, outcome, message, tuple(self.probes), recommended, duration)


def tune(
    nodeid: str,
    settings: MeasureSettings,
    measure_at: Callable[[MeasureSettings, str], TestResult],
    *,
    time_cap: float = DEFAULT_TIME_CAP_S,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] | None = None,
) -> Tuning:
    """Search the sampling rate for ``nodeid``; ``measure_at(settings, label)`` runs one probe."""
    search = _Search(nodeid, settings, measure_at, clock, time_cap, progress or (lambda message: None))
    top = search.probe(1.0)
    assert top is not None  # the first probe always runs
    if top.verdict is Verdict.PASS:
        return search.finish(
            "all",
            f"every trace fits: sampling all of them costs {search.figures(top)} against {search.budget_text}",
            _with_queue(top, _at_rate(settings, 1.0)),
        )
    bottom = search.probe(MIN_RATE)
    if bottom is None:
        return search.finish(
            "time", f"the time cap came before any rate below 1 was tried; rate 1: {search.figures(top)}"
        )
    if bottom.verdict is not Verdict.PASS:
        return _no_rate_fits(search, bottom)
    low, high, stopped = _bisect(search, bottom, top)
    return _recommend(search, low, high, stopped)


def _no_rate_fits(search: _Search, bottom: Probe) -> Tuning:
    """The outcome when even ``MIN_RATE`` was not shown to fit: it failed, or stayed undecided."""
    if bottom.verdict is Verdict.FAIL:
        return search.finish(
            "none",
            f"no sampling rate fits: at {MIN_RATE:g} the overhead is {search.figures(bottom)} against "
            f"{search.budget_text}; the cost is in creating spans, sampled or not, so the span design must change: "
            f"fewer spans on this path{_top_spans(bottom.result)}",
        )
    return search.finish(
        "undecided",
        f"no rate was shown to fit: even at {MIN_RATE:g} the overhead was {search.figures(bottom)} "
        f"against {search.budget_text}; give the test more max_time or a quieter machine",
    )


def _bisect(search: _Search, low: Probe, high: Probe) -> tuple[Probe, Probe, str]:
    """Narrow the passing ``low`` and the failing ``high`` rates to ``RESOLUTION``, or until the time cap."""
    while high.rate / low.rate > RESOLUTION:
        middle = search.probe(math.sqrt(low.rate * high.rate))
        if middle is None:
            return low, high, " (stopped by the time cap)"
        if middle.verdict is Verdict.PASS:
            low = middle
        else:
            high = middle
    return low, high, ""


def _recommend(search: _Search, low: Probe, high: Probe, stopped: str) -> Tuning:
    """A deployable rate at or below ``low``'s, its queue sized for the span rate if a last probe agrees."""
    settings = search.settings
    rate = nice_rate(low.rate)
    recommended = _with_queue(low, _at_rate(settings, rate))
    message = (
        f"highest rate shown to fit: {rate:g} ({low.rate:.3g} measured {search.figures(low)}; "
        f"{high.rate:.3g} measured {search.figures(high)}){stopped}"
    )
    if recommended != _at_rate(settings, rate).pipeline:
        check = search.probe(rate, replace(settings, pipeline=recommended), purpose="queue")
        if check is not None and check.verdict is not Verdict.PASS:
            recommended = _at_rate(settings, rate).pipeline
            message += f"; a queue sized for the span rate measured {search.figures(check)}, so it is left as it was"
    return search.finish("fits", message, recommended)


def _with_queue(passed: Probe, settings: MeasureSettings) -> PipelineSettings:
    """The pipeline at ``settings``' rate, its queue sized for the sampled spans per second measured."""
    pipeline = settings.pipeline
    health = passed.result.health
    if pipeline.processor != "batch" or health is None:
        return pipeline
    calls_per_s = passed.result.throughput_instrumented
    sampled_per_call = health.per_call(health.sampled)
    scale = (pipeline.sample_rate or 1.0) / (passed.pipeline.sample_rate or 1.0)
    per_s = calls_per_s * sampled_per_call * scale
    return replace(pipeline, queue_size=queue_for(per_s, pipeline.schedule_delay_ms, pipeline.queue_size))


def tuning_lines(tuning: Tuning) -> list[str]:
    lines = [f"{tuning.nodeid}  tune: {tuning.message}"]
    for probe in tuning.probes:
        lines.append(f"    probe {probe.purpose} {probe.rate:<8g} {_figures(probe, tuning.metric)}")
    env = tuning.env()
    if env:
        lines.append("    recommended:")
        lines += [f"      {name}={value}" for name, value in env]
    count = len(tuning.probes)
    lines.append(f"    {count} probe{'' if count == 1 else 's'} in {tuning.duration_s:.1f} s")
    return lines
