"""The calibrate command's computations on synthetic measurements: each process's figure, each test's τ, the fitted
terms, the load term, the file written and printed, and the command line cut between its options and pytest's."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from statistics import NormalDist

import pytest
from conftest import build_metric, build_result
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.calibrate import command
from pytest_otel_overhead.calibrate.runs import MeasuredRun, busy_processes, pytest_arguments
from pytest_otel_overhead.calibrate.terms import (
    FLOOR_RANGE,
    Combined,
    ProcessEstimates,
    combine,
    load_share,
    load_term,
    process_estimates,
    run_figures,
    spread_scale,
    with_built_in,
)
from pytest_otel_overhead.cli import split_calibrate
from pytest_otel_overhead.engine.combined import child_plan
from pytest_otel_overhead.history.run import RunRecord
from pytest_otel_overhead.results import Replica, TestResult
from pytest_otel_overhead.settings.calibration import Calibration
from pytest_otel_overhead.stats.process_term import BUILT_IN_TERM, TermSource
from pytest_otel_overhead.stats.verdict import Verdict
from pytest_otel_overhead.units import Budget

RELATIVE = Budget("relative", 0.05)
Z = NormalDist().inv_cdf(1 - (1 - child_plan(0.95).per_look_confidence) / 2)


def replica(*overheads: tuple[str, float, float, float]) -> Replica:
    return Replica(1, 2, 3, 40, 1.5, Verdict.PASS, tuple(overheads))


def measured_result(nodeid: str, cpu: list[float], se: float = 0.004, *, budget: Budget = RELATIVE) -> TestResult:
    """A test measured over ``len(cpu)`` processes, each reading ``cpu`` (a fraction) within ±Z·se in log ratio."""
    replicas = []
    for overhead in cpu:
        y = math.log1p(overhead)
        replicas.append(replica(("cpu", overhead, math.expm1(y - Z * se), math.expm1(y + Z * se))))
    metric = build_metric("cpu", overhead=sum(cpu) / len(cpu), budget=budget, verdict=Verdict.PASS)
    return dataclasses.replace(build_result(nodeid, metrics=(metric,)), processes=len(cpu), replicas=tuple(replicas))


# --- each process's figure -------------------------------------------------------------------------


def test_a_process_figure_is_its_log_ratio_with_the_standard_error_of_its_interval() -> None:
    (cpu,) = process_estimates(measured_result("t.py::t", [0.05, 0.07], se=0.003))
    assert cpu.metric == "cpu" and cpu.test == "t.py::t"
    assert cpu.estimates == pytest.approx((math.log1p(0.05), math.log1p(0.07)))
    assert cpu.standard_errors == pytest.approx((0.003, 0.003))


def test_cpu_and_relative_time_budgets_count_heap_unbudgeted_and_absolute_ones_do_not() -> None:
    metrics = (
        build_metric("cpu", overhead=0.05, budget=RELATIVE, verdict=Verdict.PASS),
        build_metric("wall", overhead=0.05),  # no budget
        build_metric("latency_p95", overhead=0.05, budget=RELATIVE, verdict=Verdict.PASS),
        build_metric("heap", overhead=0.05, budget=RELATIVE, verdict=Verdict.PASS),
    )
    rows = [(name, 0.05, 0.04, 0.06) for name in ("cpu", "wall", "latency_p95", "heap")]
    result = dataclasses.replace(build_result(metrics=metrics), processes=2, replicas=(replica(*rows), replica(*rows)))
    assert [m.metric for m in process_estimates(result)] == ["cpu", "latency_p95"]
    absolute = build_metric("cpu", overhead=2e-6, budget=Budget("absolute", 5e-6), verdict=Verdict.PASS)
    assert process_estimates(dataclasses.replace(result, metrics=(absolute,))) == []
    assert process_estimates(dataclasses.replace(result, no_telemetry="no spans")) == []


def test_a_process_without_a_figure_or_a_bounded_interval_is_left_out() -> None:
    result = measured_result("t.py::t", [0.05, 0.06])
    extra = (replica(("cpu", math.nan, math.nan, math.nan)), replica(("cpu", 0.05, -math.inf, math.inf)))
    (cpu,) = process_estimates(dataclasses.replace(result, replicas=result.replicas + extra))
    assert len(cpu.estimates) == len(cpu.standard_errors) == 2


def test_tests_over_fewer_than_two_processes_or_without_telemetry_are_left_out_with_why() -> None:
    figures = run_figures(
        [
            measured_result("t.py::two", [0.05, 0.06]),
            measured_result("t.py::one", [0.05]),
            dataclasses.replace(measured_result("t.py::none", [0.05, 0.06]), no_telemetry="no spans"),
        ]
    )
    assert [f.test for f in figures.figures] == ["t.py::two"]
    assert figures.processes == {"t.py::two": 2}
    assert figures.left_out[0].startswith("t.py::one: 1 process(es) measured it")
    assert figures.left_out[1].startswith("t.py::none: no time figure")


# --- each test's spread ----------------------------------------------------------------------------

estimates_and_errors = st.lists(
    st.tuples(st.floats(-1, 3), st.floats(1e-4, 0.05)),
    min_size=2,
    max_size=12,
)


@given(estimates_and_errors)
def test_the_combined_estimate_lies_among_the_processes_and_is_never_surer_than_they_are(
    processes: list[tuple[float, float]],
) -> None:
    ys, ses = tuple(y for y, _ in processes), tuple(se for _, se in processes)
    combined = combine(ProcessEstimates("t", "cpu", ys, ses))
    assert min(ys) - 1e-9 <= combined.estimate <= max(ys) + 1e-9
    assert combined.tau >= 0 and combined.processes == len(ys)
    fixed_effect = math.sqrt(1 / math.fsum(1 / (se * se) for se in ses))
    assert combined.standard_error >= fixed_effect * (1 - 1e-9)


@given(st.floats(-1, 3), st.lists(st.floats(1e-4, 0.05), min_size=2, max_size=8))
def test_processes_that_agree_show_no_spread(y: float, ses: list[float]) -> None:
    combined = combine(ProcessEstimates("t", "cpu", tuple([y] * len(ses)), tuple(ses)))
    assert combined.tau == 0 and combined.estimate == pytest.approx(y)


def test_processes_far_apart_beyond_their_errors_show_their_spread() -> None:
    ys = (0.03, 0.05, 0.07, 0.04, 0.06)
    combined = combine(ProcessEstimates("t", "cpu", ys, (1e-4,) * 5))
    sd = math.sqrt(sum((y - 0.05) ** 2 for y in ys) / 4)
    assert combined.tau == pytest.approx(sd, rel=0.01)
    with pytest.raises(ValueError, match="two processes or more"):
        combine(ProcessEstimates("t", "cpu", (0.05,), (0.01,)))


# --- the fitted terms ------------------------------------------------------------------------------


def figure(test: str, estimate: float, tau: float, processes: int = 5) -> Combined:
    return Combined(test, "cpu", processes, estimate, 0.001, tau)


@given(st.floats(0, 5), st.lists(st.tuples(st.floats(-3, 3), st.integers(2, 20)), min_size=1, max_size=12))
def test_spreads_that_are_a_multiple_of_the_built_in_line_give_back_that_multiple(
    scale: float, points: list[tuple[float, int]]
) -> None:
    figures = [figure(f"t{i}", y, scale * BUILT_IN_TERM.spread(y), k) for i, (y, k) in enumerate(points)]
    assert spread_scale(figures) == pytest.approx(scale, rel=1e-9, abs=1e-12)


def test_the_scale_is_the_root_mean_square_of_the_ratios_weighed_by_degrees_of_freedom() -> None:
    # The real workloads' calibration: τ 0 for three of six tests over five processes each, where a line
    # fitted to the τ put the spread at +5% at a seventh of the built-in one's.
    figures = [
        figure("flask", 0.060, 0.0032), figure("fastapi", 0.073, 0.0031), figure("requests", 0.214, 0.0),
        figure("sqlite3", 1.25, 0.0153), figure("manual", 0.065, 0.0), figure("checkout", 0.041, 0.0),
    ]  # fmt: skip
    ratios = [(f.tau / BUILT_IN_TERM.spread(f.estimate)) ** 2 for f in figures]
    assert spread_scale(figures) == pytest.approx(math.sqrt(sum(ratios) / 6))
    assert 0.5 < spread_scale(figures) < 0.6
    # A figure over more processes counts for more: 9 processes weigh 8 against the others' 4.
    heavier = [dataclasses.replace(figures[3], processes=9), *figures[:3], *figures[4:]]
    assert spread_scale(heavier) == pytest.approx(math.sqrt((sum(ratios) + ratios[3]) / 7))
    with pytest.raises(ValueError):
        spread_scale([])


# --- the load term ---------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.floats(-FLOOR_RANGE, FLOOR_RANGE), st.floats(1e-4, 0.02)), min_size=1, max_size=10))
def test_a_loaded_run_that_reads_the_same_gives_no_load_term(tests: list[tuple[float, float]]) -> None:
    quiet = [Combined(f"t{i}", "cpu", 5, y, se, 0.0) for i, (y, se) in enumerate(tests)]
    assert load_term(quiet, quiet) == 0


@given(st.floats(0.001, 0.2), st.booleans(), st.integers(1, 3))
def test_a_loaded_run_moved_beyond_its_errors_gives_that_move(shift: float, down: bool, tests: int) -> None:
    quiet = [Combined(f"t{i}", "cpu", 5, 0.05 * i, 1e-6, 0.0) for i in range(tests)]
    moved = [dataclasses.replace(f, estimate=f.estimate + (-shift if down else shift)) for f in quiet]
    assert load_term(quiet, moved) == pytest.approx(shift, rel=1e-3)


def test_a_move_within_the_runs_errors_is_no_load_term_and_unshared_tests_count_for_nothing() -> None:
    quiet = [Combined("a", "cpu", 5, 0.05, 0.01, 0.0), Combined("b", "cpu", 5, 0.5, 0.01, 0.0)]
    loaded = [dataclasses.replace(quiet[0], estimate=0.06), Combined("c", "cpu", 5, 3.0, 0.01, 0.0)]
    assert load_term(quiet, loaded) == 0  # 0.01² < 0.01² + 0.01²
    assert load_term(quiet, [Combined("c", "cpu", 5, 3.0, 0.01, 0.0)]) is None
    # Errors explain part of the move: what is left is √(0.04² − 2 × 0.01²).
    assert load_term(quiet[:1], [dataclasses.replace(quiet[0], estimate=0.09)]) == pytest.approx(
        math.sqrt(0.04**2 - 2 * 0.01**2)
    )


def test_figures_far_above_zero_measure_no_floor_the_share_counts_there() -> None:
    # sqlite3 at +250% moved by 0.15 beside two busy processes, a tenth of its log ratio: the share's.
    # Counted in the floor too, it would widen every test near 5% by it, and itself twice.
    near, far = Combined("a", "cpu", 5, 0.05, 1e-4, 0.0), Combined("b", "cpu", 5, math.log1p(2.5), 1e-4, 0.0)
    loaded = [dataclasses.replace(near, estimate=0.06), dataclasses.replace(far, estimate=far.estimate + 0.15)]
    assert load_term([near, far], loaded) == pytest.approx(0.01, rel=0.01)
    assert load_term([far], loaded[1:]) is None
    # There the move measures the share instead: 0.15 of a log ratio of 1.25; the near figure counts for none.
    assert load_share([near, far], loaded) == pytest.approx(0.15 / far.estimate, rel=0.01)
    assert load_share([near], loaded[:1]) is None


@given(
    st.lists(st.tuples(st.floats(FLOOR_RANGE * 1.01, 3.0), st.floats(1e-4, 0.02)), min_size=1, max_size=10),
    st.booleans(),
)
def test_a_loaded_run_that_reads_the_same_far_above_zero_gives_no_share(
    tests: list[tuple[float, float]], down: bool
) -> None:
    quiet = [Combined(f"t{i}", "cpu", 5, -y if down else y, se, 0.0) for i, (y, se) in enumerate(tests)]
    assert load_share(quiet, quiet) == 0


@given(st.floats(0.01, 0.9), st.booleans(), st.lists(st.floats(FLOOR_RANGE * 1.01, 3.0), min_size=1, max_size=4))
def test_a_loaded_run_moved_by_a_share_of_each_figure_gives_that_share(
    share: float, down: bool, sizes: list[float]
) -> None:
    quiet = [Combined(f"t{i}", "cpu", 5, y, 1e-6, 0.0) for i, y in enumerate(sizes)]
    moved = [dataclasses.replace(f, estimate=f.estimate * (1 - share if down else 1 + share)) for f in quiet]
    assert load_share(quiet, moved) == pytest.approx(share, rel=1e-3)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(1, 500))
def test_a_measured_load_term_lies_between_itself_and_the_built_in_one_nearer_itself_with_more_figures(
    measured: float, built_in: float, figures: int
) -> None:
    weighed = with_built_in(measured, figures, built_in)
    assert min(measured, built_in) - 1e-12 <= weighed <= max(measured, built_in) + 1e-12
    more = with_built_in(measured, figures + 10, built_in)
    assert abs(more - measured) <= abs(weighed - measured) + 1e-12


def test_two_figures_move_the_share_a_third_of_the_way_in_squares_and_none_keep_the_built_in_one() -> None:
    # Three calibrations of one runner's six real workloads read the share as 0.110, 0.073 and 0.026.
    assert [round(with_built_in(s, 2, 0.1), 3) for s in (0.110, 0.073, 0.026)] == [0.103, 0.092, 0.083]
    assert with_built_in(None, 0, 0.1) == with_built_in(0.5, 0, 0.1) == 0.1
    assert with_built_in(0.02, 1000, 0.1) == pytest.approx(0.021, abs=5e-4)  # nearly its own


def test_a_share_larger_than_the_figure_is_the_largest_a_calibration_file_holds() -> None:
    quiet = [Combined("a", "cpu", 5, 0.2, 1e-4, 0.0)]
    assert load_share(quiet, [dataclasses.replace(quiet[0], estimate=0.7)]) == 1.0


def test_a_noisy_figure_does_not_hide_what_a_precise_one_moved() -> None:
    quiet = [Combined("a", "cpu", 5, 0.05, 1e-4, 0.0), Combined("a", "latency_p95", 5, 0.05, 0.05, 0.0)]
    loaded = [dataclasses.replace(quiet[0], estimate=0.08), quiet[1]]  # cpu moved 0.03; p95, within its noise
    # Weighed alike, p95's d² − v (−0.005) would cancel cpu's 0.0009 whole: the term would be 0.
    term = load_term(quiet, loaded)
    assert term is not None and 0.027 < term < 0.03


def test_figures_far_more_precise_than_the_excess_count_alike_the_most_precise_does_not_decide() -> None:
    # The real workloads' calibration: requests moved by 0.147 of its log ratio (error 0.054), sqlite3
    # by 0.035 (error 0.018). Weighed by precision alone the share was 0.052, sqlite3's nearly.
    quiet = [Combined("requests", "cpu", 2, 0.215, 1e-3, 0.0), Combined("sqlite3", "cpu", 2, 1.29, 1e-3, 0.0)]
    moved = [(0.147, 0.054), (0.035, 0.018)]
    loaded = [
        dataclasses.replace(
            f, estimate=f.estimate * (1 + share), standard_error=math.sqrt((error * f.estimate) ** 2 - 1e-6)
        )
        for f, (share, error) in zip(quiet, moved, strict=True)
    ]
    share = load_share(quiet, loaded)
    root_mean_square = math.sqrt((0.147**2 - 0.054**2 + 0.035**2 - 0.018**2) / 2)
    assert share is not None and 0.08 < share <= root_mean_square
    # Both far more precise than their moves: they count alike, and the share is their root mean square.
    precise = [[dataclasses.replace(f, standard_error=1e-7) for f in run] for run in (quiet, loaded)]
    assert load_share(*precise) == pytest.approx(math.sqrt((0.147**2 + 0.035**2) / 2), rel=1e-4)


# --- the command, with pytest's runs replaced by synthetic ones ------------------------------------


def fake_runs(
    monkeypatch: pytest.MonkeyPatch, quiet: list[TestResult], loaded: list[TestResult] | None = None
) -> list[tuple[str, bool]]:
    """Replace pytest's runs and the busy processes; returns each run's name and whether load was on."""
    calls: list[tuple[str, bool]] = []
    busy = [False]

    @contextlib.contextmanager
    def fake_busy(count: int) -> Iterator[list[int]]:
        busy[0] = True
        yield [0] * count
        busy[0] = False

    def fake_measure(pytest_args: object, processes: int, work: Path, name: str, cwd: Path) -> MeasuredRun:
        calls.append((name, busy[0]))
        results = quiet if name == "quiet" else (loaded or [])
        return MeasuredRun(RunRecord(tuple(results), {}, "2026-12-05T00:00:00+00:00"), 12.0, 0, "1 passed")

    monkeypatch.setattr(command, "measure", fake_measure)
    monkeypatch.setattr(command, "busy_processes", fake_busy)
    return calls


QUIET = [
    measured_result("t.py::a", [0.040, 0.046, 0.052, 0.043, 0.049]),
    measured_result("t.py::b", [0.20, 0.23, 0.25]),
    measured_result("t.py::c", [1.0, 1.1, 0.95, 1.05]),
]


def test_without_load_the_file_keeps_the_built_in_load_term_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = fake_runs(monkeypatch, QUIET)
    request = command.Request(("t.py",), processes=5, load=0, cwd=tmp_path)
    assert command.run_command(request) == 0
    assert calls == [("quiet", False)]
    written = Calibration.read(tmp_path / "otel-overhead-calibration.json", "test")
    term = written.term
    assert term.source is TermSource.CALIBRATED and term.load == BUILT_IN_TERM.load
    figures = run_figures(QUIET).figures
    assert term.df == BUILT_IN_TERM.df  # the calibration changes the spread's size, not the prior's certainty
    # The built-in line scaled by what the three figures measured, weighed against the built-in's 1.
    factor = with_built_in(spread_scale(figures), 3, 1.0)
    assert factor > 1  # these figures spread more than the built-in line: the calibration widens it
    assert (term.tau, term.slope) == pytest.approx((BUILT_IN_TERM.tau * factor, BUILT_IN_TERM.slope * factor))
    assert written.measured["measured_spread_scale"] == pytest.approx(spread_scale(figures))
    assert written.measured["load_measured"] is False
    assert written.measured["tests"] == 3 and written.measured["processes"] == 12
    assert written.measured["processes_per_test"] == 5 and written.measured["load_processes"] == 0
    assert [f["test"] for f in written.measured["figures"]] == ["t.py::a", "t.py::b", "t.py::c"]
    assert written.measured["figures"][1]["tau"] == pytest.approx(figures[1].tau)
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 120  # the width of a CI log, where no terminal says one
    assert re.search(r"^load +0\.0120 \(not measured\) +0\.012$", out, re.MULTILINE)
    assert re.search(r"^load_share +0\.1000 \(not measured\) +0\.1$", out, re.MULTILINE)
    assert term.load_share == BUILT_IN_TERM.load_share and written.measured["load_share_measured"] is False
    said = " ".join(out.split())  # the sentences wrapped to the width, the tables not
    assert "measured 3 tests over 12 processes in all (5 asked a test), quiet only" in said
    assert f"wrote {tmp_path / 'otel-overhead-calibration.json'}: sessions whose root folder is" in said


def test_with_load_the_second_run_is_beside_busy_processes_and_gives_the_load_term(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every process of every test reads 5% more: a log ratio 0.049 higher, well beyond the runs' errors.
    loaded = [
        dataclasses.replace(
            result,
            replicas=tuple(
                replica((name, 1.05 * (1 + x) - 1, 1.05 * (1 + lo) - 1, 1.05 * (1 + hi) - 1))
                for r in result.replicas
                for name, x, lo, hi in r.overheads
            ),
        )
        for result in QUIET
    ]
    calls = fake_runs(monkeypatch, QUIET, loaded)
    request = command.Request(("t.py",), processes=5, load=2, out=Path("cal.json"), cwd=tmp_path)
    assert command.run_command(request) == 0
    assert calls == [("quiet", False), ("loaded", True)]
    written = Calibration.read(tmp_path / "cal.json", "test")
    quiet_figures, loaded_figures = run_figures(QUIET).figures, run_figures(loaded).figures
    expected = load_term(quiet_figures, loaded_figures)
    assert expected is not None and 0.02 < expected < math.log(1.05)
    # One figure (t.py::a, +4.6%) measured the floor: it counts against the built-in one's 4.
    assert written.term.load == pytest.approx(math.sqrt((4 * BUILT_IN_TERM.load**2 + expected**2) / 5))
    assert written.measured["load_measured"] is True and written.measured["measured_load"] == pytest.approx(expected)
    assert written.measured["measured_load_figures"] == 1
    # t.py::b (+22%) and t.py::c (+100%) lie beyond the floor's range: their moves measure the share.
    share = load_share(quiet_figures, loaded_figures)
    assert share is not None and math.log(1.05) / math.log(2.1) < share < math.log(1.05) / math.log(1.2)
    assert written.term.load_share == pytest.approx(with_built_in(share, 2, BUILT_IN_TERM.load_share))
    assert written.measured["load_share_measured"] is True and written.measured["measured_load_share_figures"] == 2
    out = capsys.readouterr().out
    assert re.search(rf"^load_share +\d\.\d{{4}} \(measured {share:.4f} on 2 figures\) +0\.1$", out, re.M)
    said = " ".join(out.split())
    assert "quiet and beside 2 busy processes" in said
    assert "sessions given --otel-overhead-calibration=" in said


def test_a_runner_that_spreads_and_moves_less_than_the_built_in_terms_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Processes that agree to a tenth of the built-in spread, and a load that moves nothing: the built-in
    # terms stand (a calibration's minutes of processes see less than a gate's runs hours apart).
    quiet = [
        measured_result(f"t.py::{name}", [y, y * 1.0001, y * 0.9999], se=1e-4) for name, y in (("a", 0.05), ("b", 0.5))
    ]
    fake_runs(monkeypatch, quiet, quiet)
    assert command.run_command(command.Request(("t.py",), processes=3, load=2, cwd=tmp_path)) == 0
    written = Calibration.read(tmp_path / "otel-overhead-calibration.json", "test")
    term = written.term
    assert (term.tau, term.slope, term.df, term.load, term.load_share) == (
        BUILT_IN_TERM.tau, BUILT_IN_TERM.slope, BUILT_IN_TERM.df, BUILT_IN_TERM.load, BUILT_IN_TERM.load_share
    )  # fmt: skip
    assert term.source is TermSource.CALIBRATED
    assert written.measured["measured_spread_scale"] < 0.2 and written.measured["measured_load"] == 0.0


def test_the_sentences_fit_the_width_and_the_tables_keep_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runs(monkeypatch, QUIET)
    request = command.Request(("t.py", "-k", "a or b or c"), processes=5, load=0, cwd=tmp_path)
    assert command.run_command(request, width=60) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith(("test ", "t.py::", "term ", "tau ", "slope ", "df ", "load"))]
    assert len(rows) == 1 + 3 + 1 + 5  # the tests' heading and three tests, the terms' heading and five terms
    sentences = [line for line in lines if line not in rows and line.strip()]
    assert sentences and all(len(line) <= 60 or " " not in line.strip() for line in sentences)  # but a long path
    assert any(line.startswith("each measured term is weighed with the built-in") for line in sentences)
    assert any(line.startswith("calibrate: quiet run: python -m pytest t.py -k") for line in sentences)
    assert max(map(len, rows)) > 60  # a row stays whole


def test_what_cannot_be_calibrated_is_one_line_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runs(monkeypatch, [])
    assert command.run_command(command.Request(("t.py",), load=0, cwd=tmp_path)) == 2
    assert capsys.readouterr().err.startswith("error: calibrate: no marked test was measured among `t.py`")
    fake_runs(monkeypatch, [measured_result("t.py::one", [0.05])])
    assert command.run_command(command.Request(("t.py",), load=0, cwd=tmp_path)) == 2
    assert "no test gives a spread between processes: t.py::one: 1 process(es)" in capsys.readouterr().err
    assert command.run_command(command.Request(("t.py",), processes=1, cwd=tmp_path)) == 2
    assert "--processes 1: a spread between processes needs 2 or more" in capsys.readouterr().err
    assert not (tmp_path / "otel-overhead-calibration.json").exists()


def test_a_term_the_plugin_could_not_read_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Processes a factor of a hundred apart about no overhead: a spread hundreds of times the built-in one's.
    wild = [measured_result("t.py::a", [-0.9, 9.0], se=0.001), measured_result("t.py::b", [-0.9, 9.0], se=0.001)]
    fake_runs(monkeypatch, wild)
    assert command.run_command(command.Request(("t.py",), load=0, cwd=tmp_path)) == 2
    assert not (tmp_path / "otel-overhead-calibration.json").exists()


def test_tests_left_out_are_named_and_kept_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runs(monkeypatch, [*QUIET, measured_result("t.py::one", [0.05])])
    assert command.run_command(command.Request(("t.py",), load=0, cwd=tmp_path)) == 0
    assert "note: left out t.py::one: 1 process(es) measured it" in capsys.readouterr().err
    document = json.loads((tmp_path / "otel-overhead-calibration.json").read_text(encoding="utf-8"))
    assert document["measured"]["left_out"][0].startswith("t.py::one")


# --- the runs and the command line -----------------------------------------------------------------


def test_each_run_measures_over_processes_into_its_report_and_gates_nothing(tmp_path: Path) -> None:
    args = pytest_arguments(["tests/perf", "-k", "checkout"], 4, tmp_path / "quiet.json")
    assert args[:3] == ["tests/perf", "-k", "checkout"]
    assert {"--otel-overhead", "--otel-overhead-processes=4", "--otel-overhead-inconclusive=pass"} <= set(args)
    assert "--otel-overhead-min-processes=4" in args  # every process asked, not the two a verdict needs
    assert "--otel-overhead-min-processes=8" in pytest_arguments(["t"], 12, tmp_path / "q.json")  # auto's most
    assert f"--otel-overhead-json={tmp_path / 'quiet.json'}" in args


def test_busy_processes_run_during_the_block_and_are_gone_after_it_however_it_ends() -> None:
    with pytest.raises(KeyboardInterrupt), busy_processes(1) as pids:
        os.kill(pids[0], 0)  # running
        started = pids
        raise KeyboardInterrupt
    with pytest.raises(ProcessLookupError):
        os.kill(started[0], 0)


@pytest.mark.parametrize(
    ("argv", "own", "passed"),
    [
        (["calibrate", "tests/perf", "-k", "checkout"], ["calibrate"], ["tests/perf", "-k", "checkout"]),
        (["calibrate", "--processes", "3", "--", "-k", "x"], ["calibrate", "--processes", "3"], ["-k", "x"]),
        (
            ["calibrate", "--load=0", "--out", "f.json", "-k", "x"],
            ["calibrate", "--load=0", "--out", "f.json"],
            ["-k", "x"],
        ),
        (
            ["--storage", "d", "calibrate", "t.py", "--load", "1"],
            ["--storage", "d", "calibrate"],
            ["t.py", "--load", "1"],
        ),
        (["calibrate", "--help"], ["calibrate", "--help"], []),
        (["compare", "a", "--", "b"], ["compare", "a", "--", "b"], []),
    ],
)
def test_the_command_line_is_cut_where_pytest_s_arguments_begin(
    argv: list[str], own: list[str], passed: list[str]
) -> None:
    assert split_calibrate(argv) == (own, passed)
