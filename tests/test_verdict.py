"""From paired samples to verdicts: decide(), decide_budget() on synthetic samples, LookPlan, TestResult."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pytest_otel_overhead.results import MetricResult, TestResult
from pytest_otel_overhead.stats.verdict import (
    Decision,
    LookPlan,
    Verdict,
    decide,
    decide_budget,
    from_statistic,
    to_statistic,
)
from pytest_otel_overhead.units import Budget

CONFIDENCE = LookPlan(0.95).per_look_confidence

times = st.floats(min_value=1e-7, max_value=1.0, allow_nan=False)
pairs = st.lists(st.tuples(times, times), min_size=1, max_size=80)
relative_budgets = st.floats(min_value=0.001, max_value=2.0).map(lambda v: Budget("relative", v))


def log_ratios(data: list[tuple[float, float]]) -> list[float]:
    return [math.log(instrumented / baseline) for baseline, instrumented in data]


# --- decide ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0.06, 0.08, Verdict.FAIL),
        (0.01, 0.04, Verdict.PASS),
        (-0.5, 0.049, Verdict.PASS),
        (0.04, 0.06, Verdict.INCONCLUSIVE),
        (0.05, 0.07, Verdict.INCONCLUSIVE),  # touching the budget decides nothing
        (0.03, 0.05, Verdict.INCONCLUSIVE),
        (-math.inf, math.inf, Verdict.INCONCLUSIVE),
        (0.051, math.inf, Verdict.FAIL),
        (-math.inf, 0.049, Verdict.PASS),
    ],
)
def test_decide(low: float, high: float, expected: Verdict) -> None:
    assert decide(low, high, 0.05) is expected


@given(st.floats(-10, 10), st.floats(-10, 10), st.floats(-10, 10))
def test_decide_is_fail_only_above_and_pass_only_below(a: float, b: float, threshold: float) -> None:
    low, high = min(a, b), max(a, b)
    verdict = decide(low, high, threshold)
    assert (verdict is Verdict.FAIL) == (low > threshold)
    assert (verdict is Verdict.PASS) == (high < threshold)


def test_verdict_is_a_string() -> None:
    assert str(Verdict.FAIL) == "FAIL"
    assert Verdict("PASS") is Verdict.PASS


# --- scales ------------------------------------------------------------------------------------


@given(st.floats(min_value=1e-6, max_value=100.0))
def test_budget_to_statistic_and_back(value: float) -> None:
    relative = Budget("relative", value)
    assert to_statistic(relative) == pytest.approx(math.log(1 + value))
    assert from_statistic(to_statistic(relative), "relative") == pytest.approx(value)
    absolute = Budget("absolute", value)
    assert from_statistic(to_statistic(absolute), "absolute") == value


def test_from_statistic_maps_unbounded_ends() -> None:
    assert from_statistic(math.inf, "relative") == math.inf
    assert from_statistic(-math.inf, "relative") == -1.0
    assert from_statistic(-math.inf, "absolute") == -math.inf


# --- decide_budget on synthetic samples --------------------------------------------------------


@given(st.lists(times, min_size=1, max_size=80), relative_budgets)
def test_identical_arms_never_fail(baselines: list[float], budget: Budget) -> None:
    decision = decide_budget(log_ratios([(b, b) for b in baselines]), budget, CONFIDENCE)
    assert decision.verdict is not Verdict.FAIL
    assert decision.estimate == 0.0


@given(st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=1, max_size=60), relative_budgets)
def test_samples_symmetric_around_zero_never_fail(half: list[float], budget: Budget) -> None:
    samples = half + [-x for x in half]
    decision = decide_budget(samples, budget, CONFIDENCE)
    assert decision.verdict is not Verdict.FAIL
    assert decision.ci_low <= 0.0 <= decision.ci_high


@given(pairs, relative_budgets, st.sampled_from(["wilcoxon", "sign"]))
def test_every_interval_contains_its_estimate(data: list[tuple[float, float]], budget: Budget, method: str) -> None:
    decision = decide_budget(log_ratios(data), budget, CONFIDENCE, method=method)
    assert decision.ci_low <= decision.estimate <= decision.ci_high
    assert decision.n == len(data)


@given(pairs, relative_budgets, st.integers(min_value=-20, max_value=20))
def test_scaling_both_arms_by_one_factor_leaves_the_decision_unchanged(
    data: list[tuple[float, float]], budget: Budget, exponent: int
) -> None:
    factor = 2.0**exponent  # exact in binary floating point, so only the statistic's invariance is tested
    scaled = [(b * factor, i * factor) for b, i in data]
    original = decide_budget(log_ratios(data), budget, CONFIDENCE)
    rescaled = decide_budget(log_ratios(scaled), budget, CONFIDENCE)
    assert rescaled.verdict is original.verdict
    assert rescaled.estimate == original.estimate
    assert (rescaled.ci_low, rescaled.ci_high) == (original.ci_low, original.ci_high)


@given(pairs, st.floats(min_value=1.01, max_value=10.0))
def test_slowing_the_instrumented_arm_never_improves_the_verdict(
    data: list[tuple[float, float]], slower: float
) -> None:
    budget = Budget("relative", 0.05)
    rank = {Verdict.PASS: 0, Verdict.INCONCLUSIVE: 1, Verdict.FAIL: 2}
    before = decide_budget(log_ratios(data), budget, CONFIDENCE)
    after = decide_budget(log_ratios([(b, i * slower) for b, i in data]), budget, CONFIDENCE)
    assert rank[after.verdict] >= rank[before.verdict]
    assert after.estimate >= before.estimate


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=20, max_value=200))
def test_a_clearly_large_effect_fails(seed: int, n: int) -> None:
    rng = random.Random(seed)
    samples = [math.log(1.5) + rng.gauss(0, 0.02) for _ in range(n)]
    decision = decide_budget(samples, Budget("relative", 0.05), CONFIDENCE)
    assert decision.verdict is Verdict.FAIL
    assert decision.estimate == pytest.approx(0.5, abs=0.05)


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=20, max_value=200))
def test_a_clearly_tiny_effect_passes(seed: int, n: int) -> None:
    rng = random.Random(seed)
    samples = [math.log(1.001) + rng.gauss(0, 0.01) for _ in range(n)]
    decision = decide_budget(samples, Budget("relative", 0.05), CONFIDENCE)
    assert decision.verdict is Verdict.PASS


def test_too_few_pairs_decide_nothing() -> None:
    # At the per-look confidence, fewer than 8 pairs cannot give a bounded Wilcoxon interval.
    decision = decide_budget([math.log(3.0)] * 7, Budget("relative", 0.05), CONFIDENCE)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert (decision.ci_low, decision.ci_high) == (-1.0, math.inf)
    assert decide_budget([math.log(3.0)] * 8, Budget("relative", 0.05), CONFIDENCE).verdict is Verdict.FAIL


def test_absolute_budgets_use_differences() -> None:
    budget = Budget("absolute", 50e-6)
    fail = decide_budget([200e-6 + i * 1e-7 for i in range(30)], budget, CONFIDENCE)
    assert fail.verdict is Verdict.FAIL
    assert fail.estimate == pytest.approx(201.45e-6)
    passing = decide_budget([1e-6 + i * 1e-8 for i in range(30)], budget, CONFIDENCE)
    assert passing.verdict is Verdict.PASS


def test_non_finite_samples_are_dropped_and_no_samples_decide_nothing() -> None:
    decision = decide_budget([math.nan, math.inf] + [0.0] * 20, Budget("relative", 0.05), CONFIDENCE)
    assert decision.n == 20
    assert decision.verdict is Verdict.PASS
    empty = decide_budget([math.nan], Budget("relative", 0.05), CONFIDENCE)
    assert empty.n == 0
    assert empty.verdict is Verdict.INCONCLUSIVE
    assert math.isnan(empty.estimate)


def test_without_a_budget_an_interval_is_still_reported() -> None:
    decision = decide_budget([math.log(1.2)] * 30, None, CONFIDENCE)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert decision.estimate == pytest.approx(0.2)
    assert decision.ci_low == pytest.approx(0.2)


def test_spread_is_reported_on_the_overhead_scale() -> None:
    rng = random.Random(3)
    samples = [rng.gauss(0, 0.1) for _ in range(2000)]
    decision = decide_budget(samples, Budget("relative", 0.05), CONFIDENCE)
    assert decision.spread == pytest.approx(math.expm1(0.1), rel=0.1)
    assert decision.half_width == pytest.approx((decision.ci_high - decision.ci_low) / 2)


# --- looks -------------------------------------------------------------------------------------


def test_default_look_plan_spends_the_error_rate_evenly_over_its_looks() -> None:
    plan = LookPlan(0.95)
    assert plan.fractions[-1] == 1.0
    assert list(plan.fractions) == sorted(plan.fractions)
    assert plan.per_look_confidence == pytest.approx(1 - 0.05 / 6)
    assert (1 - plan.per_look_confidence) * len(plan.fractions) == pytest.approx(1 - plan.confidence)


@given(st.floats(min_value=0.5, max_value=0.999), st.integers(min_value=1, max_value=20))
def test_per_look_confidence_is_bonferroni(confidence: float, looks: int) -> None:
    plan = LookPlan(fractions=tuple((i + 1) / looks for i in range(looks)), confidence=confidence)
    assert plan.per_look_confidence >= confidence
    assert (1 - plan.per_look_confidence) * looks == pytest.approx(1 - confidence)


def test_repeated_looks_at_a_null_effect_keep_false_failures_rare() -> None:
    """A/A with a budget of almost zero: any FAIL is false; over all looks it stays below (1 - confidence) / 2."""
    plan = LookPlan(0.95)
    budget = Budget("relative", 1e-9)
    rng = random.Random(20240229)
    trials, false_failures = 200, 0
    for _ in range(trials):
        samples = [rng.gauss(0, 0.05) - rng.gauss(0, 0.05) for _ in range(128)]
        for fraction in plan.fractions:
            n = max(2, round(fraction * len(samples)))
            if decide_budget(samples[:n], budget, plan.per_look_confidence).verdict is Verdict.FAIL:
                false_failures += 1
                break
    # Bonferroni bounds the rate by 2.5%; the seeded trials land well inside twice that.
    assert false_failures / trials <= 0.05


# --- TestResult.verdict ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ((Verdict.PASS, Verdict.PASS), Verdict.PASS),
        ((Verdict.PASS, Verdict.INCONCLUSIVE), Verdict.INCONCLUSIVE),
        ((Verdict.INCONCLUSIVE, Verdict.FAIL), Verdict.FAIL),
        ((Verdict.FAIL, Verdict.PASS), Verdict.FAIL),
        ((None, None), Verdict.PASS),
        ((None, Verdict.INCONCLUSIVE), Verdict.INCONCLUSIVE),
    ],
)
def test_a_result_fails_if_any_budget_fails_and_is_undecided_if_any_is(
    verdicts: tuple[Verdict | None, Verdict | None],
    expected: Verdict,
    make_metric: Callable[..., MetricResult],
    make_result: Callable[..., TestResult],
) -> None:
    budget = Budget("relative", 0.05)
    metrics = tuple(
        make_metric(name, budget=budget if v is not None else None, verdict=v)
        for name, v in zip(("cpu", "wall"), verdicts, strict=True)
    )
    result = make_result(metrics=metrics)
    assert result.verdict is expected
    assert result.budgeted == tuple(m for m in metrics if m.verdict is not None)


@given(pairs)
def test_a_decision_never_claims_pass_and_fail_for_one_interval(data: list[tuple[float, float]]) -> None:
    samples = log_ratios(data)
    assume(samples)
    decision = decide_budget(samples, Budget("relative", 0.05), CONFIDENCE)
    threshold = 0.05
    if decision.verdict is Verdict.FAIL:
        assert decision.ci_low > threshold - 1e-12
    if decision.verdict is Verdict.PASS:
        assert decision.ci_high < threshold + 1e-12


def _decision(estimate: float, low: float, high: float, threshold: float) -> Decision:
    """A decision on log ratios from its ends on that scale, decided against ``threshold``."""
    verdict = decide(low, high, threshold)
    return Decision(
        estimate=math.expm1(estimate),
        ci_low=math.expm1(low),
        ci_high=math.expm1(high),
        verdict=verdict,
        n=30,
        spread=0.01,
        confidence=0.95,
    )


@given(
    st.floats(min_value=-0.5, max_value=2.0),
    st.floats(min_value=1e-4, max_value=0.5),
    st.floats(min_value=1e-4, max_value=0.5),
    st.floats(min_value=-0.2, max_value=1.0),
    st.floats(min_value=1.0, max_value=4.0),
    st.floats(min_value=1.0, max_value=4.0),
)
def test_a_verdict_stands_widened_while_the_widened_interval_stays_clear_on_its_side(
    estimate: float, below: float, above: float, threshold: float, factor: float, larger: float
) -> None:
    decision = _decision(estimate, estimate - below, estimate + above, threshold)
    assume(min(abs(estimate - factor * below - threshold), abs(estimate + factor * above - threshold)) > 1e-9)
    if decision.verdict is Verdict.FAIL:
        assert decision.stands_widened(threshold, factor) == (estimate - factor * below > threshold)
    elif decision.verdict is Verdict.PASS:
        assert decision.stands_widened(threshold, factor) == (estimate + factor * above < threshold)
    else:
        assert not decision.stands_widened(threshold, factor)
    # Wider never rescues a verdict that a narrower widening lost.
    if decision.stands_widened(threshold, max(factor, larger)):
        assert decision.stands_widened(threshold, factor)


def test_the_busy_verdicts_that_a_burst_of_load_made_do_not_stand_at_twice_their_width() -> None:
    threshold = math.log1p(0.05)
    # One busy process each (docs/accuracy.md, 2026-12-06 night): checkout, about +5% busy, read these.
    for estimate, low, high in ((0.129, 0.081, 0.178), (0.103, 0.057, 0.151)):
        burst = _decision(estimate, low, high, threshold)
        assert burst.verdict is Verdict.FAIL
        assert burst.stands_widened(threshold, 1.1)
        assert not burst.stands_widened(threshold, 2.0)
    # requests, +27% quiet, read +31% [+23%, +40%] in one busy process: far enough to stand alone.
    far = _decision(0.273, 0.209, 0.337, threshold)
    assert far.stands_widened(threshold, 2.0)
    passed = _decision(-0.05, -0.08, -0.02, threshold)
    assert passed.verdict is Verdict.PASS and passed.stands_widened(threshold, 2.0)
