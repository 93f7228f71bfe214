"""Comparing saved runs of instructions mode on estimated cycles: known counts, cycle models, runs saved before."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import build_result

from pytest_otel_overhead.cli import main
from pytest_otel_overhead.history.compare import Criterion, compare_runs, comparison_lines, parse_criteria
from pytest_otel_overhead.history.machines import machine_differences
from pytest_otel_overhead.history.run import RunRecord
from pytest_otel_overhead.history.shift import pairs_of
from pytest_otel_overhead.history.store import Store
from pytest_otel_overhead.instructions.counts import Layout
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL, Counts
from pytest_otel_overhead.results import CycleModel, TestResult
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import SettingsError

MODEL = dataclasses.replace(CYCLE_MODEL, l1_miss_cycles=10.0, ll_miss_cycles=100.0, mispredict_cycles=0.0)
LAYOUTS = 8
BEFORE_ONLY_INSTRUCTIONS = (
    "the earlier run counted instructions only (saved before the cache simulation), so estimated cycles cannot be "
    "compared; instructions are"
)


def _rows(l1_instrumented: float, ll_instrumented: float, *, seed: int) -> tuple[tuple[float, ...], ...]:
    """Eight layouts' rows: instructions +5% in every run; the instrumented arm's misses as given.

    Baseline per call: 1 M instructions, 1000 first-level and 10 last-level misses (1.011 M cycles under ``MODEL``).
    Each layout counts a few hundred instructions apart, as layouts do."""
    rows = []
    for k in range(LAYOUTS):
        jitter = 100.0 * ((k * 7 + seed * 3) % LAYOUTS)
        baseline = Counts(1_000_000 + jitter, 1_000, 10)
        instrumented = Counts(1_050_000 + jitter, l1_instrumented, ll_instrumented)
        rows.append(Layout(k, 1, baseline, instrumented).sample)
    return tuple(rows)


def _counted(
    l1: float, ll: float, *, seed: int = 0, model: CycleModel | None = MODEL, nodeid: str = "t.py::t"
) -> TestResult:
    return dataclasses.replace(
        build_result(nodeid),
        mode="instructions",
        samples=(),
        pairs=LAYOUTS,
        instruction_samples=_rows(l1, ll, seed=seed),
        cycle_model=model,
    )


def _saved_before_cycles(result: TestResult) -> TestResult:
    """A run as saved before the cache simulation: two columns, no cycle model."""
    return dataclasses.replace(
        result, instruction_samples=tuple(row[:2] for row in result.instruction_samples), cycle_model=None
    )


def _run(*results: TestResult, load: float = 0.1) -> RunRecord:
    environment = {"python": "3.11.7", "cpu_count": 2, "load_average": [load, load, load]}
    return RunRecord(results=results, environment=environment, created="2026-12-06T00:00:00+00:00", name="base")


def test_estimated_cycles_of_a_row_are_the_runs_own() -> None:
    result = _counted(2_000, 20)
    baseline, instrumented = pairs_of(result, "cycles")[0]
    assert baseline == pytest.approx(1_000_000 + 10 * 1_000 + 100 * 10)
    assert instrumented == pytest.approx(1_050_000 + 10 * 2_000 + 100 * 20)
    heavier = dataclasses.replace(result, cycle_model=dataclasses.replace(MODEL, ll_miss_cycles=300.0))
    assert pairs_of(heavier, "cycles")[0][1] == pytest.approx(1_050_000 + 10 * 2_000 + 300 * 20)
    assert [pair[0] for pair in pairs_of(result, "instructions")] == [row[0] for row in result.instruction_samples]


def test_more_misses_at_the_same_instructions_regress_on_cycles_only() -> None:
    before = _counted(2_000, 20)  # cycles +6.03%
    after = _counted(5_000, 200, seed=1)  # cycles +10.78%: +4.75 points, instructions unchanged at +5%
    comparison = compare_runs(_run(before), _run(after), parse_criteria("cycles:+1pp,instructions:+1pp", "t"))
    metrics = {m.metric: m for m in comparison.tests[0].metrics}
    assert list(metrics) == ["cycles", "instructions"]  # no time samples in instructions mode
    cycles, instructions = metrics["cycles"], metrics["instructions"]
    assert cycles.before == pytest.approx(1_072_000 / 1_011_000 - 1, abs=5e-4)
    assert cycles.after == pytest.approx(1_120_000 / 1_011_000 - 1, abs=5e-4)
    assert cycles.points[0] > 0.04 and cycles.points[2] < 0.055
    assert cycles.outcomes == ((Criterion("cycles", 0.01, "pp"), Verdict.FAIL),)
    assert instructions.outcomes == ((Criterion("instructions", 0.01, "pp"), Verdict.PASS),)
    assert comparison.tests[0].verdict is Verdict.FAIL
    assert any(
        line.strip().startswith("estimated cycles +6.0") and "REGRESSED cycles:+1pp" in line
        for line in comparison_lines(comparison)
    )


def test_unchanged_counts_do_not_regress_on_cycles() -> None:
    comparison = compare_runs(
        _run(_counted(2_000, 20)), _run(_counted(2_000, 20, seed=5)), parse_criteria("cycles:+0.5pp", "t")
    )
    (cycles,) = [m for m in comparison.tests[0].metrics if m.metric == "cycles"]
    assert cycles.verdict is Verdict.PASS
    assert abs(cycles.points[1]) < 1e-3


def test_a_busy_machine_adds_no_term_to_cycles() -> None:
    before, after = _run(_counted(2_000, 20), load=0.1), _run(_counted(2_000, 20, seed=5), load=4.0)
    assert machine_differences(before, after) == ("load per CPU 0.05 → 2.00",)
    comparison = compare_runs(before, after, parse_criteria("cycles:+0.5pp,instructions:+0.5pp", "t"))
    for metric in comparison.tests[0].metrics:
        assert metric.machine_term == 0.0
        assert metric.verdict is Verdict.PASS
    assert comparison.tests[0].metrics[0].shift[2] - comparison.tests[0].metrics[0].shift[0] < 0.01


def test_runs_weighed_with_different_cycle_models_are_not_compared_on_cycles() -> None:
    other = dataclasses.replace(MODEL, l1_miss_cycles=40.0, ll=dataclasses.replace(MODEL.ll, size_bytes=4194304))
    before, after = _counted(2_000, 20), _counted(5_000, 200, seed=1, model=other)
    comparison = compare_runs(_run(before), _run(after), parse_criteria("cycles:+1pp,instructions:+1pp", "t"))
    metrics = {m.metric: m for m in comparison.tests[0].metrics}
    reason = (
        "the runs estimate cycles with different models (LL 8388608,16,64 → 4194304,16,64; "
        "first-level miss 10 → 40 cycles); instructions are compared"
    )
    assert metrics["cycles"].problem == reason
    assert metrics["cycles"].outcomes == ((Criterion("cycles", 0.01, "pp"), Verdict.INCONCLUSIVE),)
    assert metrics["instructions"].problem is None and metrics["instructions"].verdict is Verdict.PASS
    assert comparison.tests[0].verdict is Verdict.INCONCLUSIVE  # a gate is never passed by skipping
    assert comparison.problems == (f"t.py::t: estimated cycles not compared: {reason}; cycles:+1pp undecided",)


def test_runs_saved_before_cycles_compare_on_instructions_and_say_why_not_on_cycles() -> None:
    old = _saved_before_cycles(_counted(2_000, 20))
    grown = dataclasses.replace(
        old, instruction_samples=tuple((b, i * 1.05) for b, i in old.instruction_samples)
    )  # instructions +5% → +10.25%
    comparison = compare_runs(_run(old), _run(grown), parse_criteria("cycles:+1pp,instructions:+1pp", "t"))
    metrics = {m.metric: m for m in comparison.tests[0].metrics}
    assert metrics["instructions"].verdict is Verdict.FAIL
    assert metrics["cycles"].problem == BEFORE_ONLY_INSTRUCTIONS
    assert metrics["cycles"].verdict is Verdict.INCONCLUSIVE
    assert (
        f"      WARNING estimated cycles not compared: {BEFORE_ONLY_INSTRUCTIONS}  [0 vs 0 pairs]  UNDECIDED "
        "cycles:+1pp" in comparison_lines(comparison)
    )
    # An old run against a new one: the same reason, from the earlier run; instructions still compared.
    mixed = compare_runs(_run(old), _run(_counted(2_000, 20, seed=3)), parse_criteria("instructions:+1pp", "t"))
    mixed_metrics = {m.metric: m for m in mixed.tests[0].metrics}
    assert mixed_metrics["cycles"].problem == BEFORE_ONLY_INSTRUCTIONS
    assert mixed_metrics["instructions"].verdict is Verdict.PASS


def test_a_time_run_against_a_counted_one_says_the_earlier_kept_no_cycles() -> None:
    timed = build_result("t.py::t")
    comparison = compare_runs(_run(timed), _run(_counted(2_000, 20)), parse_criteria("cycles:+1pp", "t"))
    metrics = {m.metric: m for m in comparison.tests[0].metrics}
    assert metrics["cycles"].problem == "the earlier run kept no per-pair estimated cycles samples"
    assert metrics["cycles"].verdict is Verdict.INCONCLUSIVE


def test_cycles_criteria_parse_and_unknown_metrics_name_cycles() -> None:
    assert parse_criteria("cycles:+0.5pp", "t") == (Criterion("cycles", 0.005, "pp"),)
    with pytest.raises(SettingsError, match="cpu, wall, cycles, instructions"):
        parse_criteria("heap:+1pp", "t")


def test_the_command_line_compares_saved_runs_on_cycles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path)
    store.save(_run(_counted(2_000, 20)), "quiet")
    store.save(_run(_counted(5_000, 200, seed=1), load=4.0), "busy")
    code = main(["--storage", str(tmp_path), "compare", "quiet", "busy", "--fail", "cycles:+1pp"])
    out = " ".join(capsys.readouterr().out.split())  # its lines wrapped to the terminal's width
    assert code == 1
    assert "REGRESSED cycles:+1pp" in out
    assert "counts (estimated cycles, instructions) compare as equals" in out
    assert "1 compared: 1 regressed" in out


def _spread_layouts(growth: float, *, layouts: int = LAYOUTS) -> TestResult:
    """Layouts whose overheads lie 1 point apart (+1.5% to +8.5%), each grown by ``growth`` in this run."""
    rows = []
    for k in range(layouts):
        baseline = Counts(1_000_000, 1_000, 10)
        instrumented = Counts(1_000_000 * (1.015 + 0.01 * (k % LAYOUTS) + growth), 1_000, 10)
        rows.append(Layout(k, 1, baseline, instrumented).sample)
    return dataclasses.replace(_counted(1_000, 10), pairs=layouts, instruction_samples=tuple(rows))


def test_counts_of_the_same_layouts_compare_layout_by_layout() -> None:
    # Each layout grew by 0.2 points; the layouts themselves lie 7 points apart.
    before, after = _spread_layouts(0.0), _spread_layouts(0.002)
    comparison = compare_runs(_run(before), _run(after), parse_criteria("cycles:+0.5pp,instructions:+0.5pp", "t"))
    for metric in comparison.tests[0].metrics:
        assert metric.verdict is Verdict.PASS, metric.metric
        assert metric.points[0] > 0.001 and metric.points[2] < 0.003, metric.points


def test_runs_of_other_layouts_compare_as_samples() -> None:
    # A merged run holds two shards' layouts: no layout pairs with one of the other run.
    before, after = _spread_layouts(0.0), _spread_layouts(0.002, layouts=2 * LAYOUTS)
    comparison = compare_runs(_run(before), _run(after), parse_criteria("cycles:+0.5pp", "t"))
    (cycles,) = [m for m in comparison.tests[0].metrics if m.metric == "cycles"]
    assert cycles.verdict is Verdict.INCONCLUSIVE  # the layouts' 7 points apart, not the 0.2 grown
    assert cycles.points[2] - cycles.points[0] > 0.03
