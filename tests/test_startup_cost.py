"""Installed but off costs next to nothing: a run without measuring loads none of the measuring machinery.

pytest imports the entry point in every run of every project that has the package installed. These
tests check what ends up in ``sys.modules`` (fresh interpreters and pytest subprocesses), not how
long anything takes: ``benchmarks/startup.py`` measures the time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_otel_overhead import samplers
from pytest_otel_overhead.settings import sampling
from pytest_otel_overhead.settings.flags import gives_anything, items_to_measure, to_measure

# Everything a session without measuring may load from the package: the options, their defaults and the
# light parsers (in units). The records and the other parsers load only when a value needs them.
LIGHT = {
    "pytest_otel_overhead",
    "pytest_otel_overhead.settings.declared",
    "pytest_otel_overhead.settings.defaults",
    "pytest_otel_overhead.settings.flags",
    "pytest_otel_overhead.formatting",
    "pytest_otel_overhead.settings.keys",
    "pytest_otel_overhead.settings.origin",
    "pytest_otel_overhead.settings.options",
    "pytest_otel_overhead.plugin",
    "pytest_otel_overhead.plugins",
    "pytest_otel_overhead.plugins.marked",  # marked tests are checked as they start
    "pytest_otel_overhead.settings",
    "pytest_otel_overhead.settings.layers",
    "pytest_otel_overhead.settings.sources",
    "pytest_otel_overhead.units",
}
# What a session given nothing of the plugin's loads: the declarations as literals, not the key registry
# that they come from, nor the layers that parse values.
DECLARATIONS = {
    "pytest_otel_overhead",
    "pytest_otel_overhead.plugin",
    "pytest_otel_overhead.settings",
    "pytest_otel_overhead.settings.declared",
    "pytest_otel_overhead.settings.flags",
}
HEAVY = ("opentelemetry.sdk", "psutil", "pytest_otel_overhead.engine", "pytest_otel_overhead.otel")


def loaded_by(statement: str) -> list[str]:
    """The modules of this package, OpenTelemetry and psutil that a fresh interpreter has after ``statement``."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    prefixes = ("pytest_otel_overhead", "opentelemetry", "psutil")
    return [m for m in json.loads(out.stdout) if m.split(".")[0] in prefixes]


def is_heavy(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in HEAVY)


def test_the_entry_point_loads_neither_opentelemetry_nor_psutil() -> None:
    loaded = loaded_by("import pytest, pytest_otel_overhead.plugin")
    assert "pytest_otel_overhead.plugin" in loaded
    assert set(loaded) <= LIGHT, sorted(set(loaded) - LIGHT)


# What the entry point's import leaves for the first hook that needs it: the records, the key
# registry's parsers, the merge rules.
BUILT_ON_FIRST_USE = (
    "pytest_otel_overhead.settings.merge",
    "pytest_otel_overhead.settings.pipeline",
    "pytest_otel_overhead.settings.profiles",
    "pytest_otel_overhead.settings.records",
    "pytest_otel_overhead.settings.sampling",
)


def test_importing_the_entry_point_builds_no_settings_tables() -> None:
    loaded = loaded_by("import pytest, pytest_otel_overhead.plugin")
    assert set(loaded) == DECLARATIONS, loaded  # not even the key registry: its names and help are literals


def test_the_declared_names_and_help_are_the_key_registrys() -> None:
    from pytest_otel_overhead.settings import declared
    from pytest_otel_overhead.settings.keys import KEYS, declared_source

    assert list(declared.KEY_HELP) == list(KEYS)
    text = Path(declared.__file__).read_text(encoding="utf-8")
    assert text == declared_source(), "settings/declared.py is stale: python -m pytest_otel_overhead.settings.keys"


def test_building_the_key_registry_loads_neither_the_records_nor_their_parsers() -> None:
    loaded = loaded_by("from pytest_otel_overhead.settings.keys import KEYS\nassert 'batch_size' in KEYS")
    assert "pytest_otel_overhead.settings.defaults" in loaded  # the help texts' defaults
    assert not [m for m in loaded if m in BUILT_ON_FIRST_USE], loaded


def test_a_parser_loads_when_first_given_a_value() -> None:
    loaded = loaded_by(
        "from pytest_otel_overhead.settings.keys import KEYS\n"
        "assert KEYS['exporter'].parse(' Memory ', 'test') == 'memory'\n"
        "assert KEYS['max_traces_per_second'].parse('100', 'test') == 100.0"
    )
    assert {"pytest_otel_overhead.settings.pipeline", "pytest_otel_overhead.settings.sampling"} <= set(loaded)


def test_settings_parse_without_the_sdk() -> None:
    loaded = loaded_by(
        "from pytest_otel_overhead.settings.keys import KEYS\nfrom pytest_otel_overhead.settings.merge import resolve"
    )
    assert "pytest_otel_overhead.settings.sampling" in loaded
    assert not [m for m in loaded if m.startswith(("opentelemetry", "psutil"))], loaded


def test_the_samplers_module_keeps_the_settings_names() -> None:
    for name in sampling.__all__:
        assert getattr(samplers, name) is getattr(sampling, name), name
    assert set(sampling.__all__) - {"STRATEGY_SAMPLERS"} <= set(samplers.__all__)


# Written as the subprocess's conftest: what the session had loaded by its end.
RECORD_MODULES = """
import json
import sys


def pytest_sessionfinish(session):
    with open("modules.json", "w") as stream:
        json.dump(sorted(sys.modules), stream)
"""

TESTS = """
import pytest


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.otel_overhead(budget="1000%", batch_size=256)
def test_marked():
    spin(200)


@pytest.mark.otel_overhead(budget="1000%")
def test_fixture(otel_overhead):
    assert otel_overhead(spin, 3) == 3


def test_plain():
    assert spin(3) == 3
"""


def session_modules(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, list[str]]:
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile(test_cost=TESTS)
    pytester.makeini(
        "[pytest]\notel_overhead_queue_size = 4096\notel_overhead_profile = staging\n"
        "otel_overhead_no_telemetry = warn\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    modules = json.loads(Path(pytester.path, "modules.json").read_text(encoding="utf-8"))
    return result, modules


def test_a_session_without_the_flag_loads_no_measuring_machinery(pytester: pytest.Pytester) -> None:
    result, modules = session_modules(pytester)
    result.assert_outcomes(passed=3, warnings=0)
    assert "pytest_otel_overhead.plugin" in modules  # the plugin was loaded, and checked the settings
    assert not [m for m in modules if is_heavy(m)], [m for m in modules if is_heavy(m)]
    ours = {m for m in modules if m.split(".")[0] == "pytest_otel_overhead"}
    named = LIGHT | {"pytest_otel_overhead.settings.profiles"}  # the ini file names a profile
    assert ours <= named, sorted(ours - named)


def test_a_session_given_nothing_of_the_plugins_does_not_load_the_records(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.makeini("[pytest]\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=0)
    modules = json.loads(Path(pytester.path, "modules.json").read_text(encoding="utf-8"))
    assert "pytest_otel_overhead.plugin" in modules
    assert "pytest_otel_overhead.settings.records" not in modules
    assert not [m for m in modules if m in BUILT_ON_FIRST_USE], [m for m in modules if m in BUILT_ON_FIRST_USE]
    ours = {m for m in modules if m.split(".")[0] == "pytest_otel_overhead"}
    assert ours <= LIGHT, sorted(ours - LIGHT)


def test_a_session_with_the_flag_still_measures(pytester: pytest.Pytester) -> None:
    result, modules = session_modules(
        pytester, "--otel-overhead", "--otel-overhead-max-time=5", "--otel-overhead-json=out.json"
    )
    result.assert_outcomes(passed=3)
    assert {"opentelemetry.sdk.trace", "psutil", "pytest_otel_overhead.engine.runner"} <= set(modules)
    tests = {t["nodeid"]: t for t in json.loads(Path(pytester.path, "out.json").read_text(encoding="utf-8"))["tests"]}
    assert set(tests) == {"test_cost.py::test_marked", "test_cost.py::test_fixture"}
    for test in tests.values():
        assert test["pairs"] > 0
        assert test["settings"]["queue_size"] == 4096  # the ini file's value reached the measuring
    assert re.search(r"^-+ otel-overhead -+$", result.stdout.str(), re.MULTILINE)  # the verdict table


def test_names_in_settings_are_not_imported_without_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile(
        factory_module="def make():\n    raise AssertionError('only a measuring session builds the exporter')\n",
        test_named="""
        import pytest

        @pytest.mark.otel_overhead(
            exporter="factory_module:make",
            instrument="opentelemetry.instrumentation.sqlite3:SQLite3Instrumentor",
        )
        def test_marked():
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--otel-overhead-exporter=factory_module:make")
    result.assert_outcomes(passed=1, warnings=1)  # the warning: the flag has no effect without --otel-overhead
    modules = json.loads(Path(pytester.path, "modules.json").read_text(encoding="utf-8"))
    assert "factory_module" not in modules
    assert not [m for m in modules if m.startswith("opentelemetry")], modules


def test_a_session_given_nothing_loads_only_the_declarations(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.makeini("[pytest]\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1, warnings=0)
    modules = json.loads(Path(pytester.path, "modules.json").read_text(encoding="utf-8"))
    ours = {m for m in modules if m.split(".")[0] == "pytest_otel_overhead"}
    assert "pytest_otel_overhead.plugin" in ours
    assert ours <= DECLARATIONS, sorted(ours - DECLARATIONS)


# Written as the subprocess's conftest: which of the plugin's hooks each per-test hook would call.
RECORD_PER_TEST_HOOKS = """
import json

PER_TEST = ("pytest_runtest_setup", "pytest_pyfunc_call", "pytest_runtest_logreport")


def pytest_sessionfinish(session):
    hooks = {
        name: sorted(
            impl.plugin_name
            for impl in getattr(session.config.hook, name).get_hookimpls()
            if getattr(impl.function, "__module__", "").startswith("pytest_otel_overhead")
        )
        for name in PER_TEST
    }
    with open("hooks.json", "w") as stream:
        json.dump(hooks, stream)
"""


def per_test_hooks(pytester: pytest.Pytester, tests: str, *args: str) -> dict[str, list[str]]:
    pytester.makeconftest(RECORD_PER_TEST_HOOKS)
    pytester.makepyfile(test_some=tests)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", *args).assert_outcomes(passed=2)
    hooks: dict[str, list[str]] = json.loads(Path(pytester.path, "hooks.json").read_text(encoding="utf-8"))
    return hooks


PLAIN_TESTS = """
def test_one():
    pass


def test_two():
    pass
"""
MARKED_TESTS = "import pytest\n\n\n@pytest.mark.otel_overhead" + PLAIN_TESTS  # test_one marked, test_two not


def test_a_session_without_marked_tests_calls_nothing_of_the_plugin_per_test(pytester: pytest.Pytester) -> None:
    assert per_test_hooks(pytester, PLAIN_TESTS) == {
        "pytest_runtest_setup": [],
        "pytest_pyfunc_call": [],
        "pytest_runtest_logreport": [],
    }


def test_marked_tests_without_the_flag_are_checked_per_test(pytester: pytest.Pytester) -> None:
    hooks = per_test_hooks(pytester, MARKED_TESTS)
    assert hooks["pytest_runtest_setup"] == ["otel-overhead-marked"]
    assert hooks["pytest_runtest_logreport"] == ["otel-overhead-marked"]
    assert hooks["pytest_pyfunc_call"] == []


CHOSEN = """
import pytest

pytestmark = pytest.mark.parametrize("n", [1])


def test_plain(n):
    pass


@pytest.mark.otel_overhead
def test_marked(n):
    pass


def test_fixture(n, otel_overhead):
    pass


@pytest.mark.otel_overhead(budget="5%")
class TestMarked:
    def test_in_class(self, n):
        pass

    @pytest.mark.otel_overhead(budget="10%")
    def test_marked_twice(self, n):
        pass


class TestPlain:
    def test_in_class(self, n):
        pass
"""


def test_the_collection_chooses_the_tests_to_measure_as_each_test_would(pytester: pytest.Pytester) -> None:
    items = pytester.getitems(CHOSEN)
    chosen = items_to_measure(items)
    assert chosen == {item for item in items if to_measure(item)}
    assert sorted(item.name for item in chosen) == [
        "test_fixture[1]",
        "test_in_class[1]",
        "test_marked[1]",
        "test_marked_twice[1]",
    ]


@pytest.mark.parametrize(
    ("ini", "args", "gives"),
    [
        ("", (), False),
        ("otel_overhead = false\notel_overhead_tune = false\n", (), False),  # switches at their default
        ("otel_overhead = true\n", (), True),
        ("otel_overhead_batch_size = 128\n", (), True),
        ("otel_overhead_sweep = sample_rate=0.1,1\n", (), True),
        ("", ("--otel-overhead",), True),
        ("", ("--otel-overhead-save",), True),  # a flag without an ini twin
        ("", ("-o", "otel_overhead_explain=true"), True),
        ("", ("--otel-overhead-budget=3%",), True),
    ],
)
def test_a_run_gives_the_plugin_something_by_any_flag_or_ini_key(
    pytester: pytest.Pytester, ini: str, args: tuple[str, ...], gives: bool
) -> None:
    pytester.makeini("[pytest]\n" + ini)
    assert gives_anything(pytester.parseconfig(*args)) is gives
