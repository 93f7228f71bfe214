"""Instructions mode without valgrind: the parts that decide, parse and report, and the errors."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from pytest_otel_overhead.engine.children import passed_on_args
from pytest_otel_overhead.formatting import format_count
from pytest_otel_overhead.instructions import processes as instructions
from pytest_otel_overhead.instructions.counts import Layout, instruction_metrics, summarise_layout
from pytest_otel_overhead.instructions.cycles import CYCLE_MODEL, Counts
from pytest_otel_overhead.instructions.processes import BLOCK_LABEL, ChildSpec
from pytest_otel_overhead.instructions.valgrind import (
    INSTALL_HINT,
    ClientRequests,
    ValgrindUnavailable,
    check_valgrind,
    read_dumps,
    supported_machine,
)
from pytest_otel_overhead.reports.terminal import summary_lines
from pytest_otel_overhead.results import StopReason, TestResult
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.records import MeasureSettings, PipelineSettings
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget, SettingsError


def settings_with(**raw: object) -> MeasureSettings:
    return resolve([Layer.parse(raw, lambda key: "test")])


def layouts(ratio: float, count: int = 8, wobble: float = 1e-4) -> list[Layout]:
    base = 1_000_000.0
    return [
        Layout(
            layout=i,
            calls=10,
            baseline=Counts(base),
            instrumented=Counts(base * ratio * (1 + wobble * (i - count / 2))),
        )
        for i in range(count)
    ]


def decide(settings: MeasureSettings, ratio: float) -> dict[str, object]:
    found = layouts(ratio)
    metrics = instruction_metrics(settings, found)
    return {m.metric: m for m in metrics}


def test_mode_is_a_setting_with_a_flag_and_an_ini_twin() -> None:
    assert "mode" in KEYS
    assert settings_with().mode == "time"
    assert settings_with(mode="instructions").mode == "instructions"
    assert settings_with(mode="instructions").as_dict()["mode"] == "instructions"
    with pytest.raises(SettingsError, match="not one of time, instructions"):
        settings_with(mode="cycles")


def test_the_ratio_of_estimated_cycles_is_decided_against_the_cpu_budget() -> None:
    over = decide(settings_with(budget="5%", mode="instructions"), 1.5)["cycles"]
    assert over.verdict is Verdict.FAIL  # type: ignore[attr-defined]
    assert over.overhead == pytest.approx(0.5, abs=1e-3)  # type: ignore[attr-defined]
    within = decide(settings_with(budget="5%", mode="instructions"), 1.0)["cycles"]
    assert within.verdict is Verdict.PASS  # type: ignore[attr-defined]
    assert within.n == 8  # type: ignore[attr-defined]


def test_time_budgets_are_undecidable_and_say_so() -> None:
    found = decide(settings_with(cpu="50us", wall="10%", latency_p95="20%", mode="instructions"), 1.0)
    for metric in ("cpu", "wall", "latency_p95"):
        result = found[metric]
        assert result.verdict is Verdict.INCONCLUSIVE  # type: ignore[attr-defined]
        assert "mode='time'" in result.note  # type: ignore[attr-defined]
    assert "absolute CPU budget" in found["cpu"].note  # type: ignore[attr-defined]
    assert found["cycles"].verdict is None  # type: ignore[attr-defined]  # no relative CPU budget to decide


def test_a_network_exporter_can_pass_but_not_fail() -> None:
    local = settings_with(budget="5%", mode="instructions")
    otlp = dataclasses.replace(local, pipeline=dataclasses.replace(local.pipeline, exporter="otlp"))
    assert decide(otlp, 1.0)["cycles"].verdict is Verdict.PASS  # type: ignore[attr-defined]
    failing = decide(otlp, 2.0)["cycles"]
    assert failing.verdict is Verdict.INCONCLUSIVE  # type: ignore[attr-defined]
    assert "upper bound" in failing.note  # type: ignore[attr-defined]


def test_layouts_subtract_each_arms_empty_block() -> None:
    blocks = [
        (-1, 0, 0, Counts(1_000, 10, 1)),
        (-1, 1, 0, Counts(50_000, 500, 5)),
        (0, 0, 10, Counts(10_001_000, 10_010, 101)),
        (1, 1, 10, Counts(11_050_000, 20_500, 205)),
    ]
    layout = summarise_layout(3, blocks)
    assert layout.baseline == Counts(1_000_000, 1_000, 10)
    assert layout.instrumented == Counts(1_100_000, 2_000, 20)
    assert layout.log_ratio("instructions") == pytest.approx(math.log(1.1))
    # estimated cycles: each miss weighs what the cycle model says
    baseline = 1_000_000 + CYCLE_MODEL.l1_miss_cycles * 1_000 + CYCLE_MODEL.ll_miss_cycles * 10
    instrumented = 1_100_000 + CYCLE_MODEL.l1_miss_cycles * 2_000 + CYCLE_MODEL.ll_miss_cycles * 20
    assert layout.log_ratio("cycles") == pytest.approx(math.log(instrumented / baseline))


def test_dump_files_are_read_by_label(tmp_path: Path) -> None:
    label = BLOCK_LABEL.format(layout=2, block=0, arm=1, calls=7)
    (tmp_path / "callgrind.123.out.1").write_text(
        f"desc: Trigger: Client Request: {label}\nevents: Ir\nsummary: 999\nfn=x\n0 5\ntotals: 12345\n"
    )
    (tmp_path / "callgrind.123.out").write_text("desc: Trigger: Program termination\ntotals: 1\n")
    (dump,) = read_dumps(tmp_path)
    assert dump.label == label
    # summary: what every thread executed between zero and dump; totals may hold costs from before
    assert dump.instructions == 999


def test_the_child_spec_round_trips(tmp_path: Path) -> None:
    spec = ChildSpec("t.py::test_a#call2", PipelineSettings(sample_rate=0.25, exporter="memory"), (1, 3), 1, tmp_path)
    assert ChildSpec.from_json(spec.to_json()) == spec


def test_the_child_gets_the_options_that_shape_collection() -> None:
    args = ["-p", "xdist", "-pno:randomly", "--import-mode=importlib", "-o", "x=1", "-k", "foo", "--noconftest"]
    assert passed_on_args([*args, "tests/test_a.py", "-v"]) == [
        "-p",
        "xdist",
        "-pno:randomly",
        "--import-mode=importlib",
        "-o",
        "x=1",
        "--noconftest",
    ]


def test_client_requests_do_nothing_outside_valgrind() -> None:
    if not supported_machine():
        pytest.skip("client requests are issued on x86-64 Linux only")
    requests = ClientRequests()
    assert requests.running_on_valgrind is False
    requests.zero()  # a no-op on a real CPU: the request sequence rotates a register by 128 bits


def test_slots_share_the_cpus_among_xdist_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert instructions.slot_count(8) == 4
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert instructions.slot_count(8) == 2
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "8")
    assert instructions.slot_count(8) == 1


def test_the_report_says_the_mode() -> None:
    settings = settings_with(budget="5%", mode="instructions")
    found = layouts(1.02)
    metrics = tuple(instruction_metrics(settings, found))
    result = TestResult(
        nodeid="t.py::test_a",
        settings=settings,
        metrics=metrics,
        health=None,
        process=None,
        pairs=8,
        calls_per_block=10,
        looks=1,
        duration_s=12.0,
        stop_reason=StopReason.COUNTED,
        throughput_baseline=math.nan,
        throughput_instrumented=math.nan,
        mode="instructions",
        instruction_samples=tuple(f.sample for f in found),
        cycle_model=CYCLE_MODEL,
    )
    text = "\n".join(summary_lines([result]))
    assert "instructions mode: 8 processes under valgrind" in text
    assert "1 M" in text and "+2.0%" in text
    data = result.as_dict()
    assert data["mode"] == "instructions"
    assert data["metrics"]["instructions"]["unit"] == "instructions"  # type: ignore[index]
    assert data["metrics"]["cycles"]["unit"] == "cycles"  # type: ignore[index]
    assert len(data["instruction_samples"]["per_process_per_call"]) == 8  # type: ignore[index]
    assert data["cycle_model"]["ll"]["size_bytes"] == 8 * 1024 * 1024  # type: ignore[index]
    json.dumps(data, allow_nan=False)
    assert format_count(1_234_567) == "1.23 M"


def test_missing_valgrind_is_one_clear_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(pytester.path / "empty"))
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--otel-overhead", "--otel-overhead-mode=instructions")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*instruction counting needs valgrind*apt-get install valgrind*"])


def test_missing_valgrind_fails_a_marked_test(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(pytester.path / "empty"))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.otel_overhead(mode="instructions")
        def test_counted():
            sum(range(100))
        """
    )
    result = pytester.runpytest_subprocess("--otel-overhead")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*instruction counting needs valgrind*"])


def test_check_valgrind_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    if not supported_machine():
        pytest.skip("x86-64 Linux only")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ValgrindUnavailable, match="apt-get install valgrind"):
        check_valgrind()
    assert "apt-get install valgrind" in INSTALL_HINT


def test_budget_kinds_line_up() -> None:
    settings = settings_with(budget="5%", mode="instructions")
    assert settings.budget("cpu") == Budget("relative", 0.05)
