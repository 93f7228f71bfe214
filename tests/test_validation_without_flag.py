"""Mistakes are caught in every run, not only in the run that measures.

Marker arguments and the settings' flags and ini keys are parsed with or without ``--otel-overhead``,
with the same one-line errors; the environment is read only when measuring, since its OTEL_*
variables may be meant for the code under test; and flags that do nothing without measuring say so.
Runs are pytest subprocesses, so that no measuring session touches this process.
"""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.settings.flags import given_flags
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.pipeline import check_exporter, check_instrumentors, parse_exporter
from pytest_otel_overhead.settings.sources import option_name
from pytest_otel_overhead.units import SettingsError

MARKERS = """
import pytest


@pytest.mark.otel_overhead(bugdet="5%")
def test_unknown():
    pass


@pytest.mark.otel_overhead(budget="five")
def test_five():
    pass


@pytest.mark.otel_overhead(sample_rate=-1)
def test_rate():
    pass


@pytest.mark.otel_overhead("5%")
def test_positional():
    pass


@pytest.mark.otel_overhead(queue_size=0)
def test_fixture_with_bad_marker(otel_overhead):
    pass


@pytest.mark.otel_overhead(batch_size=4096)
def test_combination():
    pass


@pytest.mark.otel_overhead(instrument="sqlite3")
def test_instrument():
    pass


@pytest.mark.otel_overhead(budget="5%", sampler="parentbased_traceidratio", sample_rate=0.5)
def test_good():
    pass
"""

MARKER_ERRORS = {
    "test_unknown": "marker on test_markers.py::test_unknown: unknown argument 'bugdet'; did you mean 'budget'?",
    "test_five": "marker on test_markers.py::test_five: 'five' is not a budget",
    "test_rate": "marker on test_markers.py::test_rate: -1 is not a sampling rate",
    "test_positional": "marker on test_markers.py::test_positional: takes keyword arguments only",
    "test_fixture_with_bad_marker": "marker on test_markers.py::test_fixture_with_bad_marker: 0 is not a whole "
    "number of at least 1 (argument queue_size)",
    "test_instrument": "marker on test_markers.py::test_instrument: instrumentor 'sqlite3' is not written as "
    "module:name (argument instrument)",
}


def setup_errors(output: str) -> dict[str, str]:
    """Each test's setup error line, ``otel-overhead: ...``, by test name."""
    sections = re.findall(r"_+ ERROR at setup of (\w+) _+\n(.*?)(?=\n_{3,}|\n=+ )", output, re.DOTALL)
    return {name: next(ln for ln in body.splitlines() if ln.startswith("otel-overhead: ")) for name, body in sections}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def test_a_bad_marker_errors_its_test_without_the_flag_as_with_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_markers=MARKERS)
    without = run(pytester)
    # Each argument is checked alone; how the arguments combine with the other layers (batch_size
    # against a queue_size that may come from the environment) is checked by the run that measures.
    without.assert_outcomes(errors=6, passed=2)
    errors = setup_errors(without.stdout.str())
    assert set(errors) == set(MARKER_ERRORS)
    for name, message in MARKER_ERRORS.items():
        assert errors[name].startswith(f"otel-overhead: {message}"), errors[name]
    assert "Traceback" not in without.stdout.str()
    assert "pytest_otel_overhead" not in without.stdout.str()

    with_flag = run(pytester, "--otel-overhead", "-k", " or ".join(MARKER_ERRORS))
    with_flag.assert_outcomes(errors=6)
    assert setup_errors(with_flag.stdout.str()) == errors


USAGE_ERRORS = [
    pytest.param(["--otel-overhead-budget=abc"], None, "--otel-overhead-budget: 'abc' is not a budget", id="flag"),
    pytest.param(
        ["--otel-overhead-sampler=sometimes"], None, "--otel-overhead-sampler: 'sometimes' is not one of", id="choice"
    ),
    pytest.param(
        [],
        "otel_overhead_batch_size = lots",
        "ini otel_overhead_batch_size in tox.ini: 'lots' is not a whole number",
        id="ini",
    ),
]


@pytest.mark.parametrize(("args", "ini", "message"), USAGE_ERRORS)
def test_a_bad_setting_value_is_a_usage_error_without_the_flag_as_with_it(
    pytester: pytest.Pytester, args: list[str], ini: str | None, message: str
) -> None:
    if ini is not None:
        pytester.makefile(".ini", tox=f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    without = run(pytester, *args)
    with_flag = run(pytester, "--otel-overhead", *args)
    for result in (without, with_flag):
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        errors = [line for line in result.stderr.lines if line.strip()]
        assert len(errors) == 1, result.stderr.str()
        assert errors[0].startswith(f"ERROR: otel-overhead: {message}"), errors[0]
    assert without.stderr.lines == with_flag.stderr.lines


def test_the_environment_is_read_only_when_measuring(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "whenever")  # a value meant for the application, say
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.otel_overhead(budget="5%")
        def test_marked():
            pass
        """
    )
    run(pytester).assert_outcomes(passed=1, warnings=0)
    measuring = run(pytester, "--otel-overhead")
    assert measuring.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: otel-overhead: $OTEL_BSP_SCHEDULE_DELAY: 'whenever' is not a duration" in measuring.stderr.str()


def test_the_sdk_switched_off_in_the_environment_matters_only_when_measuring(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    pytester.makepyfile("def test_nothing(): pass")
    run(pytester).assert_outcomes(passed=1, warnings=0)
    assert run(pytester, "--otel-overhead").ret == pytest.ExitCode.USAGE_ERROR


def test_flags_without_measuring_draw_one_warning_naming_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester, "--otel-overhead-budget=10%", "--otel-overhead-save", "--otel-overhead-json", "out.json")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*PytestConfigWarning: otel-overhead: --otel-overhead-budget, --otel-overhead-json, "
            "--otel-overhead-save have no effect without --otel-overhead"
        ]
    )
    assert not (pytester.path / "out.json").exists()


def test_a_single_flag_without_measuring_is_named_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester, "--otel-overhead-markdown=summary.md")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*otel-overhead: --otel-overhead-markdown has no effect without --otel-overhead"])


@pytest.mark.parametrize(
    ("args", "ini"),
    [
        pytest.param(["--otel-overhead", "--otel-overhead-budget=10%"], "", id="with-the-flag"),
        pytest.param(["--otel-overhead-budget=10%"], "otel_overhead = true", id="with-the-ini-switch"),
        pytest.param([], "otel_overhead_budget = 10%\notel_overhead_json = out.json", id="ini-values-alone"),
    ],
)
def test_no_warning_when_measuring_or_when_only_the_ini_file_sets_values(
    pytester: pytest.Pytester, args: list[str], ini: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = run(pytester, *args)
    result.assert_outcomes(passed=1, warnings=0)
    assert "no effect without" not in result.stdout.str()


def test_given_flags_are_those_on_the_command_line(pytester: pytest.Pytester) -> None:
    assert given_flags(pytester.parseconfig()) == []
    assert given_flags(pytester.parseconfig("--otel-overhead")) == []
    config = pytester.parseconfig(
        "--otel-overhead-tune",
        "--otel-overhead-child=spec.json",
        "--otel-overhead-batch-size=64",
        "--otel-overhead-save",
    )
    assert given_flags(config) == ["--otel-overhead-batch-size", "--otel-overhead-save", "--otel-overhead-tune"]


# --- checking without imports ---------------------------------------------------------------------

VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.floats(),
    st.from_regex(r"[a-z_]{1,8}:[A-Za-z_]{1,8}", fullmatch=True),  # module:name, mostly not importable
)


@given(key=st.sampled_from(sorted(KEYS)), value=VALUES)
def test_the_check_without_imports_agrees_with_the_parse(key: str, value: object) -> None:
    """What the parse accepts the check accepts alike; what the check refuses the parse refuses alike."""
    try:
        parsed: object = Layer.parse({key: value}, option_name).values[key][0]
    except SettingsError as error:
        parsed = error
    try:
        checked: object = Layer.parse({key: value}, option_name, imports=False).values[key][0]
    except SettingsError as error:
        checked = error
    if isinstance(checked, SettingsError):
        assert isinstance(parsed, SettingsError) and str(parsed) == str(checked)
    elif not isinstance(parsed, SettingsError):
        assert parsed == checked
    else:  # only a name that cannot be imported passes the check and not the parse
        assert KEYS[key].check is not None, key


def test_an_exporter_factory_is_checked_as_written_and_imported_only_to_measure() -> None:
    assert "exporter_nowhere" not in sys.modules
    assert check_exporter("exporter_nowhere:make", "--otel-overhead-exporter") == "exporter_nowhere:make"
    assert "exporter_nowhere" not in sys.modules
    with pytest.raises(SettingsError, match="cannot import 'exporter_nowhere'"):
        parse_exporter("exporter_nowhere:make", "--otel-overhead-exporter")
    with pytest.raises(SettingsError, match=r"^--otel-overhead-exporter: exporter factory 'a:b c' is not written"):
        check_exporter("a:b c", "--otel-overhead-exporter")


def test_instrumentors_are_checked_as_written() -> None:
    names = "nowhere.sqlite3:SQLite3Instrumentor, nowhere.redis:RedisInstrumentor, nowhere.sqlite3:SQLite3Instrumentor"
    assert check_instrumentors(names, "marker") == (
        "nowhere.sqlite3:SQLite3Instrumentor",
        "nowhere.redis:RedisInstrumentor",
    )
    assert "nowhere" not in sys.modules
    with pytest.raises(SettingsError, match=r"^marker: instrumentor 'redis' is not written as module:name$"):
        check_instrumentors(["nowhere.sqlite3:SQLite3Instrumentor", "redis"], "marker")
    with pytest.raises(SettingsError, match=r"^marker: 3 is not a list of instrumentors"):
        check_instrumentors(3, "marker")


# --- marked tests that ran without measuring are named at the end ------------------------------------

UNMEASURED = """
import pytest


@pytest.mark.otel_overhead(budget="5%")
def test_marked():
    pass


@pytest.mark.otel_overhead
@pytest.mark.parametrize("n", [1, 2])
def test_marked_twice(n):
    pass


def test_fixture(otel_overhead):
    assert otel_overhead(len, "abc") == 3


def test_plain():
    pass
"""

UNMEASURED_LINE = (
    "otel-overhead: 4 tests with an otel_overhead marker or fixture ran without measuring: "
    "add --otel-overhead to measure them"
)


def test_marked_tests_run_without_the_flag_are_counted_once_at_the_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unmeasured=UNMEASURED)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == 0
    assert result.stdout.lines.count(UNMEASURED_LINE) == 1
    assert result.stdout.lines.index(UNMEASURED_LINE) < len(result.stdout.lines) - 1  # before the outcome line


def test_the_line_is_left_out_under_qq_and_when_nothing_marked_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unmeasured=UNMEASURED)
    assert "otel-overhead:" not in pytester.runpytest_subprocess("-qq", "-p", "no:randomly").stdout.str()
    assert "otel-overhead:" not in pytester.runpytest_subprocess("-k", "plain", "-p", "no:randomly").stdout.str()


def test_help_shows_what_a_user_needs_first(pytester: pytest.Pytester) -> None:
    text = pytester.runpytest_subprocess("--help").stdout.str()
    flags = re.findall(r"^  (--otel-overhead[\w-]*)", text, re.MULTILINE)
    first = ["--otel-overhead", "--otel-overhead-budget", "--otel-overhead-save", "--otel-overhead-compare"]
    assert flags[: len(first)] == first
    reports = {"--otel-overhead-json", "--otel-overhead-markdown", "--otel-overhead-html"}
    later = {"--otel-overhead-sweep", "--otel-overhead-tune", "--otel-overhead-explain", "--otel-overhead-max-time"}
    assert max(flags.index(flag) for flag in reports) < min(flags.index(flag) for flag in later)
    assert text.index("OpenTelemetry overhead: measuring settings") < text.index("--otel-overhead-max-time")
    assert text.index("OpenTelemetry overhead: advice") < text.index("--otel-overhead-sweep")
