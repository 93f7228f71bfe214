"""What the plugin declares to pytest in every run: its options, ini keys and marker, and what a run gave them.

Declaring them needs only pytest and the settings' names; what the options do is read by
:mod:`pytest_otel_overhead.settings.options` (the session's options) and :mod:`pytest_otel_overhead.settings`
(the measurement settings), and acted on by the measuring machinery, which is imported only when
a session measures. pytest loads this module in every run, so it imports only the settings' names
and help texts as literals (``settings/declared``, generated from the key registry): the registry
and the layers that parse what a run gave load only when it gave something.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from pytest_otel_overhead.settings.declared import KEY_HELP

if TYPE_CHECKING:  # pytest's types only: the run store reads the default folder here without importing pytest
    import pytest

__all__ = [
    "ADVICE_GROUP",
    "DEFAULT_STORAGE",
    "DEFAULT_TUNE_TIME_S",
    "GROUP",
    "GROUPS",
    "MARKER",
    "SAVED_PROCESSES",
    "SETTINGS_GROUP",
    "add_options",
    "cli_settings",
    "given_flags",
    "gives_anything",
    "ini_settings",
    "items_to_measure",
    "option_dest",
    "option_flag",
    "to_measure",
]

GROUP = "otel-overhead"
SETTINGS_GROUP = "otel-overhead-settings"
ADVICE_GROUP = "otel-overhead-advice"
GROUPS = (GROUP, SETTINGS_GROUP, ADVICE_GROUP)
"""The ``--help`` groups, in the order they show."""
DEFAULT_STORAGE = ".otel-overhead"
"""Directory of saved runs, in the root directory unless ``--otel-overhead-storage`` says otherwise."""
DEFAULT_TUNE_TIME_S = 120.0
"""The tuner's time per test unless ``--otel-overhead-tune-time`` says otherwise."""
SAVED_PROCESSES = 3
"""With ``processes`` auto, a run that is saved measures each test over at least this many processes unless
``--otel-overhead-min-processes`` says otherwise. A saved run is the baseline of later comparisons, and a baseline
of one process carries its own offset, which no process of the later run can narrow: in the regression campaign
of docs/accuracy.md, five of the seven real changes of +5 points that a comparison left undecided had a baseline
decided in its first process."""

MARKER = "otel_overhead"
"""The marker of a test to measure; the fixture that measures a callable has the same name."""

_INTERNAL = ("otel_overhead_child",)


def option_dest(name: str) -> str:
    """Where pytest keeps option ``name`` (a setting's key or a session option): its dest and its ini key,
    ``batch_size`` → ``otel_overhead_batch_size``."""
    return "otel_overhead_" + name


def option_flag(name: str) -> str:
    """The command-line flag of option ``name``: ``batch_size`` → ``--otel-overhead-batch-size``."""
    return "--otel-overhead-" + name.replace("_", "-")


def to_measure(item: pytest.Item) -> bool:
    """Whether a measuring session measures ``item``: a marker on it (or above it), or the fixture."""
    return item.get_closest_marker(MARKER) is not None or _uses_fixture(item)


def items_to_measure(items: Iterable[pytest.Item]) -> set[pytest.Item]:
    """The ``items`` that :func:`to_measure` chooses, each node above them looked at once.

    pytest calls this for every collected test of every run, so each test costs a lookup or two.
    """
    above: dict[pytest.Collector | None, bool] = {None: False}  # a node: whether it or one above it is marked
    chosen = set()
    for item in items:
        parent = item.parent
        marked = above.get(parent)
        if marked is None:
            marked = _marked_from(parent, above)
        if marked or (item.own_markers and _has_marker(item)) or _uses_fixture(item):
            chosen.add(item)
    return chosen


def _marked_from(node: pytest.Collector | None, above: dict[pytest.Collector | None, bool]) -> bool:
    """Whether ``node`` or a node above it has the marker; ``above`` keeps the answer for each node on the way."""
    path = []
    current: pytest.Collector | None = node
    while current is not None and current not in above:
        path.append(current)
        current = current.parent
    marked = above.get(current, False)
    for step in reversed(path):
        marked = marked or _has_marker(step)
        above[step] = marked
    return marked


def _has_marker(node: pytest.Item | pytest.Collector) -> bool:
    return any(mark.name == MARKER for mark in node.own_markers)


def _uses_fixture(item: pytest.Item) -> bool:
    return MARKER in getattr(item, "fixturenames", ())


def add_options(parser: pytest.Parser) -> None:
    """Declare every option and ini key, in the order ``--help`` shows them.

    First what a user needs first (enable, budget, save and compare, reports), then the measuring
    settings, then the advice modes (sweep, tune, explain), each group under its own heading.
    """
    group = parser.getgroup(GROUP, "OpenTelemetry overhead (pytest-otel-overhead)")
    group.addoption(
        "--otel-overhead",
        action="store_true",
        dest="otel_overhead",
        default=None,
        help="measure tests marked otel_overhead (and otel_overhead fixture calls) against an "
        "uninstrumented baseline and fail those over budget",
    )
    parser.addini("otel_overhead", "enable measuring, as --otel-overhead does", type="bool", default=False)
    _add_key(parser, group, "budget")
    _add_tracking_options(parser, group)
    _add_output_options(parser, group)
    # Internal: set on the pytest processes that instructions mode starts under valgrind.
    _add(parser, group, "child", argparse.SUPPRESS)
    settings = parser.getgroup(SETTINGS_GROUP, "OpenTelemetry overhead: measuring settings (also marker arguments)")
    for name in KEY_HELP:
        if name != "budget":
            _add_key(parser, settings, name)
    _add_advice_options(parser, parser.getgroup(ADVICE_GROUP, "OpenTelemetry overhead: advice (sweep, tune, explain)"))


def _add(
    parser: pytest.Parser,
    group: pytest.OptionGroup,
    name: str,
    help: str,
    *,
    ini: str | None = None,
    ini_type: Literal["bool", "linelist"] | None = None,
    **attrs: Any,
) -> None:
    """Option ``name`` as a flag, defaulting to None (so that a value other than None was given), and
    as an ini key when ``ini`` says what that does; a switch's ini key defaults to false."""
    # The dest is given: without it pytest compares the option's dest with every option declared so far.
    group.addoption(option_flag(name), dest=option_dest(name), default=None, help=help, **attrs)
    if ini is not None:
        if ini_type == "bool":
            parser.addini(option_dest(name), ini, type="bool", default=False)
        else:
            parser.addini(option_dest(name), ini, type=ini_type)


def _add_switch(parser: pytest.Parser, group: pytest.OptionGroup, name: str, help: str, ini: str) -> None:
    """A flag that takes no value, and its ini twin, true or false."""
    _add(parser, group, name, help, ini=ini, ini_type="bool", action="store_true")


def _add_key(parser: pytest.Parser, group: pytest.OptionGroup, name: str) -> None:
    help = KEY_HELP[name]
    # argparse %-formats help text: "5%" would break --help
    _add(parser, group, name, help.replace("%", "%%"), metavar="VALUE")
    parser.addini(option_dest(name), help + f"; as {option_flag(name)}")


def given_flags(config: pytest.Config) -> list[str]:
    """The plugin's flags given on the command line (or in ``PYTEST_ADDOPTS``), ``--otel-overhead`` itself aside.

    Every one of them defaults to None, so a value other than None was given.
    """
    dests = sorted(name for name in vars(config.option) if name.startswith("otel_overhead_") and name not in _INTERNAL)
    return ["--" + name.replace("_", "-") for name in dests if getattr(config.option, name) is not None]


def gives_anything(config: pytest.Config) -> bool:
    """Whether the run gives the plugin anything: a flag of its own (``--otel-overhead`` included) or an ini key.

    A run that gives nothing neither measures nor has a value to check, so it need not read the
    session's options (:mod:`pytest_otel_overhead.settings.options`, not loaded for it). Every flag
    defaults to None; an ini key is unset at its default (empty, or false for a switch), and a flag
    without an ini twin (``--otel-overhead-save``) has no ini key to read.
    """
    dests = [name for name in vars(config.option) if name.startswith("otel_overhead")]
    if any(getattr(config.option, name) is not None for name in dests):
        return True
    for name in dests:
        try:
            value = config.getini(name)
        except ValueError:  # declared as a flag only
            continue
        if value not in (None, "", [], False):
            return True
    return False


def cli_settings(config: pytest.Config) -> dict[str, object]:
    """The settings the command line gives, by key, as written."""
    raw = {key: config.getoption(option_dest(key)) for key in KEY_HELP}
    return {key: value for key, value in raw.items() if value is not None}


def ini_settings(config: pytest.Config) -> dict[str, object]:
    """The settings the ini file gives, by key, as written; a key left empty gives nothing."""
    raw = {key: config.getini(option_dest(key)) for key in KEY_HELP}
    return {key: value for key, value in raw.items() if value not in (None, "")}


def _add_advice_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    _add(
        parser,
        group,
        "sweep",
        "measure each marked test at every combination of these settings, e.g. "
        "'sample_rate=0.01,0.1,1' 'batch_size=128,512' (implies --otel-overhead; tests are not gated)",
        ini="settings to sweep, one KEY=V1,V2 per line",
        ini_type="linelist",
        nargs="+",
        action="extend",
        metavar="KEY=V1,V2",
    )
    _add(
        parser,
        group,
        "sweep_chart",
        "write the sweeps' charts and tables to PATH as a self-contained HTML page",
        metavar="PATH",
    )
    _add_switch(
        parser,
        group,
        "tune",
        "find per test the highest sampling rate within budget and print it as OTEL_* variables "
        "(implies --otel-overhead; tests are not gated)",
        "run the auto-tuner, as --otel-overhead-tune does",
    )
    _add(
        parser,
        group,
        "tune_time",
        f"cap on the tuner's time per test, e.g. 90 or 3min (default {DEFAULT_TUNE_TIME_S:g} s)",
        ini="cap on the tuner's time per test, as --otel-overhead-tune-time",
        metavar="SECONDS",
    )
    _add_switch(
        parser,
        group,
        "explain",
        "break each measured test's overhead down by pipeline layer (implies --otel-overhead)",
        "break overhead down by layer, as --otel-overhead-explain",
    )


def _add_tracking_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    """Saving a run and comparing with a saved one."""
    _add(
        parser,
        group,
        "save",
        "save this run (with raw samples) to the run store, named NAME (default: the git commit)",
        nargs="?",
        const="",
        metavar="NAME",
    )
    _add(
        parser,
        group,
        "compare",
        "compare each test's overhead with a saved run: latest (default), latest~N, a run name or a file",
        ini="saved run to compare with, as --otel-overhead-compare does",
        nargs="?",
        const="latest",
        metavar="NAME|latest",
    )
    _add(
        parser,
        group,
        "compare_fail",
        "fail a test whose overhead grew beyond EXPR since the compared run, decided on an interval: "
        "cpu:+1pp (percentage points) or cpu:+20%% (relatively); comma-separated or repeated; "
        "compares with the latest saved run unless --otel-overhead-compare names another",
        ini="regression criteria, as --otel-overhead-compare-fail takes them",
        action="append",
        metavar="EXPR",
    )
    _add(
        parser,
        group,
        "min_processes",
        "measure each test over at least N fresh processes (with processes auto; with processes=M, up to M "
        f"however soon decided), for a run that later runs are compared with (default: {SAVED_PROCESSES} in a "
        "run that is saved, else 1)",
        ini="at least this many processes per test, as --otel-overhead-min-processes",
        metavar="N",
    )


def _add_output_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    """The reports a session writes, and where saved runs are kept."""
    _add(
        parser,
        group,
        "json",
        "write results as JSON to PATH",
        ini="write results as JSON to this path, as --otel-overhead-json does",
        metavar="PATH",
    )
    _add(
        parser,
        group,
        "markdown",
        "write a Markdown summary to PATH",
        ini="write a Markdown summary to this path, as --otel-overhead-markdown does",
        metavar="PATH",
    )
    _add(
        parser,
        group,
        "html",
        "write a self-contained HTML report to PATH (charts with pytest-otel-overhead[html])",
        ini="write an HTML report to this path, as --otel-overhead-html does",
        metavar="PATH",
    )
    _add(
        parser,
        group,
        "storage",
        f"directory of saved runs (default: {DEFAULT_STORAGE} in the root directory)",
        ini=f"directory of saved runs (default {DEFAULT_STORAGE}), relative to the ini file",
        metavar="PATH",
    )
    _add_switch(
        parser,
        group,
        "autosave",
        "save every run to the run store, named after the git commit",
        "save every run, as --otel-overhead-autosave does",
    )
