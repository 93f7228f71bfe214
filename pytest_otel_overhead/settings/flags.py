"""The plugin's command-line options and ini keys, declared in every pytest run with light imports.

Declaring them needs only pytest and the settings' names; what the options do is read by
:mod:`pytest_otel_overhead.settings.options` (the session's options) and :mod:`pytest_otel_overhead.settings`
(the measurement settings), and acted on by the measuring machinery, which is imported only when
a session measures.
"""

from __future__ import annotations

import argparse

import pytest

from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.sources import option_name

__all__ = [
    "ADVICE_GROUP",
    "DEFAULT_STORAGE",
    "DEFAULT_TUNE_TIME_S",
    "GROUP",
    "GROUPS",
    "SETTINGS_GROUP",
    "add_options",
    "given_flags",
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

_INTERNAL = ("otel_overhead_child",)


def add_options(parser: pytest.Parser) -> None:
    """Declare every option and ini key, in the order ``--help`` shows them.

    First what a user needs first (enable, budget, save and compare, reports), then the measuring
    settings, then the advice modes (sweep, tune, explain), each group under its own heading.
    """
    group = parser.getgroup(GROUP, "OpenTelemetry overhead (pytest-otel-overhead)")
    group.addoption(
        "--otel-overhead",
        action="store_true",
        default=None,
        help="measure tests marked otel_overhead (and otel_overhead fixture calls) against an "
        "uninstrumented baseline and fail those over budget",
    )
    parser.addini("otel_overhead", "enable measuring, as --otel-overhead does", type="bool", default=False)
    _add_key(parser, group, "budget")
    _add_tracking_options(parser, group)
    # Internal: set on the pytest processes that instructions mode starts under valgrind.
    group.addoption("--otel-overhead-child", default=None, help=argparse.SUPPRESS)
    settings = parser.getgroup(SETTINGS_GROUP, "OpenTelemetry overhead: measuring settings (also marker arguments)")
    for name in KEYS:
        if name != "budget":
            _add_key(parser, settings, name)
    _add_advice_options(parser, parser.getgroup(ADVICE_GROUP, "OpenTelemetry overhead: advice (sweep, tune, explain)"))


def _add_key(parser: pytest.Parser, group: pytest.OptionGroup, name: str) -> None:
    key = KEYS[name]
    group.addoption(
        option_name(key.name),
        dest="otel_overhead_" + key.name,
        default=None,
        metavar="VALUE",
        help=key.help.replace("%", "%%"),  # argparse %-formats help text: "5%" would break --help
    )
    parser.addini("otel_overhead_" + key.name, key.help + f"; as {option_name(key.name)}")


def given_flags(config: pytest.Config) -> list[str]:
    """The plugin's flags given on the command line (or in ``PYTEST_ADDOPTS``), ``--otel-overhead`` itself aside.

    Every one of them defaults to None, so a value other than None was given.
    """
    dests = sorted(name for name in vars(config.option) if name.startswith("otel_overhead_") and name not in _INTERNAL)
    return ["--" + name.replace("_", "-") for name in dests if getattr(config.option, name) is not None]


def _add_advice_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--otel-overhead-sweep",
        nargs="+",
        action="extend",
        default=None,
        metavar="KEY=V1,V2",
        help="measure each marked test at every combination of these settings, e.g. "
        "'sample_rate=0.01,0.1,1' 'batch_size=128,512' (implies --otel-overhead; tests are not gated)",
    )
    parser.addini("otel_overhead_sweep", "settings to sweep, one KEY=V1,V2 per line", type="linelist")
    group.addoption(
        "--otel-overhead-sweep-chart",
        default=None,
        metavar="PATH",
        help="write the sweeps' charts and tables to PATH as a self-contained HTML page",
    )
    group.addoption(
        "--otel-overhead-tune",
        action="store_true",
        default=None,
        help="find per test the highest sampling rate within budget and print it as OTEL_* variables "
        "(implies --otel-overhead; tests are not gated)",
    )
    parser.addini("otel_overhead_tune", "run the auto-tuner, as --otel-overhead-tune does", type="bool", default=False)
    group.addoption(
        "--otel-overhead-tune-time",
        default=None,
        metavar="SECONDS",
        help=f"cap on the tuner's time per test, e.g. 90 or 3min (default {DEFAULT_TUNE_TIME_S:g} s)",
    )
    parser.addini("otel_overhead_tune_time", "cap on the tuner's time per test, as --otel-overhead-tune-time")
    group.addoption(
        "--otel-overhead-explain",
        action="store_true",
        default=None,
        help="break each measured test's overhead down by pipeline layer (implies --otel-overhead)",
    )
    parser.addini(
        "otel_overhead_explain", "break overhead down by layer, as --otel-overhead-explain", type="bool", default=False
    )


def _add_tracking_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--otel-overhead-save",
        nargs="?",
        const="",
        default=None,
        metavar="NAME",
        help="save this run (with raw samples) to the run store, named NAME (default: the git commit)",
    )
    group.addoption(
        "--otel-overhead-compare",
        nargs="?",
        const="latest",
        default=None,
        metavar="NAME|latest",
        help="compare each test's overhead with a saved run: latest (default), latest~N, a run name or a file",
    )
    parser.addini("otel_overhead_compare", "saved run to compare with, as --otel-overhead-compare does")
    group.addoption(
        "--otel-overhead-compare-fail",
        action="append",
        default=None,
        metavar="EXPR",
        help="fail a test whose overhead grew beyond EXPR since the compared run, decided on an interval: "
        "cpu:+1pp (percentage points) or cpu:+20%% (relatively); comma-separated or repeated; "
        "compares with the latest saved run unless --otel-overhead-compare names another",
    )
    parser.addini("otel_overhead_compare_fail", "regression criteria, as --otel-overhead-compare-fail takes them")
    group.addoption("--otel-overhead-json", metavar="PATH", default=None, help="write results as JSON to PATH")
    parser.addini("otel_overhead_json", "write results as JSON to this path, as --otel-overhead-json does")
    group.addoption("--otel-overhead-markdown", metavar="PATH", default=None, help="write a Markdown summary to PATH")
    parser.addini("otel_overhead_markdown", "write a Markdown summary to this path, as --otel-overhead-markdown does")
    group.addoption(
        "--otel-overhead-html",
        metavar="PATH",
        default=None,
        help="write a self-contained HTML report to PATH (charts with pytest-otel-overhead[html])",
    )
    parser.addini("otel_overhead_html", "write an HTML report to this path, as --otel-overhead-html does")
    group.addoption(
        "--otel-overhead-storage",
        metavar="PATH",
        default=None,
        help=f"directory of saved runs (default: {DEFAULT_STORAGE} in the root directory)",
    )
    parser.addini(
        "otel_overhead_storage", f"directory of saved runs (default {DEFAULT_STORAGE}), relative to the ini file"
    )
    group.addoption(
        "--otel-overhead-autosave",
        action="store_true",
        default=None,
        help="save every run to the run store, named after the git commit",
    )
    parser.addini(
        "otel_overhead_autosave", "save every run, as --otel-overhead-autosave does", type="bool", default=False
    )
