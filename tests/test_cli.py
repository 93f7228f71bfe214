"""``python -m pytest_otel_overhead`` with no command, or ``--help``: how to run the plugin, and its commands."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_otel_overhead.cli import main


def test_no_command_explains_the_plugin_and_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for how in ("pytest --otel-overhead", "@pytest.mark.otel_overhead(", "otel_overhead(fn)", "pytest --help"):
        assert how in out, how
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert listed == {"list", "compare", "report", "merge", "calibrate"}
    assert len(out.splitlines()) < 30, "a few lines, not a manual"


def test_help_is_the_same_text_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    main([])
    bare = capsys.readouterr().out
    with pytest.raises(SystemExit) as leaving:
        main(["--help"])
    assert leaving.value.code == 0
    assert capsys.readouterr().out == bare


def test_the_module_entry_point_exits_zero_without_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_otel_overhead"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "pytest --otel-overhead" in done.stdout and done.stderr == ""


def test_a_wrong_command_line_is_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as leaving:
        main(["frobnicate"])
    assert leaving.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
