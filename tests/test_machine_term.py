"""Comparisons that know the machine: a time comparison across machines widens; instruction counts do not."""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import build_result
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_otel_overhead.cli import main
from pytest_otel_overhead.engine.machine import BUSY_NOTE_START
from pytest_otel_overhead.history.compare import compare_runs, comparison_lines, parse_criteria
from pytest_otel_overhead.history.criteria import HeldOpen
from pytest_otel_overhead.history.machines import (
    MACHINE_SPREAD,
    SPEED_DIFFERENCE,
    busy_load,
    machine_differences,
    machine_term,
    speed_spread,
)
from pytest_otel_overhead.history.store import RunRecord, Store
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.stats.process_term import LOAD_SHARE
from pytest_otel_overhead.stats.verdict import Verdict

ENVIRONMENT = {"python": "3.11.9", "implementation": "CPython", "platform": "Linux", "cpu_count": 2}


def _result(overhead: float, seed: int) -> TestResult:
    rng = random.Random(seed)
    rows = []
    for _ in range(300):
        baseline = 1e-3 * math.exp(rng.gauss(0, 0.2))
        instrumented = baseline * (1 + overhead) * math.exp(rng.gauss(0, 0.001))
        rows.append((baseline, instrumented, baseline, instrumented))
    return dataclasses.replace(build_result("t.py::t"), samples=tuple(rows))


def _run(result: TestResult, cpu: str = "CPU A", **environment: Any) -> RunRecord:
    return RunRecord((result,), {**ENVIRONMENT, **environment}, "now", machine={"cpu_model": cpu})


def test_alike_machines_have_no_term() -> None:
    a, b = _run(_result(0.02, 1)), _run(_result(0.02, 2), load_average=[0.4, 0.4, 0.4])
    assert machine_differences(a, b) == () and machine_term(a, b) == 0.0


def test_cpu_model_python_build_and_load_each_set_machines_apart() -> None:
    base = _run(_result(0.02, 1), load_average=[0.2, 0.2, 0.2])
    assert machine_differences(base, _run(_result(0.02, 2), cpu="CPU B", load_average=[0.2])) == ("CPU CPU A → CPU B",)
    assert machine_differences(base, _run(_result(0.02, 2), python="3.12.1", load_average=[0.2])) == (
        "Python 3.11.9 → 3.12.1",
    )
    busy = _run(_result(0.02, 2), load_average=[2.2, 2.0, 1.0])
    assert machine_differences(base, busy) == ("load per CPU 0.10 → 1.10",)
    assert machine_term(base, busy) == MACHINE_SPREAD


def test_a_merged_run_over_several_cpus_differs_even_from_its_twin() -> None:
    merged = RunRecord((), ENVIRONMENT, "now", machine={"cpu_model": "A; B", "cpu_models": ["A", "B"]})
    assert machine_term(merged, merged) == MACHINE_SPREAD


def test_a_time_comparison_across_machines_widens_and_may_turn_undecided() -> None:
    # +2% → +7%: δ ≈ 0.048 in log ratio, clear of cpu:+1pp on one machine with the processes' prior alone.
    before, after = _result(0.02, 1), _result(0.07, 2)
    criteria = parse_criteria("cpu:+1pp", "test")
    same = compare_runs(_run(before), _run(after), criteria)
    across = compare_runs(_run(before), _run(after, cpu="CPU B"), criteria)
    cpu_same, cpu_across = same.tests[0].metrics[0], across.tests[0].metrics[0]
    assert cpu_same.metric == "cpu" and cpu_same.machine_term == 0.0 and cpu_same.verdict is Verdict.FAIL
    assert cpu_across.machine_term > 0 and cpu_across.verdict is Verdict.INCONCLUSIVE
    assert cpu_across.shift[0] < cpu_same.shift[0] and cpu_across.shift[2] > cpu_same.shift[2]
    lines = comparison_lines(across)
    assert any("the machines differ (CPU CPU A → CPU B)" in line for line in lines)
    assert any("UNDECIDED (the machines differ) cpu:+1pp" in line for line in lines)
    assert "machine term ±" in cpu_across.describe()


def test_a_change_too_close_to_its_criterion_to_tell_anywhere_is_plainly_undecided() -> None:
    # +2% → +3%: a change of about 1pp, at cpu:+1pp itself. The processes' term alone leaves it open,
    # so the machines are not why it is undecided, though their term is in its interval.
    before, after = _result(0.02, 1), _result(0.03, 2)
    criteria = parse_criteria("cpu:+1pp", "test")
    across = compare_runs(_run(before), _run(after, cpu="CPU B"), criteria)
    cpu = across.tests[0].metrics[0]
    assert cpu.machine_term > 0 and cpu.verdict is Verdict.INCONCLUSIVE and cpu.held_open == ()
    assert compare_runs(_run(before), _run(after), criteria).tests[0].verdict is Verdict.INCONCLUSIVE
    (line,) = [line for line in comparison_lines(across) if "cpu:+1pp" in line and "→" in line]
    assert line.endswith("UNDECIDED cpu:+1pp") and "machine term ±" in line


@settings(max_examples=40, deadline=None)
@given(st.floats(0.0, 0.1), st.floats(0.0, 0.15), st.integers(0, 10**6), st.booleans())
def test_a_criterion_is_said_held_open_by_a_term_exactly_when_the_same_runs_without_it_decide_it(
    before_overhead: float, after_overhead: float, seed: int, busy: bool
) -> None:
    criteria = parse_criteria("cpu:+1pp", "test")
    pair = _result(before_overhead, seed), _result(after_overhead, seed + 1)
    if busy:  # the runs' own load; the same runs measured quietly have none
        with_term = compare_runs(_run(_busy(pair[0], 4)), _run(_busy(pair[1], 4)), criteria)
        quiet = [dataclasses.replace(r, processes=4) for r in pair]
        without = compare_runs(_run(quiet[0]), _run(quiet[1]), criteria)
    else:  # the machines' difference; the same runs on one machine have none
        with_term = compare_runs(_run(pair[0]), _run(pair[1], cpu="CPU B"), criteria)
        without = compare_runs(_run(pair[0]), _run(pair[1]), criteria)
    metric, alone = with_term.tests[0].metrics[0], without.tests[0].metrics[0]
    assert (metric.load_term > 0) is busy and (metric.machine_term > 0) is not busy
    said = dict(metric.held_open).get(criteria[0])
    if metric.verdict is Verdict.INCONCLUSIVE:
        assert (said is not None) is (alone.verdict is not Verdict.INCONCLUSIVE)
    assert said in (None, HeldOpen.BUSY if busy else HeldOpen.MACHINES)
    label = f"UNDECIDED ({said.value}) cpu:+1pp" if said is not None else "UNDECIDED cpu:+1pp"
    lines = comparison_lines(with_term)
    assert (metric.verdict is Verdict.INCONCLUSIVE) is any(line.endswith(label) for line in lines)


def test_a_session_ends_with_the_machines_as_its_gate_judged_them() -> None:
    # A session judges the machines as it starts; the load may differ by its end, the gate's verdicts not.
    before = _run(_result(0.02, 1), load_average=[0.2, 0.2, 0.2])
    after = _run(_result(0.07, 2), load_average=[2.2, 2.0, 1.0])
    criteria = parse_criteria("cpu:+1pp", "test")
    assert compare_runs(before, after, criteria).tests[0].metrics[0].verdict is Verdict.INCONCLUSIVE
    as_started = compare_runs(before, after, criteria, machine=(0.0, ()))
    cpu = as_started.tests[0].metrics[0]
    assert cpu.machine_term == 0.0 and cpu.verdict is Verdict.FAIL
    assert as_started.machine == ()
    assert not any("the machines differ" in line for line in comparison_lines(as_started))


def _instructions(overhead: float, seed: int) -> TestResult:
    rng = random.Random(seed)
    rows = tuple(
        (1e6, 1e6 * (1 + overhead) * (1 + rng.uniform(-1e-4, 1e-4)), 1e3, 1.2e3, 10.0, 12.0, 0.0, 0.0) for _ in range(8)
    )
    return dataclasses.replace(
        build_result("t.py::t"), mode="instructions", samples=(), instruction_samples=rows, cycle_model=CYCLE_MODEL
    )


def test_counts_compare_as_equals_across_machines() -> None:
    before, after = _instructions(0.05, 1), _instructions(0.06, 2)
    criteria = parse_criteria("cycles:+0.5pp,instructions:+0.5pp", "test")
    same = compare_runs(_run(before), _run(after), criteria).tests[0].metrics
    across = compare_runs(_run(before), _run(after, cpu="CPU B", python="3.12.1"), criteria).tests[0].metrics
    assert [m.metric for m in across] == ["cycles", "instructions"]
    for metric, alike in zip(across, same, strict=True):
        assert metric.problem is None
        assert metric.machine_term == 0.0 and metric.shift == alike.shift
        assert metric.verdict is alike.verdict is Verdict.FAIL


def _at_speed(result: TestResult, per_call: float) -> TestResult:
    """``result`` as if its baseline arm took ``per_call`` seconds per call (its samples scaled alike)."""
    scale = per_call / 1e-3
    metrics = tuple(dataclasses.replace(m, baseline=per_call, instrumented=per_call * 1.05) for m in result.metrics)
    samples = tuple(tuple(value * scale for value in row) for row in result.samples)
    return dataclasses.replace(result, metrics=metrics, samples=samples)


def test_a_test_whose_baseline_ran_at_another_speed_widens_by_the_speed_term() -> None:
    # On one runner the manual span read +5.8% in one run and +10.2% in the next, whose baseline arm
    # took twice as long per call: on unchanged code, a false REGRESSED without this term.
    before, after = _at_speed(_result(0.02, 1), 1e-3), _result(0.07, 2)
    criteria = parse_criteria("cpu:+1pp", "test")
    same = compare_runs(_run(before), _run(_at_speed(after, 1.1e-3)), criteria).tests[0].metrics[0]
    twice = compare_runs(_run(before), _run(_at_speed(after, 2e-3)), criteria).tests[0].metrics[0]
    thrice = compare_runs(_run(before), _run(_at_speed(after, 3e-3)), criteria)
    cpu = thrice.tests[0].metrics[0]
    assert same.verdict is Verdict.FAIL and same.machine_term == 0.0 and same.speed is None
    assert twice.machine_term > 0 and twice.speed == pytest.approx(2.0)
    assert twice.shift[0] < same.shift[0] and twice.shift[2] > same.shift[2]
    assert cpu.verdict is Verdict.INCONCLUSIVE and cpu.machine_term > twice.machine_term
    assert "(baseline 3.00× as long per call)" in cpu.describe()
    assert any("UNDECIDED (the machines differ) cpu:+1pp" in line for line in comparison_lines(thrice))
    assert thrice.machine == ()  # the machines as a whole are alike: the term is this test's own


@given(
    ratio=st.floats(min_value=0.05, max_value=20),
    statistic=st.floats(min_value=-3, max_value=3),
    larger=st.floats(min_value=0, max_value=3),
)
def test_the_speed_term_is_symmetric_zero_near_one_and_grows_with_both(
    ratio: float, statistic: float, larger: float
) -> None:
    spread = speed_spread(ratio, statistic)
    assert spread == pytest.approx(speed_spread(1 / ratio, -statistic))
    if max(ratio, 1 / ratio) < SPEED_DIFFERENCE:
        assert spread == 0.0
    else:
        assert spread > 0
        assert speed_spread(ratio, abs(statistic) + larger) >= spread
        farther = ratio * 1.5 if ratio >= 1 else ratio / 1.5
        assert speed_spread(farther, statistic) > spread
    assert speed_spread(None, statistic) == 0.0


@pytest.mark.parametrize("columns", [80, 120])
def test_the_compare_command_fits_its_lines_to_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    # The speed term's words made a metric's line about 200 characters long.
    store = Store(tmp_path)
    store.save(_run(_at_speed(_result(0.02, 1), 1e-3)), "before")
    store.save(_run(_at_speed(_result(0.07, 2), 3e-3), cpu="CPU B"), "after")
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["--storage", str(tmp_path), "compare", "before", "after", "--fail", "cpu:+1pp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    (before, _), (after, _) = store.load("before"), store.load("after")
    unwrapped = comparison_lines(compare_runs(before, after, parse_criteria("cpu:+1pp", "t")))
    assert max(map(len, unwrapped)) > columns
    assert max(map(len, lines)) <= columns
    assert " ".join(lines).split() == " ".join(unwrapped).split()  # nothing lost, words whole
    continued = [line for line in lines if line.startswith("        ")]
    assert continued and all(len(line) - len(line.lstrip()) == 8 for line in continued)  # under the metric's line


def _busy(result: TestResult, processes: int) -> TestResult:
    note = f"{BUSY_NOTE_START}: other processes used 95% of its 2 CPUs"
    return dataclasses.replace(result, processes=processes, notes=(note,))


def test_runs_pooled_over_processes_on_a_busy_machine_each_count_their_load() -> None:
    # Flask, unchanged, beside two busy processes: +6.0% over one run's processes and +9.7% over the
    # next's (docs/accuracy.md, 2026-12-07). A run's processes share its moment's load, so pooling more
    # of them does not average it away, and the next run had a moment of its own.
    criteria = parse_criteria("cpu:+1pp", "test")
    before, after = _result(0.06, 1), _result(0.097, 2)
    pooled = dataclasses.replace(before, processes=6), dataclasses.replace(after, processes=6)
    quiet = compare_runs(_run(pooled[0]), _run(pooled[1]), criteria).tests[0].metrics[0]
    busy = compare_runs(_run(_busy(before, 6)), _run(_busy(after, 6)), criteria).tests[0].metrics[0]
    assert quiet.verdict is Verdict.FAIL
    assert busy.verdict is Verdict.INCONCLUSIVE
    assert busy.shift[0] < quiet.shift[0] and busy.shift[2] > quiet.shift[2]
    assert busy.machine_term == 0.0  # the runs' own load, not a difference between machines
    assert busy.load_term > 0 and quiet.load_term == 0.0
    assert ", load term ±" in busy.describe() and "load term" not in quiet.describe()
    lines = comparison_lines(compare_runs(_run(_busy(before, 6)), _run(_busy(after, 6)), criteria))
    assert any("UNDECIDED (measured on a busy machine) cpu:+1pp" in line for line in lines)
    assert [(c.describe(), why.value) for c, why in busy.held_open] == [("cpu:+1pp", "measured on a busy machine")]
    # +6.0% → +7.0%, at the criterion itself: undecided on a quiet machine too, so the load is not why.
    close = compare_runs(_run(_busy(before, 6)), _run(_busy(_result(0.07, 2), 6)), criteria)
    assert close.tests[0].metrics[0].load_term > 0 and close.tests[0].metrics[0].held_open == ()
    assert any(line.endswith("UNDECIDED cpu:+1pp") for line in comparison_lines(close))
    assert busy_load(_busy(before, 6), 0.058) == MeasureSettings().process_term.load > 0
    # One process's spread already holds the load it saw, and a quiet run has none: nothing is added.
    assert busy_load(_busy(before, 1), 0.058) == 0.0 and busy_load(pooled[0], 0.058) == 0.0
    # At +250% (sqlite3), load moves the figure by a share of it, beyond the floor.
    assert busy_load(_busy(before, 6), 1.25) == 1.25 * LOAD_SHARE > MeasureSettings().process_term.load
    single = compare_runs(_run(_busy(before, 1)), _run(_busy(after, 1)), criteria).tests[0].metrics[0]
    assert single.shift == compare_runs(_run(before), _run(after), criteria).tests[0].metrics[0].shift
