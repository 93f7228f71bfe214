"""Comparing two runs: the two-sample interval, criteria, and verdicts on synthetic samples."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Callable
from statistics import NormalDist

import pytest
from conftest import build_result
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_otel_overhead.history import compare, shift
from pytest_otel_overhead.history.compare import (
    Criterion,
    MetricChange,
    compare_results,
    compare_runs,
    comparison_lines,
    environment_differences,
    log_ratios,
    parse_criteria,
    regression_message,
    shift_interval,
)
from pytest_otel_overhead.history.store import RunRecord
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.intervals import MAX_BATCHES, batch_slices
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM, ProcessTerm, TermSource
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import SettingsError

finite = st.floats(min_value=-5, max_value=5, allow_nan=False, allow_infinity=False)


def _samples(overhead: float, noise: float, pairs: int, seed: int) -> tuple[tuple[float, float, float, float], ...]:
    """Per-pair times whose log ratio is ln(1 + overhead) plus Gaussian noise of sd ``noise``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(pairs):
        baseline = 1e-3 * math.exp(rng.gauss(0, 0.2))  # the machine's speed drifts; the ratio does not care
        instrumented = baseline * (1 + overhead) * math.exp(rng.gauss(0, noise))
        rows.append((baseline, instrumented, baseline * 1.5, instrumented * 1.5))
    return tuple(rows)


@pytest.fixture
def result_with(make_result: Callable[..., TestResult]) -> Callable[..., TestResult]:
    def build(
        overhead: float, *, noise: float = 0.05, pairs: int = 300, seed: int = 0, nodeid: str = "t.py::t"
    ) -> TestResult:
        return dataclasses.replace(make_result(nodeid), samples=_samples(overhead, noise, pairs, seed))

    return build


def _run(*results: TestResult, **environment: object) -> RunRecord:
    env: dict[str, object] = {"python": "3.11.7", "cpu_count": 2, "packages": {"opentelemetry-sdk": "1.45.2"}}
    env.update(environment)
    return RunRecord(results=results, environment=env, created="2025-01-01T00:00:00+00:00", name="base")


# -- the two-sample interval --------------------------------------------------------------------


@given(st.lists(finite, min_size=1, max_size=25), st.lists(finite, min_size=1, max_size=25), st.data())
def test_order_statistics_of_differences_match_brute_force(x: list[float], y: list[float], data: st.DataObject) -> None:
    xs, ys = sorted(x), sorted(y)
    k = data.draw(st.integers(1, len(xs) * len(ys)))
    expected = sorted(b - a for a in xs for b in ys)[k - 1]
    found = shift._difference_order_statistic(xs, ys, k, exact=False)
    assert math.isclose(found, expected, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (3, 4), (4, 4), (5, 2)])
def test_rank_sum_distribution_is_exact(m: int, n: int) -> None:
    counts = [0] * (m * n + 1)
    for positions in itertools.combinations(range(m + n), m):
        others = set(range(m + n)) - set(positions)
        counts[sum(1 for p in positions for q in others if p < q)] += 1
    running = list(itertools.accumulate(counts))
    expected = [c / running[-1] for c in running]
    assert shift._rank_sum_cdf(m, n) == pytest.approx(expected)


def test_normal_approximation_agrees_with_the_exact_depth(monkeypatch: pytest.MonkeyPatch) -> None:
    exact = [shift._rank_sum_depth(m, n, 0.95) for m, n in ((40, 60), (50, 50), (30, 80))]
    monkeypatch.setattr(shift, "_EXACT_LIMIT", 0)
    approximate = [shift._rank_sum_depth(m, n, 0.95) for m, n in ((40, 60), (50, 50), (30, 80))]
    assert all(abs(a - e) <= 1 for a, e in zip(approximate, exact, strict=True))


@given(st.lists(finite, min_size=6, max_size=30), st.lists(finite, min_size=6, max_size=30), finite)
def test_shift_interval_moves_with_the_later_sample(x: list[float], y: list[float], c: float) -> None:
    low, estimate, high = shift_interval(x, y, 0.95)
    moved = shift_interval(x, [v + c for v in y], 0.95)
    assert low <= estimate <= high
    for before, after in zip((low, estimate, high), moved, strict=True):
        assert math.isclose(after, before + c, rel_tol=1e-9, abs_tol=1e-9)


def test_shift_interval_covers_the_true_shift_about_as_often_as_promised() -> None:
    rng = random.Random(20250101)  # fixed seed: the same 400 trials every time
    misses = 0
    for _ in range(400):
        x = [rng.gauss(0, 1) for _ in range(25)]
        y = [rng.gauss(0.3, 1) for _ in range(35)]
        low, _, high = shift_interval(x, y, 0.95)
        misses += not low <= 0.3 <= high
    assert misses / 400 < 0.09


def test_too_few_values_give_an_unbounded_interval() -> None:
    assert shift_interval([1.0, 2.0], [3.0], 0.95)[0] == -math.inf
    assert shift_interval([], [1.0], 0.95)[2] == math.inf


# -- criteria -----------------------------------------------------------------------------------


def test_a_change_reads_in_percent_and_percentage_points() -> None:
    change = MetricChange(
        "cpu", 0.031, 0.098, (0.06, 0.067, math.inf), (1.5, 2.16, math.inf), (0, 0.05, 0.1), 40, 40, 0.95
    )
    assert change.describe() == "CPU +3.1% → +9.8%: +6.7pp (95% CI [+6.0pp, ∞]), +216% relative"
    unknown = dataclasses.replace(change, before=math.nan, relative=None)
    assert unknown.describe() == "CPU — → +9.8%: +6.7pp (95% CI [+6.0pp, ∞])"


def test_parse_criteria() -> None:
    assert parse_criteria("cpu:+1pp", "x") == (Criterion("cpu", 0.01, "pp"),)
    assert parse_criteria(["CPU: +20%", "wall:0.5pp,cpu:2pp"], "x") == (
        Criterion("cpu", 0.2, "%"),
        Criterion("wall", 0.005, "pp"),
        Criterion("cpu", 0.02, "pp"),
    )
    assert Criterion("cpu", 0.01, "pp").describe() == "cpu:+1pp"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu", "not a regression criterion"),
        ("cpu:+1", "not a regression criterion"),
        ("cpu:-1pp", "not a regression criterion"),
        ("heap:+1pp", "only those can be compared"),
        ("cpu:+0pp", "must be above 0"),
        (",", "no criterion given"),
    ],
)
def test_bad_criteria_name_their_source(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"--opt: .*{message}"):
        parse_criteria(text, "--opt")


# -- verdicts on synthetic runs -------------------------------------------------------------------


def _verdict(before: TestResult, after: TestResult, text: str) -> Verdict | None:
    return compare_results(before, after, parse_criteria(text, "test")).verdict


def test_identical_code_does_not_regress(result_with: Callable[..., TestResult]) -> None:
    for seed in range(5):
        before, after = result_with(0.05, seed=seed), result_with(0.05, seed=seed + 100)
        # One process each: their offsets (the built-in prior, at the t quantile of its 4 degrees of freedom)
        # leave about ±3 points at 5%.
        assert _verdict(before, after, "cpu:+1pp") is Verdict.INCONCLUSIVE
        assert _verdict(before, after, "cpu:+5pp") is Verdict.PASS
        assert _verdict(before, after, "cpu:+10pp") is Verdict.PASS
        assert _verdict(before, after, "cpu:+500%") is Verdict.PASS


def test_runs_measured_over_more_processes_resolve_smaller_changes(result_with: Callable[..., TestResult]) -> None:
    before, after = result_with(0.05, seed=1), result_with(0.05, seed=2)
    spread = [dataclasses.replace(r, processes=10) for r in (before, after)]
    assert _verdict(before, after, "cpu:+1.5pp") is Verdict.INCONCLUSIVE
    assert _verdict(*spread, "cpu:+1.5pp") is Verdict.PASS
    one, ten = (compare_results(*runs).metrics[0].points for runs in ((before, after), spread))
    assert ten[2] - ten[0] < (one[2] - one[0]) / 2


def _offset(result: TestResult, offset: float) -> TestResult:
    """``result`` as a process whose every pair reads ``exp(offset)`` times the instrumented time."""
    rows = tuple((b, i * math.exp(offset), bw, iw * math.exp(offset)) for b, i, bw, iw in result.samples)
    return dataclasses.replace(result, samples=rows)


@pytest.mark.parametrize(("ratio", "tau"), [(1.066, 0.0067), (1.28, 0.0053), (6.3, 0.0172)])
def test_unchanged_code_in_processes_with_offsets_never_regresses(
    result_with: Callable[..., TestResult], ratio: float, tau: float
) -> None:
    # Offsets (sd tau of the log ratio) as measured between processes on the real workloads manual,
    # requests and sqlite3 (docs/accuracy.md), each run in a process of its own: 40 runs, each
    # compared with the next. Without the processes' term, such runs said REGRESSED.
    rng = random.Random(int(ratio * 100))
    runs = [_offset(result_with(ratio - 1, seed=s), rng.gauss(0, tau)) for s in range(40)]
    verdicts = [_verdict(a, b, "cpu:+1pp") for a, b in itertools.pairwise(runs)]
    assert Verdict.FAIL not in verdicts


def test_an_absolute_spread_is_taken_relative_to_the_instrumented_time(result_with: Callable[..., TestResult]) -> None:
    result = result_with(0.05, seed=1)
    absolute = dataclasses.replace(
        result,
        metrics=tuple(
            dataclasses.replace(m, kind="absolute", instrumented=2e-3, between_process_spread=4e-5)
            for m in result.metrics
        ),
    )
    assert compare.process_spread(absolute, "cpu", math.log1p(0.05)) == pytest.approx(0.02)


def test_a_spread_the_runs_measured_widens_beyond_the_prior(result_with: Callable[..., TestResult]) -> None:
    before, after = result_with(0.05, seed=1), result_with(0.05, seed=2)
    cpu = before.metric("cpu")
    # A run saved before results recorded their term: the built-in prior at the run's log ratio.
    assert cpu is not None and cpu.between_process_spread is None
    assert compare.process_spread(before, "cpu", math.log1p(0.05)) == BUILT_IN_TERM.spread(math.log1p(0.05))
    wide = dataclasses.replace(
        before, metrics=tuple(dataclasses.replace(m, between_process_spread=0.105) for m in before.metrics)
    )
    assert compare.process_spread(wide, "cpu", math.log1p(0.05)) == pytest.approx(math.log1p(0.105))
    prior, measured = (compare_results(b, after).metrics[0].points for b in (before, wide))
    assert measured[2] - measured[0] > 2 * (prior[2] - prior[0])


def test_the_larger_spread_either_run_saw_applies_to_both(result_with: Callable[..., TestResult]) -> None:
    before, after = result_with(0.05, seed=1), result_with(0.05, seed=2)
    spread = 0.2
    eight = dataclasses.replace(
        after,
        processes=8,
        metrics=tuple(dataclasses.replace(m, between_process_spread=math.expm1(spread)) for m in after.metrics),
    )
    at = (math.log1p(0.05), math.log1p(0.05))
    width = compare.offsets_half_width(before, eight, "cpu", 0.95, 0.0, at)
    # The one process before may be as far off as the eight after spread, not only the prior's 0.006 or so.
    assert width > NormalDist().inv_cdf(0.975) * spread * math.sqrt(1 + 1 / 8)
    assert width == compare.offsets_half_width(eight, before, "cpu", 0.95, 0.0, at)


def test_a_calibrated_spread_smaller_than_the_prior_resolves_smaller_changes(
    result_with: Callable[..., TestResult],
) -> None:
    before, after = result_with(0.05, seed=1), result_with(0.05, seed=2)
    calibrated = ProcessTerm(0.002, 0.0, 40, 0.005, TermSource.CALIBRATED)
    runs = [
        dataclasses.replace(
            r,
            settings=dataclasses.replace(r.settings, process_term=calibrated),
            metrics=tuple(dataclasses.replace(m, between_process_spread=math.expm1(0.002)) for m in r.metrics),
        )
        for r in (before, after)
    ]
    assert _verdict(before, after, "cpu:+1.5pp") is Verdict.INCONCLUSIVE
    assert _verdict(*runs, "cpu:+1.5pp") is Verdict.PASS


def test_a_large_growth_regresses(result_with: Callable[..., TestResult]) -> None:
    before, after = result_with(0.05, seed=1), result_with(0.30, seed=2)
    change = compare_results(before, after, parse_criteria("cpu:+1pp,cpu:+20%,wall:+50pp", "test"))
    cpu = next(m for m in change.metrics if m.metric == "cpu")
    low, _, high = cpu.points
    assert 0.15 < low < 0.25 < high
    assert cpu.relative is not None and cpu.relative[0] > 1.0  # 5% → 30% is five times as much
    assert [v for _, v in cpu.outcomes] == [Verdict.FAIL, Verdict.FAIL]
    wall = next(m for m in change.metrics if m.metric == "wall")
    assert [v for _, v in wall.outcomes] == [Verdict.PASS]
    assert change.verdict is Verdict.FAIL


def test_small_growth_passes_a_loose_criterion_and_is_undecided_against_a_tight_one(
    result_with: Callable[..., TestResult],
) -> None:
    before, after = result_with(0.05, seed=3), result_with(0.06, seed=4)
    assert _verdict(before, after, "cpu:+10pp") is Verdict.PASS
    assert _verdict(before, after, "cpu:+1pp") is Verdict.INCONCLUSIVE


def test_relative_growth_from_nothing_is_still_growth(result_with: Callable[..., TestResult]) -> None:
    before, after = result_with(0.0, seed=5), result_with(0.10, seed=6)
    change = compare_results(before, after, parse_criteria("cpu:+20%", "test"))
    assert change.metrics[0].relative is None  # undefined relative to an overhead of about zero
    assert change.verdict is Verdict.FAIL


def test_few_pairs_decide_nothing(result_with: Callable[..., TestResult]) -> None:
    before, after = result_with(0.05, pairs=3, seed=7), result_with(0.5, pairs=3, seed=8)
    assert _verdict(before, after, "cpu:+1pp") is Verdict.INCONCLUSIVE


def test_machine_drift_between_runs_is_not_a_regression(result_with: Callable[..., TestResult]) -> None:
    before = result_with(0.05, seed=9)
    slower = dataclasses.replace(
        result_with(0.05, seed=10),
        samples=tuple(tuple(v * 1.8 for v in row) for row in result_with(0.05, seed=10).samples),  # type: ignore[misc]
    )
    assert _verdict(before, slower, "cpu:+10pp") is Verdict.PASS


def test_log_ratios_skip_empty_blocks(result_with: Callable[..., TestResult]) -> None:
    result = dataclasses.replace(result_with(0.1, pairs=2), samples=((0.0, 1.0, 1.0, 2.0), (1.0, 2.0, 1.0, 1.0)))
    assert log_ratios(result, "cpu") == [math.log(2.0)]
    assert log_ratios(result, "wall") == [math.log(2.0), 0.0]


# -- runs, tests and what differs ----------------------------------------------------------------


def test_compare_runs_matches_tests_by_node_id(result_with: Callable[..., TestResult]) -> None:
    before = _run(result_with(0.05, nodeid="a::kept", seed=1), result_with(0.05, nodeid="a::gone", seed=2))
    after = _run(result_with(0.40, nodeid="a::kept", seed=3), result_with(0.05, nodeid="a::new", seed=4))
    comparison = compare_runs(before, after, parse_criteria("cpu:+1pp", "test"))
    assert [t.nodeid for t in comparison.tests] == ["a::kept", "a::new"]
    assert comparison.tests[1].note is not None and "new" in comparison.tests[1].note
    assert comparison.missing == ("a::gone",)
    assert [t.nodeid for t in comparison.regressed] == ["a::kept"]
    lines = "\n".join(comparison_lines(comparison))
    assert "REGRESSED" in lines and "a::new  new" in lines and "not measured in this run: a::gone" in lines
    message = regression_message(comparison.tests[0], comparison)
    assert "more than 1 percentage points (cpu:+1pp)" in message and "run 'base'" in message


def test_environment_differences_say_what_differs() -> None:
    before = _run(python="3.11.7", packages={"opentelemetry-sdk": "1.44.0", "opentelemetry-api": "1.45.2"})
    after = _run(python="3.12.1", cpu_count=4, packages={"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.45.2"})
    after = dataclasses.replace(after, machine={"cpu_model": "B"})
    before = dataclasses.replace(before, machine={"cpu_model": "A"})
    assert environment_differences(before, after) == [
        "Python 3.11.7 → 3.12.1",
        "CPU count 2 → 4",
        "CPU A → B",
        "opentelemetry-sdk 1.44.0 → 1.45.2",
    ]
    assert environment_differences(before, before) == []


def test_settings_differences_are_reported(result_with: Callable[..., TestResult]) -> None:
    before = result_with(0.05, seed=1)
    after = dataclasses.replace(
        result_with(0.05, seed=2),
        settings=MeasureSettings(pipeline=PipelineSettings(sampler="traceidratio", sample_rate=0.1)),
    )
    change = compare_results(before, after)
    assert change.settings_differences == ("sampler parentbased_always_on → traceidratio", "sample_rate None → 0.1")
    assert change.verdict is None  # no criteria: reported, not judged


# -- batches of consecutive pairs, as the budgets take them -----------------------------------------


def _ar1(n: int, phi: float, sd: float, rng: random.Random) -> list[float]:
    """An AR(1) series with marginal sd ``sd``: each value keeps ``phi`` of the one before."""
    value = rng.gauss(0, sd)
    innovation = sd * math.sqrt(1 - phi * phi)
    series = []
    for _ in range(n):
        series.append(value)
        value = phi * value + rng.gauss(0, innovation)
    return series


def _autocorrelated(overhead: float, noise: float, phi: float, pairs: int, seed: int) -> TestResult:
    """Pairs whose log ratio wanders slowly (load that comes and goes), on a machine whose speed drifts."""
    rng = random.Random(seed)
    speed, wander = _ar1(pairs, 0.95, 0.2, rng), _ar1(pairs, phi, noise, rng)
    rows = []
    for s, e in zip(speed, wander, strict=True):
        baseline = 1e-3 * math.exp(s)
        instrumented = baseline * (1 + overhead) * math.exp(e)
        rows.append((baseline, instrumented, baseline * 1.5, instrumented * 1.5))
    return dataclasses.replace(build_result("t.py::t"), samples=tuple(rows))


def _single_pairs(result: TestResult) -> list[float]:
    return [math.log(i / b) for b, i, _, _ in result.samples]


def test_log_ratios_batch_consecutive_pairs_as_the_budgets_do() -> None:
    rows = tuple((1e-3 * (1 + k % 7), 1e-3 * (1 + k % 7) * (1 + k / 1000), 1.0, 1.0) for k in range(100))
    result = dataclasses.replace(build_result("t.py::t"), samples=rows)
    batches = batch_slices(100)
    assert len(batches) == MAX_BATCHES
    expected = []
    for batch in batches:
        group = rows[batch]
        expected.append(math.log(sum(r[1] for r in group) / sum(r[0] for r in group)))
    assert log_ratios(result, "cpu") == pytest.approx(expected, rel=1e-12)
    few = dataclasses.replace(result, samples=rows[:MAX_BATCHES])
    assert log_ratios(few, "cpu") == pytest.approx(_single_pairs(few), rel=1e-12), "up to MAX_BATCHES: one pair each"


def test_instruction_counts_stay_one_statistic_per_process() -> None:
    result = dataclasses.replace(
        build_result("t.py::t"), mode="instructions", instruction_samples=tuple((1000.0, 1000.0 + k) for k in range(60))
    )
    assert len(log_ratios(result, "instructions")) == 60


@settings(derandomize=True)
@given(st.integers(0, 2**32))
def test_autocorrelated_samples_give_a_wider_interval_than_single_pairs(seed: int) -> None:
    before = _autocorrelated(0.05, 0.03, 0.9, 400, seed)
    after = _autocorrelated(0.05, 0.03, 0.9, 400, seed + 1)
    change = compare_results(before, after)
    low, _, high = change.metrics[0].shift
    single_low, _, single_high = shift_interval(_single_pairs(before), _single_pairs(after), 0.975)
    assert high - low > 1.8 * (single_high - single_low)  # about 2.3 to 3 times here; 1 for independent pairs


@settings(derandomize=True)
@given(
    overhead=st.floats(0.0, 0.2),
    noise=st.floats(0.005, 0.03),
    phi=st.floats(0.0, 0.9),
    pairs=st.integers(200, 800),
    seed=st.integers(0, 2**32),
)
def test_an_unchanged_run_never_regresses(overhead: float, noise: float, phi: float, pairs: int, seed: int) -> None:
    before = _autocorrelated(overhead, noise, phi, pairs, seed)
    after = _autocorrelated(overhead, noise, phi, pairs, seed + 1)
    assert _verdict(before, after, "cpu:+1pp") is not Verdict.FAIL


# -- samples that cannot be compared -------------------------------------------------------------


def _with_samples(result: TestResult, value: float, rows: int = 3) -> TestResult:
    samples = list(result.samples)
    for k in range(rows):
        samples[k * 7] = (value, samples[k * 7][1], samples[k * 7][2], samples[k * 7][3])
    return dataclasses.replace(result, samples=tuple(samples))


@pytest.mark.parametrize("value", [math.nan, -1e-3, math.inf])
@pytest.mark.parametrize("damaged", ["before", "after"])
def test_unreadable_samples_leave_the_criterion_undecided_and_say_why(
    result_with: Callable[..., TestResult], value: float, damaged: str
) -> None:
    runs = {"before": result_with(0.05, seed=1), "after": result_with(0.40, seed=2)}  # a clear regression
    runs[damaged] = _with_samples(runs[damaged], value)
    comparison = compare_runs(_run(runs["before"]), _run(runs["after"]), parse_criteria("cpu:+1pp,wall:+1pp", "t"))
    cpu, wall = comparison.tests[0].metrics[:2]
    run = "the earlier run" if damaged == "before" else "the later run"
    assert cpu.problem == f"3 of 300 pairs in {run} hold a CPU value that is NaN, negative or infinite"
    assert cpu.outcomes == ((Criterion("cpu", 0.01, "pp"), Verdict.INCONCLUSIVE),)
    assert wall.problem is None and wall.verdict is Verdict.FAIL  # the other metric is still compared
    assert comparison.problems == (f"t.py::t: CPU not compared: {cpu.problem}; cpu:+1pp undecided",)
    lines = comparison_lines(comparison)
    assert f"      WARNING CPU not compared: {cpu.problem}  [300 vs 300 pairs]  UNDECIDED cpu:+1pp" in lines
    assert lines[-1] == "1 compared: 1 regressed, 0 within cpu:+1pp, wall:+1pp, 0 undecided"


def test_a_run_whose_samples_are_all_unreadable_is_counted_undecided(result_with: Callable[..., TestResult]) -> None:
    before = result_with(0.05, seed=1)
    after = dataclasses.replace(before, samples=tuple((math.nan,) * 4 for _ in range(300)))
    comparison = compare_runs(_run(before), _run(after), parse_criteria("cpu:+1pp", "t"))
    assert comparison.tests[0].verdict is Verdict.INCONCLUSIVE
    assert comparison_lines(comparison)[-1] == "1 compared: 0 regressed, 0 within cpu:+1pp, 1 undecided"
    assert len(comparison.problems) == 2  # CPU and wall time: each said once


def test_missing_or_empty_samples_are_said_too(result_with: Callable[..., TestResult]) -> None:
    before = result_with(0.05, seed=1)
    zero = dataclasses.replace(before, samples=tuple((0.0, 1e-3, 1e-3, 1e-3) for _ in range(50)))
    none = dataclasses.replace(before, samples=())
    cpu = parse_criteria("cpu:+1pp", "t")
    assert compare_results(before, zero, cpu).metrics[0].problem == (
        "no pair in the later run has a CPU value above zero in both arms"
    )
    assert compare_results(none, before, cpu).metrics[0].problem == "the earlier run kept no per-pair CPU samples"
    assert compare_results(zero, before, cpu).verdict is Verdict.INCONCLUSIVE


def test_a_criterion_no_test_was_compared_on_is_said(result_with: Callable[..., TestResult]) -> None:
    timed = result_with(0.05, seed=1)
    comparison = compare_runs(_run(timed), _run(timed), parse_criteria("cpu:+10pp,instructions:+1pp", "t"))
    assert [m.metric for m in comparison.tests[0].metrics] == ["cpu", "wall"]  # time mode keeps no instructions
    assert comparison.tests[0].verdict is Verdict.PASS
    assert comparison.problems == ("instructions:+1pp decided nothing: no test was compared on instructions",)
    assert "  WARNING instructions:+1pp decided nothing: no test was compared on instructions" in comparison_lines(
        comparison
    )
    only_new = compare_runs(_run(), _run(timed), parse_criteria("cpu:+5pp", "t"))
    assert only_new.problems == ("cpu:+5pp decided nothing: no test was compared on CPU",)


def test_ratios_too_extreme_to_compute_with_are_undecided(result_with: Callable[..., TestResult]) -> None:
    before = result_with(0.05, seed=1)
    extreme = dataclasses.replace(before, samples=tuple((1e-300, 1e300, 1e-3, 1e-3) for _ in range(50)))
    change = compare_results(before, extreme, parse_criteria("cpu:+1pp", "t"))
    assert change.metrics[0].problem == "its overheads are too large to compute with"
    assert change.verdict is Verdict.INCONCLUSIVE
