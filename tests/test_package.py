"""The package as installed: its entry points load, its root names resolve, and importing it is light."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import pytest_otel_overhead
from pytest_otel_overhead import plugin, samplers, warning_types

SAMPLERS = ("per_operation", "rate_limiting", "load_adaptive")


def test_the_pytest_plugin_loads_through_its_entry_point() -> None:
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "otel_overhead"]
    assert entry.value == "pytest_otel_overhead.plugin"
    assert entry.load() is plugin


@pytest.mark.parametrize("name", SAMPLERS)
def test_each_sampler_loads_through_its_entry_point(name: str) -> None:
    (entry,) = [e for e in entry_points(group="opentelemetry_traces_sampler") if e.name == name]
    assert entry.load() is getattr(samplers, name)


def test_the_root_exports_resolve_to_their_defining_modules() -> None:
    for name in pytest_otel_overhead.__all__:
        assert getattr(pytest_otel_overhead, name) is not None, name
    assert pytest_otel_overhead.OverheadInconclusiveWarning is warning_types.OverheadInconclusiveWarning
    assert pytest_otel_overhead.OverheadCompareWarning is warning_types.OverheadCompareWarning
    assert issubclass(pytest_otel_overhead.OverheadInconclusiveWarning, pytest.PytestWarning)
    assert set(pytest_otel_overhead.__all__) <= set(dir(pytest_otel_overhead))
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        pytest_otel_overhead.nothing_here  # noqa: B018


def imported_by(statement: str) -> list[str]:
    """The modules of this package, OpenTelemetry and psutil that a fresh interpreter has after ``statement``."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    prefixes = ("pytest_otel_overhead", "opentelemetry", "psutil")
    return [m for m in json.loads(out.stdout) if m.split(".")[0] in prefixes]


def test_importing_the_package_loads_nothing_else() -> None:
    assert imported_by("import pytest_otel_overhead") == ["pytest_otel_overhead"]


def test_the_warning_module_needs_only_pytest() -> None:
    loaded = imported_by("import pytest_otel_overhead.warning_types")
    assert loaded == ["pytest_otel_overhead", "pytest_otel_overhead.warning_types"]


def test_warnings_filter_by_their_root_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import warnings
        from pytest_otel_overhead import OverheadCompareWarning, OverheadInconclusiveWarning

        def test_inconclusive():
            warnings.warn(OverheadInconclusiveWarning("undecided"))

        def test_compare():
            warnings.warn(OverheadCompareWarning("elsewhere"))
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::pytest_otel_overhead.OverheadInconclusiveWarning"
    )
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines(["E *OverheadInconclusiveWarning: undecided", "FAILED *::test_inconclusive*"])
