"""Estimated cycles in instructions mode, without valgrind: events read from dumps, the gate, the record, the fit."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pytest_otel_overhead.instructions.counts import Layout, instruction_metrics
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL, Counts, cache_options, counts_from_events
from pytest_otel_overhead.instructions.processes import BLOCK_LABEL
from pytest_otel_overhead.instructions.valgrind import callgrind_command, dump_events, read_dumps
from pytest_otel_overhead.results import TestResult
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.wire.checks import Malformed
from pytest_otel_overhead.wire.document import from_document

EVENTS_LINE = "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim"


def test_a_dump_gives_each_event_by_the_names_of_its_events_line(tmp_path: Path) -> None:
    label = BLOCK_LABEL.format(layout=1, block=0, arm=0, calls=5)
    (tmp_path / "callgrind.9.out.1").write_text(
        f"desc: Trigger: Client Request: {label}\n{EVENTS_LINE}\n"
        "summary: 1000 400 200 30 20 10 3 2 1 150 12 40 5\nfn=x\n0 5\ntotals: 99999 1 1 1 1 1 1 1 1 1 1 1 1\n"
    )
    (dump,) = read_dumps(tmp_path)
    assert dump.counts == Counts(instructions=1000, l1_misses=60, ll_misses=6, mispredicts=17)
    assert dump.instructions == 1000


def test_trailing_zero_events_left_out_of_a_cost_line_read_as_zero() -> None:
    events = dump_events(f"{EVENTS_LINE}\nsummary: 500 10 5 7\n")
    assert events["I1mr"] == 7
    assert events["DLmw"] == 0
    assert counts_from_events(events) == Counts(500, 7, 0)


def test_without_cache_simulation_a_dump_counts_instructions_only() -> None:
    assert counts_from_events(dump_events("events: Ir\nsummary: 1234\n")) == Counts(1234)
    assert dump_events("totals: 77\n") == {"Ir": 77}  # no events line: callgrind's default event
    assert dump_events("no figures here") == {}


def test_estimated_cycles_weigh_each_level_of_miss_and_each_mispredict() -> None:
    counts = Counts(instructions=1_000_000, l1_misses=2_000, ll_misses=100, mispredicts=300)
    model = CYCLE_MODEL
    expected = 1_000_000 + model.l1_miss_cycles * 2_000 + model.ll_miss_cycles * 100 + model.mispredict_cycles * 300
    assert counts.cycles() == pytest.approx(expected)
    assert (counts - Counts(500_000, 1_000, 50, 100)).per(10) == Counts(50_000, 100, 5, 20)
    assert Counts.mean([Counts(1, 2, 3, 4), Counts(3, 4, 5, 6)]) == Counts(2, 3, 4, 5)


def test_the_simulated_caches_are_fixed_by_the_plugin_not_read_from_the_host(tmp_path: Path) -> None:
    command = callgrind_command("valgrind", tmp_path)
    assert "--cache-sim=yes" in command
    # Mispredicts weigh nothing in the calibrated model: their simulation would cost time for no figure.
    assert f"--branch-sim={'yes' if CYCLE_MODEL.mispredict_cycles else 'no'}" in command
    assert "--branch-sim=yes" in cache_options(dataclasses.replace(CYCLE_MODEL, mispredict_cycles=15.0))
    assert "--I1=32768,8,64" in command and "--D1=32768,8,64" in command and "--LL=8388608,16,64" in command
    simulated = ("--cache-sim", "--branch-sim", "--I1", "--D1", "--LL")
    assert cache_options() == [option for option in command if option.startswith(simulated)]


def memory_heavy(count: int = 8) -> list[Layout]:
    """3% more instructions, but four times the misses: the telemetry's cost is mostly memory."""
    found = []
    for i in range(count):
        wobble = 1 + 1e-4 * (i - count / 2)
        baseline = Counts(1_000_000, 5_000, 500)
        instrumented = Counts(1_030_000 * wobble, 20_000 * wobble, 2_000 * wobble)
        found.append(Layout(layout=i, calls=10, baseline=baseline, instrumented=instrumented))
    return found


def test_the_gate_is_estimated_cycles_and_instructions_are_reported_beside_it() -> None:
    settings = resolve([Layer.parse({"budget": "5%", "mode": "instructions"}, lambda key: "test")])
    classic = dataclasses.replace(CYCLE_MODEL, l1_miss_cycles=10.0, ll_miss_cycles=100.0)
    metrics = {m.metric: m for m in instruction_metrics(settings, memory_heavy(), classic)}
    # 1.1 M cycles baseline (1 M + 10 x 5 k + 100 x 500), 1.43 M instrumented: +30%, over the 5% budget
    assert metrics["cycles"].verdict is Verdict.FAIL
    assert metrics["cycles"].overhead == pytest.approx(1.43 / 1.1 - 1, abs=1e-3)
    assert metrics["cycles"].baseline == pytest.approx(1_100_000)
    # instructions alone would have passed: reported, not decided
    assert metrics["instructions"].verdict is None
    assert metrics["instructions"].budget is None
    assert metrics["instructions"].overhead == pytest.approx(0.03, abs=1e-3)
    assert metrics["instructions"].ci_low < 0.03 < metrics["instructions"].ci_high


def result_with(samples: tuple[tuple[float, ...], ...]) -> TestResult:
    from pytest_otel_overhead.results import StopReason

    settings = resolve([Layer.parse({"mode": "instructions"}, lambda key: "test")])
    return TestResult(
        nodeid="t.py::t",
        settings=settings,
        metrics=tuple(instruction_metrics(settings, memory_heavy())),
        health=None,
        process=None,
        pairs=8,
        calls_per_block=10,
        looks=1,
        duration_s=20.0,
        stop_reason=StopReason.COUNTED,
        throughput_baseline=math.nan,
        throughput_instrumented=math.nan,
        mode="instructions",
        instruction_samples=samples,
        cycle_model=CYCLE_MODEL,
    )


def test_the_document_keeps_the_misses_and_the_cycle_model() -> None:
    result = result_with(tuple(layout.sample for layout in memory_heavy()))
    document = json.loads(json.dumps(result.as_dict()))
    samples = document["instruction_samples"]
    assert samples["columns"][2:] == [
        f"{count}_{arm}" for count in ("l1_misses", "ll_misses", "mispredicts") for arm in ("baseline", "instrumented")
    ]
    assert samples["per_process_per_call"][0][:3] == [1_000_000, pytest.approx(1_030_000, rel=1e-3), 5_000]
    assert document["cycle_model"] == {
        "i1": {"size_bytes": 32768, "ways": 8, "line_bytes": 64},
        "d1": {"size_bytes": 32768, "ways": 8, "line_bytes": 64},
        "ll": {"size_bytes": 8388608, "ways": 16, "line_bytes": 64},
        "l1_miss_cycles": CYCLE_MODEL.l1_miss_cycles,
        "ll_miss_cycles": CYCLE_MODEL.ll_miss_cycles,
        "mispredict_cycles": CYCLE_MODEL.mispredict_cycles,
    }
    assert document["metrics"]["cycles"]["unit"] == "cycles"
    read = from_document(TestResult, document)
    assert read.cycle_model == CYCLE_MODEL
    assert read.instruction_samples == result.instruction_samples


def test_runs_saved_before_the_cache_simulation_still_read() -> None:
    document = json.loads(json.dumps(result_with(((1e6, 1.1e6),)).as_dict()))
    assert document["instruction_samples"]["columns"] == ["instructions_baseline", "instructions_instrumented"]
    del document["cycle_model"]
    read = from_document(TestResult, document)
    assert read.instruction_samples == ((1e6, 1.1e6),)
    assert read.cycle_model is None
    document["instruction_samples"]["columns"] = ["cycles_baseline", "cycles_instrumented"]
    with pytest.raises(Malformed, match="columns"):
        from_document(TestResult, document)


def calibration() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "cycles_calibration.py"
    spec = importlib.util.spec_from_file_location("cycles_calibration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


GRID = {"steps": 6, "rounds": 7}
"""A coarser grid than the script's, refined further: the same answer in a fraction of the time."""


def synthetic_workloads(module: ModuleType, weights: tuple[float, float, float], count: int = 5) -> list[object]:
    """Workloads whose time reference is exactly their cycles overhead under ``weights``."""
    rng = random.Random(7)
    workloads = []
    for k in range(count):
        rows = []
        for _ in range(4):
            base = (1e6, 1e6 * (1 + 0.05 * k) * rng.uniform(0.999, 1.001))
            l1 = (5e3, 5e3 * (2 + k) * rng.uniform(0.99, 1.01))
            ll = (300.0, 300.0 * (1 + 4 * (k % 2)) * rng.uniform(0.99, 1.01))
            branches = (2e3, 2e3 * (1 + 3 * (k % 3)) * rng.uniform(0.99, 1.01))
            rows.append((*base, *l1, *ll, *branches))
        workloads.append(module.Workload(f"w{k}", tuple(rows), module.overhead(rows, weights)))
    return workloads


def test_the_calibration_recovers_known_weights_and_leaves_each_workload_out() -> None:
    module = calibration()
    workloads = synthetic_workloads(module, (18.0, 140.0, 25.0))
    w1, wll, wb = module.fit_weights(workloads, **GRID)
    assert w1 == pytest.approx(18.0, abs=1.0)
    assert wll == pytest.approx(140.0, abs=10.0)
    assert wb == pytest.approx(25.0, abs=1.0)
    held_out = module.leave_one_out(workloads, **GRID)
    for workload in workloads:
        assert held_out[workload.name][1] == pytest.approx(workload.time, abs=0.005)
    lines = module.report(workloads, **GRID)
    assert lines[0].startswith("fitted weights: w1 = 1")
    assert all(line.endswith("| yes |") for line in lines[5:])


def test_records_without_branch_simulation_weigh_the_misses_they_have() -> None:
    module = calibration()
    rows = [(1e6, 1.1e6, 1e3, 2e3, 10.0, 20.0)]
    assert module.overhead(rows, (10.0, 100.0, 15.0)) == pytest.approx((1.1e6 + 2e4 + 2e3) / (1e6 + 1e4 + 1e3) - 1)


def test_the_calibration_reads_counts_of_one_run_and_the_median_time_reference() -> None:
    module = calibration()
    row = [1e6, 1.1e6, 1e3, 2e3, 10.0, 20.0]
    records = [
        {"type": "counts", "run": "a", "workload": "flask", "per_process_per_call": [row] * 8},
        {"type": "counts", "run": "b", "workload": "flask", "per_process_per_call": [row] * 8},
        {"type": "counts", "run": "a", "workload": "untimed", "per_process_per_call": [row] * 8},
        {"type": "time", "workload": "flask", "reference": 0.10},
        {"type": "time", "workload": "flask", "reference": 0.12},
        {"type": "time", "workload": "flask", "reference": 0.30},
    ]
    (flask,) = module.load_workloads(records, None)
    assert flask.name == "flask" and flask.time == 0.12 and len(flask.rows) == 8
    assert len(module.load_workloads(records, "b")) == 1
    assert module.overhead(flask.rows, (0.0, 0.0, 0.0)) == pytest.approx(0.1)
