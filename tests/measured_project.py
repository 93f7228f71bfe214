"""A small project of measured tests run once in a real pytest process, and what tests read of that run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Run:
    """One pytest run of ``test_measured.py``: its output, its JSON report and its junit file."""

    stdout: str
    path: Path

    def status(self, name: str) -> str:
        found = re.findall(rf"^test_measured\.py::{name} (PASSED|FAILED|ERROR)\b", self.stdout, re.MULTILINE)
        assert len(found) == 1, self.stdout
        return str(found[0])

    def section(self, name: str) -> str:
        """The failure report of one test, without its header line."""
        found = re.search(rf"^_+ {name} _+\n(.*?)(?=^_+ \w+ _+$|^=+ )", self.stdout, re.MULTILINE | re.DOTALL)
        assert found is not None, self.stdout
        return found.group(1)

    def summary(self, name: str) -> str:
        """The test's block in the plugin's summary: its heading line and the indented lines under it."""
        found = re.search(rf"^test_measured\.py::{name}  [A-Z].*\n(?:    .*\n)*", self.stdout, re.MULTILINE)
        assert found is not None, self.stdout
        return found.group(0)

    def result(self, name: str) -> dict[str, Any]:
        document = json.loads((self.path / "out.json").read_text(encoding="utf-8"))
        return next(t for t in document["tests"] if t["nodeid"] == f"test_measured.py::{name}")

    def properties(self, name: str) -> dict[str, str]:
        tree = ET.parse(self.path / "junit.xml")
        (case,) = (c for c in tree.iter("testcase") if c.get("name") == name)
        return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def run_measured(path: Path, files: dict[str, str], max_time: str) -> Run:
    """Write ``files`` into ``path`` and measure them in a fresh pytest process, away from this one's settings."""
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONTRACEMALLOC"))}
    environ.pop("PYTEST_ADDOPTS", None)
    environ["PY_COLORS"] = "0"
    command = [
        *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-v", "-W", "default"),
        *("--otel-overhead", f"--otel-overhead-max-time={max_time}", "--otel-overhead-json=out.json"),
        "--junitxml=junit.xml",
    ]
    done = subprocess.run(command, cwd=path, env=environ, capture_output=True, text=True, timeout=600, check=False)
    return Run(done.stdout, path)
