"""Shards merged into one run: the runs of N CI jobs that each measured part of a suite, as one run.

A test measured in one shard arrives unchanged. A test measured in several shards (on purpose, to
cover machines) is combined across them by the between-process method a measurement over several
processes uses (``engine.combined.combined_metrics``: a random-effects interval, wide when the
shards disagree), and a note says over how many shards and machines; in instructions mode it keeps
the shards' cycle model. Runs that cannot be merged are refused with one line naming the files: runs
of different pytest-otel-overhead versions, runs whose cycle models differ, or one test measured with
different settings in two shards.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_otel_overhead.engine.combined import combined_metrics
from pytest_otel_overhead.history.document import document_chunks, encode_test
from pytest_otel_overhead.history.machines import cpu_models
from pytest_otel_overhead.history.reader import ROWS_KEY, UNMEASURED, Carried, Documents
from pytest_otel_overhead.history.store import HistoryError, RunRecord, printable
from pytest_otel_overhead.results import CycleModel, StopReason, TestResult
from pytest_otel_overhead.wire.checks import read_rows

__all__ = [
    "MERGED_STOP_REASON",
    "UNMEASURED",
    "MergeSummary",
    "check_cycle_models",
    "check_versions",
    "merge_carried",
    "merge_runs",
    "plugin_version",
    "plugin_version_here",
    "run_chunks",
    "run_unmeasured",
    "same_version_documents",
    "test_chunks",
    "unmeasured_of",
    "unmeasured_tests",
    "with_rows",
]

MERGED_STOP_REASON = StopReason.COMBINED_OVER_SHARDS
"""The ``stop_reason`` of a test combined from several shards; each shard stopped for a reason of its own."""
_PACKAGE = "pytest-otel-overhead"


@dataclass(frozen=True)
class MergeSummary:
    """What a merge did, for the line the command prints."""

    shards: int
    tests: int
    combined: tuple[str, ...]
    """Node ids measured in more than one shard, and combined across them."""
    machines: tuple[str, ...]

    def line(self) -> str:
        text = f"merged {self.shards} shards: {self.tests} tests on {len(self.machines)} machine(s)"
        if self.combined:
            text += f"; {len(self.combined)} measured in several shards, combined across them"
        return text


def plugin_version(run: RunRecord) -> str | None:
    """The pytest-otel-overhead version a run was measured with, when it says."""
    packages = run.environment.get("packages")
    version = packages.get(_PACKAGE) if isinstance(packages, Mapping) else None
    return version if isinstance(version, str) else None


def _where(run: RunRecord) -> str:
    return str(run.path) if run.path is not None else run.label


def check_versions(runs: Sequence[RunRecord]) -> None:
    """Refuse runs of different plugin versions: their figures may mean different things."""
    versions = {plugin_version(run) for run in runs} - {None}
    if len(versions) > 1:
        named = ", ".join(f"{_where(run)} ({plugin_version(run) or 'unknown'})" for run in runs)
        raise HistoryError(f"runs of different {_PACKAGE} versions cannot be merged: {named}")


def check_cycle_models(runs: Sequence[RunRecord]) -> None:
    """Refuse runs whose instructions-mode tests estimate cycles with different models (``results.CycleModel``):
    one merged run weighs its counts one way, as one session's does."""
    first: tuple[RunRecord, CycleModel] | None = None
    for run in runs:
        for model in dict.fromkeys(r.cycle_model for r in run.results if r.cycle_model is not None):
            if first is None:
                first = (run, model)
            elif model != first[1]:
                differences = "; ".join(first[1].differences(model))
                raise HistoryError(
                    f"runs that estimate cycles with different cycle models cannot be merged: {_where(first[0])} "
                    f"and {_where(run)} ({differences})"
                )


def _comparable_settings(result: TestResult) -> dict[str, object]:
    # Where a setting came from may differ between jobs (a flag here, the environment there); its value may not.
    settings = result.settings.as_dict()
    settings.pop("sources", None)
    return {**settings, "mode": result.mode}


def _check_same_settings(nodeid: str, placed: Sequence[tuple[RunRecord, TestResult]]) -> None:
    first_run, first = placed[0]
    reference = _comparable_settings(first)
    for run, result in placed[1:]:
        other = _comparable_settings(result)
        if other != reference:
            keys = sorted(k for k in reference.keys() | other.keys() if reference.get(k) != other.get(k))
            raise HistoryError(
                f"{nodeid} was measured with different settings in {_where(first_run)} and {_where(run)} "
                f"({', '.join(keys)} differ); such shards cannot be merged"
            )


def _combined(nodeid: str, placed: Sequence[tuple[RunRecord, TestResult]]) -> TestResult:
    """One test measured in several shards, combined across them as processes are."""
    results = [result for _, result in placed]
    first = results[0]
    # The shards are looked at once, together: one interval at the confidence the test's settings ask for.
    confidence = first.settings.confidence
    metrics = combined_metrics(first.settings, results, confidence, confidence)
    machines = sorted({model for run, _ in placed for model in cpu_models(run)})
    where = f"measured in {len(results)} shards on {len(machines)} machine(s) ({'; '.join(machines)})"
    healths = [r.health for r in results if r.health is not None]
    return TestResult(
        nodeid=nodeid,
        settings=first.settings,
        metrics=tuple(metrics),
        # The shard that lost the most spans speaks for the test, as the worst process does.
        health=max(healths, key=lambda health: health.dropped) if healths else None,
        process=first.process,
        pairs=sum(r.pairs for r in results),
        calls_per_block=first.calls_per_block,
        looks=sum(r.looks for r in results),
        duration_s=math.fsum(r.duration_s for r in results),
        stop_reason=MERGED_STOP_REASON,
        throughput_baseline=first.throughput_baseline,
        throughput_instrumented=first.throughput_instrumented,
        samples=tuple(s for r in results for s in r.samples),
        mode=first.mode,
        instruction_samples=tuple(s for r in results for s in r.instruction_samples),
        cycle_model=first.cycle_model,  # the shards' own, one model (``check_cycle_models``)
        processes=sum(max(r.processes, 1) for r in results),
        replicas=tuple(replica for r in results for replica in r.replicas),
        no_telemetry=next((r.no_telemetry for r in results if r.no_telemetry is not None), None),
        notes=(where, *dict.fromkeys(note for r in results for note in r.notes)),
    )


def unmeasured_of(path: Path, sections: Mapping[str, Any] | None = None) -> list[dict[str, str]]:
    """The ``unmeasured`` section of a run's file (``plugins/unmeasured.py``): tests that were to be
    measured and were skipped or errored. Taken from ``sections`` (the file's, decoded as it was read:
    ``history.reader.Shard``), else read from the file where it has one; one line naming the file when
    it is malformed."""
    if sections is not None:
        section = sections.get(UNMEASURED, [])
    else:
        try:
            raw = path.read_bytes()  # its bytes: a run's file is mostly rows, and most have no such section
            if f'"{UNMEASURED}"'.encode() not in raw:
                return []
            section = json.loads(raw.decode("utf-8")).get(UNMEASURED, [])
        except (OSError, ValueError, AttributeError) as error:
            raise HistoryError(f"{path}: cannot read its {UNMEASURED} section ({error.__class__.__name__})") from None
    fields = ("nodeid", "outcome", "reason")
    if not isinstance(section, list) or not all(
        isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in fields) for entry in section
    ):
        raise HistoryError(f"{path}: its {UNMEASURED} section is not a list of nodeid, outcome and reason")
    return [{key: printable(entry[key]) for key in fields} for entry in section]


def _shards(run: RunRecord, sections: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """What a run says of the shards it is made of: itself, or a merged run's own shards."""
    earlier = run.machine.get("shards")
    if isinstance(earlier, list) and all(isinstance(shard, dict) for shard in earlier):
        return list(earlier)
    return [
        {
            "label": run.label,
            "file": None if run.path is None else run.path.name,
            "created": run.created,
            "cpu_model": cpu_models(run)[0],
            "python": run.environment.get("python"),
            "tests": len(run.results),
            "commit": (run.git or {}).get("commit"),
            UNMEASURED: [] if run.path is None else unmeasured_of(run.path, sections),
        }
    ]


def _machine_section(runs: Sequence[RunRecord], sections: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The merged run's machine: every shard's CPU model, and what each shard was."""
    models = sorted({model for run in runs for model in cpu_models(run)})
    shards = [shard for run, found in zip(runs, sections, strict=True) for shard in _shards(run, found)]
    return {"cpu_model": "; ".join(models), "cpu_models": models, "shards": shards}


def unmeasured_tests(merged: RunRecord) -> list[dict[str, str]]:
    """The tests some shard was to measure and none did, each with its shard's outcome and reason."""
    measured = {result.nodeid.split("#", 1)[0] for result in merged.results}
    found: dict[str, dict[str, str]] = {}
    for shard in merged.machine.get("shards", []):
        for entry in shard.get(UNMEASURED, []) if isinstance(shard, dict) else []:
            if isinstance(entry, dict) and entry.get("nodeid") not in measured:
                found.setdefault(str(entry.get("nodeid")), entry)
    return list(found.values())


def run_unmeasured(run: RunRecord) -> list[dict[str, str]]:
    """The tests a run was to measure and did not, with why: a merged run's that no shard measured, or
    those its file lists (a session's JSON report); none for a run from neither."""
    if isinstance(run.machine.get("shards"), list):
        return unmeasured_tests(run)
    return unmeasured_of(run.path) if run.path is not None else []


def merge_runs(
    runs: Sequence[RunRecord],
    *,
    created: str,
    name: str | None = None,
    expect: int | None = None,
    sections: Sequence[Mapping[str, Any] | None] | None = None,
) -> tuple[RunRecord, MergeSummary]:
    """One run with every test of ``runs``; raises :class:`HistoryError` (one line) when they cannot be merged.

    ``sections``: per run, its file's top-level sections as read (``history.reader.Shard.sections``), or
    ``None`` to read them from its file."""
    if not runs:
        raise HistoryError("no runs to merge")
    if expect is not None and len(runs) != expect:
        raise HistoryError(
            f"expected {expect} shards, got {len(runs)} ({', '.join(_where(run) for run in runs)}): "
            "a shard is missing or extra"
        )
    check_versions(runs)
    check_cycle_models(runs)
    placed: dict[str, list[tuple[RunRecord, TestResult]]] = {}
    for run in runs:
        for result in run.results:
            placed.setdefault(result.nodeid, []).append((run, result))
    results = []
    for nodeid, where in placed.items():
        if len(where) > 1:
            _check_same_settings(nodeid, where)
        results.append(where[0][1] if len(where) == 1 else _combined(nodeid, where))
    first = runs[0]
    merged = RunRecord(
        results=tuple(results),
        environment=first.environment,
        created=created,
        name=name,
        git=first.git,
        machine=_machine_section(runs, sections if sections is not None else [None] * len(runs)),
        settings=first.settings,
    )
    summary = MergeSummary(
        shards=len(merged.machine["shards"]),
        tests=len(results),
        combined=tuple(nodeid for nodeid, where in placed.items() if len(where) > 1),
        machines=tuple(merged.machine["cpu_models"]),
    )
    return merged, summary


def with_rows(run: RunRecord, carried: Carried, nodeids: set[str] | None = None) -> RunRecord:
    """``run`` with the carried rows (of ``nodeids``, or all) read into their records (checked as text already)."""
    wanted = carried.keys() if nodeids is None else nodeids & carried.keys()
    if not wanted:
        return run
    read = read_rows(4)
    results = tuple(
        dataclasses.replace(result, samples=tuple(read(json.loads(carried[result.nodeid]))))  # type: ignore[arg-type]
        if result.nodeid in wanted
        else result
        for result in run.results
    )
    return dataclasses.replace(run, results=results)


def merge_carried(
    loaded: Sequence[tuple[RunRecord, Carried]],
    *,
    created: str,
    name: str | None = None,
    expect: int | None = None,
    sections: Sequence[Mapping[str, Any] | None] | None = None,
) -> tuple[RunRecord, MergeSummary, Carried]:
    """``merge_runs`` of runs read by ``history.reader.load_run_carrying_rows``: the rows of tests measured
    in several shards are read, to combine them; those of tests measured once stay text, for
    :func:`document_text` to write as they were read."""
    counts: dict[str, int] = {}
    for run, _ in loaded:
        for result in run.results:
            counts[result.nodeid] = counts.get(result.nodeid, 0) + 1
    several = {nodeid for nodeid, count in counts.items() if count > 1}
    runs = [with_rows(run, carried, several) for run, carried in loaded]
    merged, summary = merge_runs(runs, created=created, name=name, expect=expect, sections=sections)
    rows = {nodeid: text for _, carried in loaded for nodeid, text in carried.items() if nodeid not in several}
    return merged, summary, rows


def same_version_documents(loaded: Sequence[tuple[RunRecord, Documents]], combined: Sequence[str]) -> Documents:
    """The documents of tests measured once, from shards of this plugin version: those are what it writes
    of their records, so a merge can write them as read (a shard of another version is written anew)."""
    ours = plugin_version_here()
    several = set(combined)
    return {
        nodeid: document
        for run, documents in loaded
        if ours is not None and plugin_version(run) == ours
        for nodeid, document in documents.items()
        if nodeid not in several
    }


def plugin_version_here() -> str | None:
    """The version of the pytest-otel-overhead that runs, as a session records it in its run."""
    try:
        return metadata.version(_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def test_chunks(run: RunRecord, carried: Carried, documents: Documents | None = None) -> list[tuple[str, ...]]:
    """The tests of ``run`` as compact JSON, each in pieces, for :func:`run_chunks`: each test's carried
    rows as read, and each test of ``documents`` (``same_version_documents``) as read rather than rebuilt from
    its record. Made once, they serve both the saved run and the JSON report: the rows are pieces of their
    own, not copies."""
    empty = f'"{ROWS_KEY}":[]'
    documents = documents or {}
    tests: list[tuple[str, ...]] = []
    for result in run.results:
        text = documents.get(result.nodeid)
        if text is None:
            text = encode_test(result.as_dict())
        rows = carried.get(result.nodeid)
        if rows is not None and text.count(empty) == 1:
            # The rows as a piece of their own: joined into the test's text, they were copied twice more.
            before_rows, _, after_rows = text.partition(empty)
            tests.append((before_rows + empty[:-2], rows, after_rows))
        else:
            tests.append((text,))
    return tests


def run_chunks(
    run: RunRecord,
    carried: Carried,
    sections: Mapping[str, Any] | None = None,
    documents: Documents | None = None,
    tests: Sequence[Sequence[str]] | None = None,
    *,
    report: bool = False,
) -> Iterator[str]:
    """``run.to_document()`` (and ``sections``) in pieces, as ``history.document.document_chunks`` lays it out
    (compact, or as a JSON report with ``report``); its tests as :func:`test_chunks` makes them (``tests``, when
    made already).

    A test at a time: the rows of a merged run are most of its size, and reading them into numbers
    and writing them back took most of a merge's time; written in pieces, the document is never
    whole in memory.
    """
    head = {**dataclasses.replace(run, results=()).to_document(), **(sections or {})}
    tests = test_chunks(run, carried, documents) if tests is None else tests
    return document_chunks(head, tests, report=report)
