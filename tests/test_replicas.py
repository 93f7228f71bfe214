"""Time mode over fresh processes: the setting, the statistics that combine processes, and the mode end to end.

The statistics are checked on synthetic data with a known truth: per-process offsets drawn around
it, the interval of one process against the combined one. The end-to-end run measures workloads
whose arms differ by far more than their budgets (or not at all), so its verdicts hold on a busy
machine; its timing checks leave margins of seconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_otel_overhead.engine.children import Child, output_tail
from pytest_otel_overhead.engine.combined import child_plan, combined_metrics, process_estimates
from pytest_otel_overhead.engine.replica_child import (
    PAD_ENV,
    REPLICA_ENV,
    ReplicaSpec,
    call_number,
    replica_child,
)
from pytest_otel_overhead.engine.replicas import measure_replicated
from pytest_otel_overhead.plugins.xdist import result_from_wire, result_to_wire
from pytest_otel_overhead.results import MetricResult, Replica, StopReason, TestResult
from pytest_otel_overhead.samplers import Strategies
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer, env_layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.intervals import random_effects, t_cdf, t_quantile
from pytest_otel_overhead.stats.process_term import TermSource
from pytest_otel_overhead.stats.verdict import (
    Verdict,
    decide,
    decide_across_processes,
    from_statistic,
    process_look_plan,
    process_looks,
    to_statistic,
)
from pytest_otel_overhead.units import Budget, SettingsError

PROCESSES_ENV = "PYTEST_OTEL_OVERHEAD_PROCESSES"
Z95 = 1.959963984540054


# --- the setting ---------------------------------------------------------------------------------


def settings_with(**raw: object) -> MeasureSettings:
    return resolve([Layer.parse(raw, lambda key: "marker on t.py::t", name_keys=True)])


def test_processes_defaults_to_auto_and_comes_from_every_source() -> None:
    assert resolve([]).processes is None
    assert settings_with(processes="auto").processes is None
    assert settings_with(processes=" Auto ").processes is None
    assert settings_with(processes=5).processes == 5
    assert resolve([Layer.parse({"processes": "4"}, lambda key: "--otel-overhead-processes")]).processes == 4
    from_env = resolve([env_layer({PROCESSES_ENV: "3"})])
    assert from_env.processes == 3
    assert from_env.source("processes") == f"${PROCESSES_ENV}"
    assert KEYS["processes"].env == (PROCESSES_ENV,)
    assert settings_with(processes=3).as_dict()["processes"] == 3


@pytest.mark.parametrize("bad", [0, -2, "three", 2.5, True, ""])
def test_a_bad_number_of_processes_is_one_line_naming_its_source(bad: object) -> None:
    with pytest.raises(SettingsError) as info:
        settings_with(processes=bad)
    message = str(info.value)
    assert message.startswith("marker on t.py::t: ")
    assert "(argument processes)" in message
    assert "\n" not in message
    with pytest.raises(SettingsError, match=rf"^\${PROCESSES_ENV}: '0' is not 'auto' or a whole number of at least 1$"):
        env_layer({PROCESSES_ENV: "0"})


# --- Student's t -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 1, 12.706),
        (0.975, 2, 4.303),
        (0.975, 3, 3.182),
        (0.975, 7, 2.365),
        (0.995, 10, 3.169),
        (0.95, 30, 1.697),
    ],
)
def test_t_quantiles_match_the_tables(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=5e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-table, abs=5e-4)


@given(st.floats(-50, 50), st.floats(0.01, 5), st.integers(1, 60))
def test_t_cdf_is_a_symmetric_increasing_distribution(t: float, step: float, df: int) -> None:
    assert 0.0 <= t_cdf(t, df) <= 1.0
    assert t_cdf(t, df) + t_cdf(-t, df) == pytest.approx(1.0, abs=1e-12)
    assert t_cdf(t + step, df) >= t_cdf(t, df) - 1e-15  # far in the tails both round to 0 or 1
    # Heavier tails than the normal: a t quantile lies beyond the normal one.
    assert t_quantile(0.975, df) > Z95


# --- combining processes ---------------------------------------------------------------------------


def test_one_process_gives_no_interval_and_bad_input_is_refused() -> None:
    single = random_effects([0.05], [0.001], 0.95)
    assert (single.low, single.high) == (-math.inf, math.inf)
    with pytest.raises(ValueError, match="as many standard errors as estimates"):
        random_effects([0.05, 0.06], [0.001], 0.95)
    with pytest.raises(ValueError):
        random_effects([], [], 0.95)


@given(st.lists(st.floats(-1, 1), min_size=2, max_size=12), st.sampled_from([0.9, 0.95, 0.99]))
def test_without_usable_standard_errors_it_is_the_t_interval_of_the_mean(estimates: list[float], level: float) -> None:
    pooled = random_effects(estimates, [math.inf] * len(estimates), level)
    k = len(estimates)
    mean = sum(estimates) / k
    sd = math.sqrt(sum((y - mean) ** 2 for y in estimates) / (k - 1))
    half = t_quantile(1 - (1 - level) / 2, k - 1) * sd / math.sqrt(k)
    assert pooled.estimate == pytest.approx(mean, abs=1e-12)
    assert pooled.low == pytest.approx(mean - half, abs=1e-9)
    assert pooled.high == pytest.approx(mean + half, abs=1e-9)


@given(
    st.lists(st.floats(-0.5, 0.5), min_size=2, max_size=10),
    st.floats(1e-4, 0.05),
    st.floats(1.5, 20),
)
def test_processes_that_disagree_more_get_a_wider_interval(base: list[float], se: float, stretch: float) -> None:
    centre = sum(base) / len(base)
    wider = [centre + (y - centre) * stretch for y in base]
    errors = [se] * len(base)
    narrow_pool, wide_pool = random_effects(base, errors, 0.95), random_effects(wider, errors, 0.95)
    assert wide_pool.high - wide_pool.low >= (narrow_pool.high - narrow_pool.low) * (1 - 1e-9)
    assert wide_pool.tau >= narrow_pool.tau


@given(st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(1e-4, 0.1)), min_size=2, max_size=10))
def test_the_interval_is_never_narrower_than_the_standard_errors_allow(processes: list[tuple[float, float]]) -> None:
    estimates, errors = [y for y, _ in processes], [se for _, se in processes]
    pooled = random_effects(estimates, errors, 0.95)
    fixed_effect = 1 / math.sqrt(sum(1 / se**2 for se in errors))
    half = t_quantile(0.975, len(processes) - 1) * fixed_effect
    assert pooled.low <= pooled.estimate <= pooled.high
    assert pooled.high - pooled.low >= 2 * half * (1 - 1e-9)


def simulate(rng: random.Random, truth: float, tau: float, within: float, k: int) -> tuple[list[float], list[float]]:
    """k processes: each offset from the truth by N(0, tau²), then measured with a standard error around ``within``."""
    errors = [within * rng.uniform(0.5, 2.0) for _ in range(k)]
    return [truth + rng.gauss(0, tau) + rng.gauss(0, se) for se in errors], errors


TRIALS = 400


@settings(derandomize=True, max_examples=30)
@given(
    k=st.integers(3, 10),
    truth=st.floats(-0.1, 0.7),
    within=st.floats(0.001, 0.02),
    tau_ratio=st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_combined_interval_covers_the_truth_under_process_offsets(
    k: int, truth: float, within: float, tau_ratio: float, seed: int
) -> None:
    rng = random.Random(seed)
    covered = 0
    for _ in range(TRIALS):
        estimates, errors = simulate(rng, truth, tau_ratio * within, within, k)
        pooled = random_effects(estimates, errors, 0.95)
        covered += pooled.low <= truth <= pooled.high
    # Monte Carlo error of 400 trials at 95% is about 1.1 points; the margin is five of them.
    assert covered / TRIALS >= 0.95 - 0.055


@settings(derandomize=True, max_examples=20)
@given(k=st.integers(3, 10), within=st.floats(0.001, 0.02), tau_ratio=st.floats(6, 20), seed=st.integers(0, 2**32 - 1))
def test_where_one_process_undercovers_the_combination_does_not(
    k: int, within: float, tau_ratio: float, seed: int
) -> None:
    rng = random.Random(seed)
    truth = 0.05
    single = combined = 0
    for _ in range(TRIALS):
        estimates, errors = simulate(rng, truth, tau_ratio * within, within, k)
        single += abs(estimates[0] - truth) <= Z95 * errors[0]
        pooled = random_effects(estimates, errors, 0.95)
        combined += pooled.low <= truth <= pooled.high
    assert single / TRIALS < 0.6  # a process's offset is several of its standard errors
    assert combined / TRIALS >= 0.95 - 0.055


def test_sequential_looks_keep_false_failures_below_the_nominal_rate() -> None:
    """An overhead exactly at the budget, looked at after every process from the third on."""
    budget = Budget("relative", 0.05)
    threshold = to_statistic(budget)
    rng = random.Random(20261130)
    processes, trials = 8, 2000
    plan = process_look_plan(processes, 0.95)
    false_fails = naive_fails = 0
    for _ in range(trials):
        estimates, errors = simulate(rng, threshold, 0.01, 0.002, processes)
        verdicts = [
            decide_across_processes(estimates[:k], errors[:k], budget, plan.per_look_confidence).verdict
            for k in process_looks(processes)
        ]
        naive = [decide_across_processes(estimates[:k], errors[:k], budget, 0.95).verdict for k in range(3, 9)]
        false_fails += Verdict.FAIL in verdicts
        naive_fails += Verdict.FAIL in naive
    assert false_fails / trials <= 0.025 + 0.01
    assert naive_fails > false_fails  # what the Bonferroni widening is for


def test_looks_come_after_each_process_from_the_second() -> None:
    assert process_looks(8) == (2, 3, 4, 5, 6, 7, 8)
    assert process_looks(3) == (2, 3)
    assert process_looks(2) == (2,)
    assert process_look_plan(8, 0.95).per_look_confidence == pytest.approx(1 - 0.05 / 7)
    assert process_look_plan(2, 0.95).per_look_confidence == pytest.approx(0.95)


def test_processes_that_contradict_each_other_alone_are_undecided_together() -> None:
    """The design notes' figures: +3.4% to +6.7% in 8 processes, each ±0.2 points, against 5%."""
    budget = Budget("relative", 0.05)
    overheads = [0.034, 0.041, 0.045, 0.049, 0.053, 0.058, 0.062, 0.067]
    estimates = [math.log1p(x) for x in overheads]
    alone = {decide(y - Z95 * 0.002, y + Z95 * 0.002, to_statistic(budget)) for y in estimates}
    assert alone == {Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE}
    together = decide_across_processes(estimates, [0.002] * 8, budget, 0.95)
    assert together.verdict is Verdict.INCONCLUSIVE
    assert together.ci_low < 0.05 < together.ci_high
    assert together.n == 8
    assert 0.008 < together.spread < 0.015  # about the estimates' standard deviation


def test_far_from_the_budget_three_processes_decide() -> None:
    budget = Budget("relative", 0.05)
    heavy = decide_across_processes([math.log(3.0), math.log(3.1), math.log(2.9)], [0.02] * 3, budget, 0.95)
    assert heavy.verdict is Verdict.FAIL
    assert heavy.estimate == pytest.approx(2.0, abs=0.02)
    same = decide_across_processes([0.003, -0.004, 0.001], [0.01] * 3, Budget("relative", 0.5), 0.95)
    assert same.verdict is Verdict.PASS
    nothing = decide_across_processes([math.nan, math.nan], [0.01, 0.01], budget, 0.95)
    assert (nothing.verdict, nothing.n) == (Verdict.INCONCLUSIVE, 0)


# --- combining results -----------------------------------------------------------------------------


FIVE_PERCENT = Budget("relative", 0.05)


def child_metric(
    overhead: float,
    se: float,
    *,
    metric: str = "cpu",
    budget: Budget | None = FIVE_PERCENT,
    verdict: Verdict | None = None,
    note: str | None = None,
) -> MetricResult:
    """A process's metric whose interval, at the children's per-look confidence, implies standard error ``se``."""
    level = child_plan(0.95).per_look_confidence if metric != "heap" else 0.95
    half = se * NormalDist().inv_cdf(1 - (1 - level) / 2)  # the half-width that se implies at that level
    y = math.log1p(overhead)
    low, high = y - half, y + half
    if verdict is None and budget is not None:
        verdict = decide(low, high, to_statistic(budget))
    return MetricResult(
        metric=metric,
        baseline=1e-3,
        instrumented=1e-3 * (1 + overhead),
        overhead=overhead,
        ci_low=from_statistic(low, "relative"),
        ci_high=from_statistic(high, "relative"),
        kind="relative",
        n=40,
        spread=0.03,
        confidence=0.95,
        budget=budget,
        verdict=verdict,
        note=note,
    )


def child_result(*metrics: MetricResult, settings: MeasureSettings | None = None) -> TestResult:
    return TestResult(
        nodeid="t.py::t",
        settings=settings or MeasureSettings(),
        metrics=metrics,
        health=None,
        process=None,
        pairs=40,
        calls_per_block=10,
        looks=2,
        duration_s=1.0,
        stop_reason=StopReason.DECIDED,
        throughput_baseline=1000.0,
        throughput_instrumented=900.0,
    )


def test_a_process_estimate_and_its_standard_error_come_back_from_its_result() -> None:
    estimates, errors = process_estimates([child_metric(0.2, 0.01), child_metric(math.nan, 0.01)])
    assert estimates == [pytest.approx(math.log1p(0.2))]
    assert errors == [pytest.approx(0.01)]


def test_combined_metrics_say_how_many_processes_and_their_spread() -> None:
    results = [child_result(child_metric(x, 0.01)) for x in (2.0, 2.1, 1.95)]
    (cpu,) = combined_metrics(MeasureSettings(), results, 0.95, 0.95)
    assert cpu.verdict is Verdict.FAIL
    assert cpu.n == 3
    assert cpu.between_process_spread is not None and 0 < cpu.between_process_spread < 0.1
    assert cpu.note is not None and cpu.note.startswith("3 processes: +195.0% to +210.0% each, between-process spread")
    assert cpu.as_dict()["between_process_spread"] == cpu.between_process_spread


def test_disagreeing_processes_are_told_to_add_processes() -> None:
    results = [child_result(child_metric(x, 0.002)) for x in (0.034, 0.067, 0.045)]
    (cpu,) = combined_metrics(MeasureSettings(), results, 0.95, 0.95)
    assert cpu.verdict is Verdict.INCONCLUSIVE
    assert cpu.resolution is not None and cpu.resolution > 0
    assert cpu.note is not None and "more processes narrow this" in cpu.note


def test_noise_within_each_process_is_told_what_this_run_resolves() -> None:
    results = [child_result(child_metric(x, 0.03)) for x in (0.05, 0.051, 0.049)]
    (cpu,) = combined_metrics(MeasureSettings(), results, 0.95, 0.95)
    assert cpu.verdict is Verdict.INCONCLUSIVE
    assert cpu.note is not None and "this run resolves overheads below" in cpu.note
    assert "more processes" not in cpu.note


def test_a_budget_a_process_declined_to_judge_stays_undecided_with_its_reason() -> None:
    heap_budget = Budget("relative", 0.1)
    settings = dataclasses.replace(
        MeasureSettings(), budgets=(("cpu", Budget("relative", 0.05)), ("heap", heap_budget))
    )
    reason = "the baseline peak is 200 B, too small for a relative heap budget"
    refused = child_metric(3.0, 0.01, metric="heap", budget=heap_budget, verdict=Verdict.INCONCLUSIVE, note=reason)
    results = [child_result(child_metric(0.0, 0.005), refused) for _ in range(3)]
    cpu, heap = combined_metrics(settings, results, 0.95, 0.95)
    assert cpu.verdict is Verdict.PASS
    assert heap.verdict is Verdict.INCONCLUSIVE
    assert heap.note == reason
    assert heap.resolution is None


def test_a_metric_no_process_measured_keeps_its_reason_and_no_verdict() -> None:
    unmeasured = dataclasses.replace(
        child_metric(0.0, 0.01, metric="heap", budget=None), overhead=math.nan, note="not measured: too slow"
    )
    results = [child_result(child_metric(0.0, 0.005), unmeasured) for _ in range(3)]
    _, heap = combined_metrics(MeasureSettings(), results, 0.95, 0.95)
    assert heap.verdict is None
    assert heap.note == "not measured: too slow"
    assert heap.n == 0


def test_a_single_process_is_decided_with_the_prior_and_says_why() -> None:
    (cpu,) = combined_metrics(MeasureSettings(), [child_result(child_metric(3.0, 0.001))], 0.95, 0.95)
    assert cpu.verdict is Verdict.FAIL  # +300% against 5%: the prior's term cannot reach the budget
    assert cpu.between_process_source is TermSource.BUILT_IN
    assert cpu.note is not None and cpu.note.startswith("only 1 process ran within max_time: its interval counts")
    assert cpu.note.endswith("raise max_time or lower processes")
    (near,) = combined_metrics(MeasureSettings(), [child_result(child_metric(0.06, 0.001))], 0.95, 0.95)
    assert near.verdict is Verdict.INCONCLUSIVE  # its own ±0.1 points would FAIL it; the term does not


def test_processes_that_ran_without_a_figure_are_not_told_to_raise_max_time() -> None:
    unmeasured = dataclasses.replace(child_metric(0.0, 0.01, metric="latency_p99", budget=None), overhead=math.nan)
    results = [child_result(child_metric(0.0, 0.005), unmeasured) for _ in range(3)]
    _, p99 = combined_metrics(MeasureSettings(), results, 0.95, 0.95)
    assert p99.note is not None and p99.note.startswith("0 of 3 processes had calls enough for a latency p99 figure")
    assert "max_time" not in p99.note and "a budget on latency p99 keeps them measuring" in p99.note


# --- what travels between processes ----------------------------------------------------------------


STRATEGIES = json.dumps(
    {
        "default_strategy": {"type": "probabilistic", "param": 0.5},
        "per_operation_strategies": [{"operation": "GET /", "type": "probabilistic", "param": 0.1}],
    }
)


def test_the_spec_carries_every_setting_to_the_child(tmp_path: Path) -> None:
    full = resolve(
        [
            Layer.parse(
                {
                    "budget": "7%",
                    "heap": "2MiB",
                    "latency_p95": "20%",
                    "strategies": STRATEGIES,
                    "queue_size": 4096,
                    "processes": 5,
                    "max_time": 12,
                },
                lambda key: "marker on t.py::t",
            )
        ]
    )
    assert isinstance(full.pipeline.strategies, Strategies)
    spec = ReplicaSpec(dataclasses.replace(full, processes=1, max_time=2.5), 2, tmp_path / "r.json", 1234)
    assert ReplicaSpec.from_json(spec.to_json()) == spec


def test_a_combined_result_travels_to_the_xdist_controller_whole() -> None:
    results = [child_result(child_metric(x, 0.01)) for x in (2.0, 2.1, 1.95)]
    replicas = tuple(
        Replica(pid=100 + i, hash_seed=7 + i, env_pad=i, pairs=40, duration_s=1.5, verdict=Verdict.FAIL,
                overheads=(("cpu", 2.0, 1.9, math.inf),))
        for i in range(3)
    )  # fmt: skip
    metrics = tuple(combined_metrics(MeasureSettings(), results, 0.95, 0.95))
    combined = dataclasses.replace(results[0], metrics=metrics, processes=3, replicas=replicas)
    assert result_from_wire(result_to_wire(combined)) == combined


def test_only_the_parent_s_own_child_measures_and_only_the_call_it_was_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = tmp_path / "spec.json"
    spec = ReplicaSpec(settings_with(processes=1), 2, tmp_path / "result.json", os.getppid())
    spec_path.write_text(spec.to_json(), encoding="utf-8")
    monkeypatch.setenv(REPLICA_ENV, str(spec_path))
    config = SimpleNamespace(stash=pytest.Stash())
    child = replica_child(config)  # type: ignore[arg-type]
    assert child is not None and child.spec == spec
    assert replica_child(config) is child  # type: ignore[arg-type]  # read once per session
    calls: list[int] = []
    skipped = child.measure(None, "t.py::t", lambda: calls.append(1), None)  # type: ignore[arg-type]
    assert (skipped.metrics, skipped.pairs, calls) == ((), 0, [])
    assert not (tmp_path / "result.json").exists()
    # A process that the measured test itself starts inherits the variable, but not the parent.
    spec_path.write_text(dataclasses.replace(spec, parent_pid=os.getppid() + 1).to_json(), encoding="utf-8")
    assert replica_child(SimpleNamespace(stash=pytest.Stash())) is None  # type: ignore[arg-type]


def test_no_measurement_over_processes_starts_inside_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLICA_ENV, "/nonexistent/spec.json")
    with pytest.raises(pytest.fail.Exception, match=r"^otel-overhead: t\.py::t: processes=3 in a process that"):
        measure_replicated(None, settings_with(processes=3), label="t.py::t")  # type: ignore[arg-type]


def test_call_numbers_follow_the_fixture_labels() -> None:
    assert call_number("t.py::test_a") == 1
    assert call_number("t.py::test_a#call3") == 3
    assert call_number("t.py::test_a#call2[tune probe 0.1]") == 2


def test_a_child_output_tail_is_one_line_with_its_last_words() -> None:
    output = (
        "collected 1 item\n\nt.py F\n"
        "E   LookupError: gave up on call 2\n"
        "=========================== short test summary info ============================\n"
        "FAILED t.py::test_a - LookupError: gave up on call 2\n"
        "1 failed in 0.41s\n"
    )
    tail = output_tail(output)
    assert "\n" not in tail
    assert tail.endswith("FAILED t.py::test_a - LookupError: gave up on call 2")
    assert "short test summary" not in tail and "0.41s" not in tail
    assert len(output_tail("x" * 5000)) <= 401
    assert output_tail("") == "(nothing)"


def test_a_stopped_child_is_killed_with_its_group_and_its_output_kept(tmp_path: Path) -> None:
    script = "import time; print('started', flush=True); time.sleep(60)"
    child = Child.start([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ), log=tmp_path / "out.log")
    waited = time.monotonic() + 30
    while "started" not in child.output() and time.monotonic() < waited:
        time.sleep(0.01)
    child.stop()
    assert child.process.returncode == -signal.SIGKILL
    assert output_tail(child.output()) == "started"
    child.stop()  # stopping an ended child does nothing


def _fields(value: Any, parent: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if parent not in ("metrics", "budgets", "sources"):  # keyed by data, not fields
                yield key
            yield from _fields(inner, key)
    elif isinstance(value, list):
        for inner in value:
            yield from _fields(inner, parent)


def test_every_new_field_is_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "json-schema.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)`", doc))
    results = [child_result(child_metric(x, 0.01)) for x in (2.0, 2.1, 1.95)]
    replica = Replica(1, 2, 3, 40, 1.5, Verdict.FAIL, (("cpu", 2.0, 1.9, 2.1),))
    combined = dataclasses.replace(
        results[0], metrics=tuple(combined_metrics(MeasureSettings(), results, 0.95, 0.95)), replicas=(replica,)
    )
    data = json.loads(json.dumps(combined.as_dict()))
    assert sorted(set(_fields(data)) - documented) == []
    assert {"processes", "replicas", "between_process_spread", "hash_seed", "env_pad_bytes"} <= documented


# --- end to end ------------------------------------------------------------------------------------

CONFTEST = f"""
import os
import pathlib
import threading

import pytest
from opentelemetry import trace

SEEN = pathlib.Path(__file__).parent / "seen"


def pytest_configure(config):
    # Every pytest process that runs here says who it is and how it was started.
    SEEN.mkdir(exist_ok=True)
    pad = len(os.environ.get("{PAD_ENV}", ""))
    (SEEN / str(os.getpid())).write_text(f"{{os.environ.get('PYTHONHASHSEED', '')}} {{pad}}")


@pytest.fixture(autouse=True)
def interpreter_left_as_found():
    provider = trace.get_tracer_provider()
    environ = {{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}}
    threads = threading.active_count()
    yield
    assert trace.get_tracer_provider() is provider, "the global TracerProvider was replaced"
    after = {{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}}
    assert after == environ, "left the environment changed"
    assert threading.active_count() == threads, "left threads running"
"""

TESTS = """
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("shop")
CALLS = {"n": 0}


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


# Work done only while a span records: the instrumented arm does three times the baseline's.
@pytest.mark.otel_overhead(budget="5%", processes=3, max_time=10)
def test_injected_cost():
    with tracer.start_as_current_span("step") as span:
        spin(4000)
        if span.is_recording():
            spin(8000)


@pytest.mark.otel_overhead(budget="50%", processes=3, max_time=10, no_telemetry="warn")
def test_identical_arms():
    spin(4000)


@pytest.mark.otel_overhead(budget="50%", processes=3, max_time=10)
def test_fails_while_measured():
    CALLS["n"] += 1
    if CALLS["n"] > 1:
        raise LookupError(f"gave up on call {CALLS['n']}")


# No run decides 0.01%: every process measures to the end of its share.
@pytest.mark.otel_overhead(budget="0.01%", processes=3, max_time=MAX_TIME, inconclusive="pass", no_telemetry="warn")
def test_undecidable():
    spin(4000)
"""

MAX_TIME = 5.0
MARGIN_S = 4.0
"""Beyond max_time: a child's start-up slower than the ones before it, the engine's own overrun."""


@dataclass
class ReplicatedRun:
    path: Path
    stdout: str
    elapsed: float
    tests: dict[str, dict[str, Any]]

    def seen(self) -> dict[int, str]:
        return {int(p.name): p.read_text() for p in (self.path / "seen").iterdir()}


@pytest.fixture(scope="module")
def replicated_run(tmp_path_factory: pytest.TempPathFactory) -> ReplicatedRun:
    path = tmp_path_factory.mktemp("replicated")
    (path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (path / "test_replicated.py").write_text(TESTS.replace("MAX_TIME", repr(MAX_TIME)), encoding="utf-8")
    excluded = ("PYTEST_ADDOPTS", PROCESSES_ENV, "PYTHONHASHSEED")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in excluded}
    env["PY_COLORS"] = "0"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "--otel-overhead"]
    began = time.perf_counter()
    done = subprocess.run(
        [*command, "--otel-overhead-json=out.json"], cwd=path, env=env, capture_output=True, text=True, timeout=600
    )
    elapsed = time.perf_counter() - began
    document = json.loads((path / "out.json").read_text(encoding="utf-8"))
    tests = {test["nodeid"].split("::")[1]: test for test in document["tests"]}
    return ReplicatedRun(path, done.stdout + done.stderr, elapsed, tests)


def test_a_large_injected_cost_fails_at_the_first_look_over_two_processes(replicated_run: ReplicatedRun) -> None:
    result = replicated_run.tests["test_injected_cost"]
    assert result["verdict"] == "FAIL", replicated_run.stdout
    assert result["processes"] == 2 and len(result["replicas"]) == 2
    assert result["stop_reason"] == "decided"
    cpu = result["metrics"]["cpu"]
    assert cpu["ci_low"] > 0.5 and cpu["n"] == 2
    assert cpu["between_process_source"] == "measured"
    assert cpu["between_process_spread"] is not None
    assert result["settings"]["processes"] == 3
    out = replicated_run.stdout
    assert re.search(r"CPU overhead .* exceeds budget 5\.0% \(2 processes: \+\d+\.\d% to \+\d+\.\d% each", out)
    progress = out.split("test_replicated.py::test_injected_cost \n", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^  otel-overhead: process 1/3 starts; it may measure for up to [\d.]+s$", progress, re.M)
    assert re.search(r"^  otel-overhead: processes 2/3, [\d.]+s: CPU \+", progress, re.MULTILINE)
    # The summary says so, with how far the processes are apart (lines too long go on indented two more).
    summary = out.replace("\n      ", " ")
    assert re.search(r"^    .*; \d+ pairs over 2 processes in [\d.]+ s; CPU between processes ±", summary, re.M)


def test_identical_arms_pass_at_the_first_look_over_two_processes(replicated_run: ReplicatedRun) -> None:
    result = replicated_run.tests["test_identical_arms"]
    assert result["verdict"] == "PASS", replicated_run.stdout
    assert result["processes"] == 2
    assert abs(result["metrics"]["cpu"]["overhead"]) < 0.2


def test_each_process_was_a_fresh_pytest_process_with_its_own_layout(replicated_run: ReplicatedRun) -> None:
    seen = replicated_run.seen()
    replicas = [replica for result in replicated_run.tests.values() for replica in result["replicas"]]
    pids = [replica["pid"] for replica in replicas]
    assert len(set(pids)) == len(pids) >= 5  # two each for the decided tests, one to three for the undecidable one
    # Besides the children that returned a result: the session's own process and the failing child.
    assert set(pids) <= set(seen) and len(seen) == len(pids) + 2
    for replica in replicas:
        assert seen[replica["pid"]] == f"{replica['hash_seed']} {replica['env_pad_bytes']}"
        assert 0 <= replica["env_pad_bytes"] <= 4096
        assert replica["pairs"] >= 2
    assert len({replica["hash_seed"] for replica in replicas}) == len(replicas)


def test_a_failing_child_fails_the_test_in_one_line(replicated_run: ReplicatedRun) -> None:
    assert "test_fails_while_measured" not in replicated_run.tests
    out = replicated_run.stdout
    assert re.search(r"^test_replicated\.py::test_fails_while_measured FAILED", out, re.MULTILINE)
    line = (
        r"^otel-overhead: test_replicated\.py::test_fails_while_measured: process 1 of 3 \(pid \d+\) ended without "
        r"a result \(exit status 1\); its output ends: "
        r".*(LookupError: gave up on call 2|raised on a measured repetition)"
    )
    assert re.search(line, out, re.MULTILINE), out
    section = out.split("_ test_fails_while_measured _", 1)[1].split("\n_", 1)[0]
    assert "Traceback" not in section


def test_max_time_holds_over_processes(replicated_run: ReplicatedRun) -> None:
    result = replicated_run.tests["test_undecidable"]
    assert result["settings"]["max_time_s"] == MAX_TIME
    assert result["duration_s"] <= MAX_TIME + MARGIN_S
    assert sum(r["duration_s"] for r in result["replicas"]) <= result["duration_s"]
    assert result["processes"] == len(result["replicas"]) >= 1
    if result["verdict"] == "INCONCLUSIVE":
        assert result["stop_reason"] in ("all processes", "max_time")


def test_a_gate_s_minimum_of_processes_runs_every_one_a_decided_budget_would_stop_short_of(tmp_path: Path) -> None:
    # What a calibration asks (`--otel-overhead-min-processes` as its `--processes`): the spread of
    # every process, where two already decide this budget (the first test of the module above).
    (tmp_path / "test_replicated.py").write_text(TESTS.replace("MAX_TIME", repr(MAX_TIME)), encoding="utf-8")
    excluded = ("PYTEST_ADDOPTS", PROCESSES_ENV, "PYTHONHASHSEED")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in excluded}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_replicated.py::test_injected_cost"]
    options = ["--otel-overhead", "--otel-overhead-min-processes=3", "--otel-overhead-json=out.json"]
    done = subprocess.run([*command, *options], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    (result,) = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["tests"]
    assert result["verdict"] == "FAIL", done.stdout
    assert result["processes"] == len(result["replicas"]) == 3


def test_nothing_in_the_session_process_was_left_changed(replicated_run: ReplicatedRun) -> None:
    out = replicated_run.stdout
    for complaint in ("left the environment changed", "left threads running", "TracerProvider was replaced"):
        assert complaint not in out
    assert not re.search(r"^test_replicated\.py::\w+ ERROR", out, re.MULTILINE)


ABSOLUTE = Budget("absolute", 5e-3)
ABSOLUTE_SETTINGS = dataclasses.replace(MeasureSettings(), budgets=(("cpu", ABSOLUTE),))


def absolute_metric(overhead: float, half: float, baseline: float = 1e-3) -> MetricResult:
    """A process's CPU figure under ``ABSOLUTE``: ``overhead`` seconds per call ± ``half``, on ``baseline``."""
    return dataclasses.replace(
        child_metric(0.0, 0.01, budget=None),
        kind="absolute",
        baseline=baseline,
        overhead=overhead,
        ci_low=overhead - half,
        ci_high=overhead + half,
        instrumented=baseline + overhead,
        budget=ABSOLUTE,
        verdict=Verdict.PASS,
    )


def test_an_absolute_budget_over_processes_keeps_their_spread_for_comparisons() -> None:
    results = [child_result(absolute_metric(x, 1e-4)) for x in (1.0e-3, 1.5e-3, 2.0e-3)]
    (cpu,) = combined_metrics(ABSOLUTE_SETTINGS, results, 0.95, 0.95)
    assert cpu.kind == "absolute" and cpu.n == 3
    # Seconds per call, as the overhead: a comparison of runs takes it relative to the instrumented time.
    assert cpu.between_process_spread is not None
    assert 2e-4 < cpu.between_process_spread < 1e-3


def test_processes_that_agree_on_an_absolute_overhead_still_count_the_prior_in_its_units() -> None:
    # Three processes reading +1 ms alike, on a 10 ms baseline: random effects alone would see no spread
    # between them (and print ±0 ns); one process counts the prior's share of its baseline, so three do too.
    agreeing = [child_result(absolute_metric(1e-3, 1e-5, baseline=10e-3)) for _ in range(3)]
    (cpu,) = combined_metrics(ABSOLUTE_SETTINGS, agreeing, 0.95, 0.95)
    prior = ABSOLUTE_SETTINGS.process_term.in_units(10e-3)
    assert cpu.between_process_spread is not None
    # τ² weighs the prior (df 4) against the measured 0 (2 degrees of freedom).
    assert cpu.between_process_spread == pytest.approx(prior.tau * math.sqrt(4 / 6), rel=1e-6)
    # Wider than the processes' own ±10 µs: the prior's spread counts in the interval, not only in the note.
    assert cpu.ci_high - cpu.overhead > 2 * cpu.between_process_spread / math.sqrt(3) > 2e-5
