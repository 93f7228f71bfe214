"""Tests of the regression campaign (``regression.py``, ``regression_report.py``): its command line, its rounds
on captured output, its report on synthetic records, and one small smoke round through the real plugin.

Run by path (``python -m pytest benchmarks/real/test_regression.py``). Nothing is timed: the smoke round checks
the plumbing (who is compared with what, the variant's spans), never a verdict.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.real import cli, plan, plugin, regression, regression_report
from benchmarks.real.processes import WORKLOAD_PROJECT, Outcome, Record, Workspace

CPU = "CPU +5.0% → +10.2%: +5.2pp (95% CI [+3.1pp, +7.4pp]), +104% relative  [40 vs 25 pairs]  REGRESSED cpu:+1pp"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (CPU, (0.052, 0.031, 0.074)),
        ("CPU +5.0% → +5.2%: 0.0pp (95% CI [-1.3pp, +1.4pp])  [40 vs 40 pairs]", (0, -0.013, 0.014)),
        ("CPU +5.0% → +7.2%: +2.2pp (95% CI +1.3pp…+3.1pp)  [40 vs 40 pairs]", (0.022, 0.013, 0.031)),
        ("CPU +5.0% → +30%: +25.0pp (95% CI [-∞pp, +70.0pp])  [4 vs 4 pairs]", (0.25, None, 0.7)),
    ],
)
def test_the_shift_and_its_interval_are_read_from_the_cpu_line(
    line: str, expected: tuple[float, float | None, float | None]
) -> None:
    found = regression.shift_of(["wall time +1.0% → +2.0%: +1.0pp (95% CI [0.0pp, +2.0pp])", line])
    got = (found["shift"], found["shift_low"], found["shift_high"])
    assert all(g == e if e is None else math.isclose(g, e, abs_tol=1e-12) for g, e in zip(got, expected, strict=True))
    assert regression.shift_of(["wall time +1.0% → +2.0%: +1.0pp (95% CI [0.0pp, +2.0pp])"])["shift"] is None


SESSION_OUTPUT = """\
=================================== FAILURES ===================================
_________________________________ test_fastapi _________________________________
otel-overhead: CPU +7.5% → +12.3%: +4.7pp (95% CI [+3.0pp, +6.7pp]), +63% relative; grew by more than 1 percentage \
points (cpu:+1pp) — compared with run 'before-002' (saved 2026-12-06T03:04:07+00:00)
__________________________________ test_flask __________________________________
CPU +13.5% > budget 5.0%
-------------------------------- otel-overhead ---------------------------------
compared with run 'before-002'; fail on growth beyond cpu:+1pp
  test_real.py::test_fastapi  UNDECIDED
      CPU +7.5% → +12.3%: +4.7pp (95% CI [+0.6pp, +9.1pp]), machine term ±2.7% included  [156 vs 117 pairs]  \
UNDECIDED (the machines differ) cpu:+1pp
  test_real.py::test_flask  REGRESSED
      CPU +6.5% → +13.5%: +7.0pp (95% CI [+2.5pp, +11.5pp])  [40 vs 54 pairs]  REGRESSED cpu:+1pp
"""


def test_the_tests_failed_on_the_change_are_read_apart_from_the_sessions_last_word() -> None:
    """The session's gate failed fastapi as it ended, its end said UNDECIDED with a machine term: both kept."""
    failed = regression.failed_on_change(SESSION_OUTPUT)
    assert set(failed) == {"fastapi"}  # flask failed on its budget: no message of the change
    assert failed["fastapi"]["shift_low"] == pytest.approx(0.03)
    found = plugin.parse_comparison(SESSION_OUTPUT)
    assert {w: r["outcome"] for w, r in found.items()} == {"fastapi": "UNDECIDED", "flask": "REGRESSED"}
    assert regression.shift_of(found["fastapi"]["lines"])["shift_low"] == pytest.approx(0.006)


def test_a_campaign_plan_is_rounds_of_the_workloads_near_five_percent(capsys: pytest.CaptureFixture[str]) -> None:
    p = cli.build_plan(cli.arguments(["--regression", "--runs", "3", "--seed", "1"]))
    assert p.workloads == plan.REGRESSION_WORKLOADS
    assert dict(p.extra_spans) == {w: plan.EXTRA_SPANS[w] for w in plan.REGRESSION_WORKLOADS}
    assert (p.max_time, p.processes, p.budget) == (None, None, None)  # the user's defaults
    assert plan.schedule(p) == [plan.Job("regression", i) for i in range(3)]
    chosen = cli.build_plan(cli.arguments(["--regression", "--workloads", "fastapi", "--extra-spans", "fastapi=3"]))
    assert chosen.extra_spans == (("fastapi", 3),)
    assert cli.build_plan(cli.arguments([])).extra_spans == ()  # other runs: no variant
    for argv, message in [
        (["--regression", "--workloads", "requests"], "no regression variant for requests"),
        (["--extra-spans", "manual=2"], "give --regression too"),
        (["--regression", "--extra-spans", "manual=0"], "0 is below 1"),
        (["--regression", "--extra-spans", "nginx=2"], "unknown workload 'nginx'"),
    ]:
        with pytest.raises(SystemExit):
            cli.arguments(argv)
        assert message in capsys.readouterr().err


def a_report(workloads: list[str], spans: dict[str, float]) -> Record:
    """A JSON report of the plugin, as far as the harness reads it."""
    test = {
        "verdict": "FAIL",
        "mode": "time",
        "duration_s": 2.0,
        "metrics": {"cpu": {"overhead": 0.05}},
        "pairs": 30,
        "looks": 2,
        "calls_per_block": 6,
        "stop_reason": "decided",
        "settings": {"max_time_s": 30.0},
        "processes": 2,
    }
    return {
        "tests": [
            test | {"nodeid": f"test_real.py::test_{w}", "pipeline": {"spans_started_per_call": spans[w]}}
            for w in workloads
        ]
    }


def test_a_round_saves_before_then_compares_after_and_aa_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(label: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, **_: object) -> Outcome:
        seen.append((command, env))
        nodes = [c for c in command if c.startswith("test_real.py::")]
        workloads = [n.split("::test_")[1] for n in nodes]
        variant = json.loads(env.get("REAL_EXTRA_SPANS") or "{}")
        spans = {w: 1.0 + variant.get(w, 0) for w in workloads}
        report = next(c.split("=", 1)[1] for c in command if c.startswith("--otel-overhead-json="))
        Path(report).write_text(json.dumps(a_report(workloads, spans)))
        lines = ["compared with run 'before-002'; fail on growth beyond cpu:+1pp"]
        for node in nodes:  # the manual span regresses in the variant only; checkout's comparison is left out
            if "checkout" not in node:
                outcome = "REGRESSED" if variant else "UNDECIDED"
                lines += [f"  {node}  {outcome}", f"      {CPU.replace('REGRESSED', outcome)}"]
        log.write_text("\n".join(lines) + "\n" if "--otel-overhead-compare=before-002" in command else "")
        return Outcome(1, 1.0, log)

    monkeypatch.setattr(plugin, "run_command", fake_run)
    p = cli.build_plan(cli.arguments(["--regression", "--workloads", "manual,checkout", "--seed", "5"]))
    records = regression.run_round(plan.Job("regression", 2), p, Workspace(tmp_path, None))
    saved = [[c for c in command if c.startswith("--otel-overhead-save")] for command, _ in seen]
    assert saved == [["--otel-overhead-save=before-002"], [], []]  # the compared processes save nothing
    assert not any(c.startswith("--otel-overhead-compare") for c in seen[0][0])
    assert "REAL_EXTRA_SPANS" not in seen[0][1]
    for command, env in seen[1:]:
        compare = [c for c in command if c.startswith("--otel-overhead-compare")]
        assert compare == ["--otel-overhead-compare=before-002", "--otel-overhead-compare-fail=cpu:+1pp"]
        assert not any(c.startswith(("--otel-overhead-max-time", "--otel-overhead-processes")) for c in command)
        is_after = any(c.endswith("after-002.json") for c in command)
        assert ("REAL_EXTRA_SPANS" in env) == is_after
    compared = {(r["workload"], r["kind"]): r for r in records if r["type"] == "regression"}
    manual_after, manual_aa = compared[("manual", "after")], compared[("manual", "aa")]
    assert (manual_after["outcome"], manual_after["extra_spans"]) == ("REGRESSED", 2)
    assert manual_after["shift"] == pytest.approx(0.052)
    assert manual_after["failed_on_change"] is None
    assert (manual_aa["outcome"], manual_aa["extra_spans"]) == ("UNDECIDED", 0)
    assert (manual_after["before"]["spans_per_call"], manual_after["after"]["spans_per_call"]) == (1.0, 3.0)
    assert compared[("checkout", "after")]["outcome"] == "ERROR"  # not in the session's comparison: not counted
    [round_record] = [r for r in records if r["type"] == "regression_round"]
    assert round_record["order"][0] == "before" and set(round_record["wall_s"]) == {"before", "after", "aa"}


def compared_record(workload: str, kind: str, outcome: str, shift: float | None = 0.05) -> Record:
    return {
        "type": "regression",
        "workload": workload,
        "kind": kind,
        "round": 0,
        "outcome": outcome,
        "extra_spans": 2 if kind == regression.AFTER else 0,
        "shift": shift,
        "shift_low": None if shift is None else shift - 0.02,
        "shift_high": None if shift is None else shift + 0.02,
        "lines": ["CPU ..."],
        "before": {"estimate": 0.05},
        "after": {"estimate": 0.10, "duration_s": 3.0, "processes": 2},
    }


def test_the_report_counts_each_workloads_comparisons_and_checks_the_targets() -> None:
    after, aa = regression.AFTER, regression.AA
    records = [
        *(compared_record(w, after, "REGRESSED") for w in ("flask", "manual", "checkout") for _ in range(9)),
        compared_record("flask", after, "UNDECIDED") | {"failed_on_change": {"shift": 0.05}},
        compared_record("manual", after, "OK"),
        compared_record("checkout", after, "REGRESSED") | {"lines": ["CPU ... machine term ±2.7% included ..."]},
        compared_record("checkout", after, "ERROR", None),
        *(compared_record(w, aa, "UNDECIDED", 0.0) for w in ("flask", "manual", "checkout")),
        compared_record("manual", aa, "REGRESSED", 0.02),
        compared_record("flask", aa, "UNDECIDED", 0.02) | {"failed_on_change": {"shift": 0.02}},
        *({"type": "compare", "saved_as": "before", "workload": "manual", "outcome": o} for o in ("UNDECIDED", "OK")),
        {"type": "compare", "workload": "manual", "outcome": "REGRESSED"},  # plugin runs of another run: not counted
    ]
    text = regression_report.format_regression(records)
    rows = {line.split()[0]: line for line in text.splitlines()[1:4]}
    assert rows["checkout"].split()[1:5] == ["2", "10", "(+1", "not"]
    assert "10 (100%)" in rows["checkout"] and "9 (90%)" in rows["flask"] and "9 (90%)" in rows["manual"]
    assert "+5.0pp [+3.0pp, +7.0pp]" in rows["flask"]
    assert "in >= 90% of comparisons: checkout, flask, manual (3 of 3; target: 3) — met" in text
    aa_line = "A/A false REGRESSED: 2 of 5 in the sessions, 0 of 2 between the saved before runs (target 0 in >= 95)"
    assert aa_line in text
    assert "manual round 0 A/A: REGRESSED" in text
    assert "flask round 0 after: UNDECIDED (its test failed on the change as it ended)" in text
    assert "flask round 0 A/A: UNDECIDED (its test failed on the change)" in text
    assert regression_report.format_regression([{"type": "plugin"}]) == ""
    markdown = regression_report.format_regression(records, markdown=True).splitlines()
    header = regression_report.HEADER
    columns = [dict(zip(header, line.strip("| ").split(" | "), strict=True)) for line in markdown[2:5]]
    saved = {c["workload"]: c["A/A saved before runs REGRESSED"] for c in columns}
    assert saved == {"checkout": "–", "flask": "–", "manual": "0/2 (1 undecided)"}
    assert {c["workload"]: c["A/A false REGRESSED"] for c in columns} == {"checkout": "0", "flask": "1", "manual": "1"}
    assert {c["workload"]: c["machine term"] for c in columns} == {"checkout": "1", "flask": "0", "manual": "0"}


def test_comparing_a_campaigns_saved_runs_again_compares_its_before_runs_round_after_round(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    for name in ("before-000", "after-000", "aa-000", "before-001", "before-002", "aa-002"):
        (store / f"20261206T000000000000Z_{name}_0123abcd.json").write_text("{}")
    compared: list[list[str]] = []

    def fake_run(label: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, **_: object) -> Outcome:
        compared.append(command[command.index("compare") + 1 : command.index("compare") + 3])
        log.write_text("  test_real.py::test_manual  UNDECIDED\n      CPU +5.0% → +5.5%: +0.5pp\n")
        return Outcome(0, 1.0, log)

    monkeypatch.setattr(plugin, "run_command", fake_run)
    out = tmp_path / "again.jsonl"
    p = cli.build_plan(cli.arguments(["--workloads", "manual"]))
    cli.compare_again(p, store, out, [])
    assert compared == [["before-000", "before-001"], ["before-001", "before-002"]]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["saved_as"], r["before"], r["outcome"]) for r in records if r["type"] == "compare"] == [
        ("before", 0, "UNDECIDED"),
        ("before", 1, "UNDECIDED"),
    ]


def test_the_variant_adds_its_spans_around_the_same_work() -> None:
    """``batches`` in the workload project: N batches covering the items once, one child span each."""
    code = """
import json, apps
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
parts = [list(p) for p in apps.batches(range(10), "manual")]
plain = [list(p) for p in apps.batches(range(10), "flask")]
spans = [s.name for s in exporter.get_finished_spans()]
quote, reference = apps.price_lines(50, "manual"), apps.price_lines(50)
print(json.dumps([parts, plain, spans, quote == reference]))
"""
    env = {"REAL_EXTRA_SPANS": json.dumps({"manual": 3}), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=WORKLOAD_PROJECT, env=env, capture_output=True, text=True, check=True
    )
    parts, plain, spans, same = json.loads(done.stdout)
    assert [x for part in parts for x in part] == list(range(10)) and len(parts) == 3
    assert plain == [list(range(10))]
    assert spans == ["order.batch"] * 3 and same


def test_a_quick_round_through_the_plugin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Smoke: one round of the manual span at the quick max_time, end to end; the records and report exist and
    the variant measured its extra spans (the verdicts are not checked: nothing here is timed)."""
    out = tmp_path / "campaign.jsonl"
    argv = ["--regression", "--quick", "--runs", "1", "--workloads", "manual", "--out", str(out)]
    assert cli.main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    compared = {r["kind"]: r for r in records if r["type"] == "regression"}
    assert set(compared) == {regression.AFTER, regression.AA}
    assert all(r["outcome"] in regression.OUTCOMES for r in compared.values()), compared
    after = compared[regression.AFTER]
    assert after["after"]["spans_per_call"] == after["before"]["spans_per_call"] + plan.EXTRA_SPANS["manual"]
    assert compared[regression.AA]["after"]["spans_per_call"] == after["before"]["spans_per_call"]
    assert (tmp_path / "campaign-saved").is_dir() and (tmp_path / "campaign.log").exists()
    assert "A/A false REGRESSED" in capsys.readouterr().out


def test_kept_session_output_fills_in_the_tests_failed_on_the_change(tmp_path: Path) -> None:
    (tmp_path / "after-003.log").write_text(SESSION_OUTPUT)
    older = {"type": "regression", "round": 3, "kind": regression.AFTER, "outcome": "UNDECIDED", "lines": []}
    records = [older | {"workload": w} for w in ("fastapi", "flask")] + [older | {"workload": "fastapi", "round": 4}]
    newer = older | {"workload": "fastapi", "failed_on_change": None}
    filled = regression.with_session_logs([*records, newer], tmp_path)
    assert filled[0]["failed_on_change"]["shift"] == pytest.approx(0.047)
    assert filled[1]["failed_on_change"] is None  # flask failed on its budget only
    assert "failed_on_change" not in filled[2]  # no output kept for round 4
    assert filled[3] == newer  # recorded by the harness itself: left as it is
