"""Where the project's own code sets OpenTelemetry's global providers, for the error that says so.

OpenTelemetry keeps a single global TracerProvider and MeterProvider per process. When one is set
before the plugin installs its router (typically in a ``conftest.py``), the provider object cannot
say where it was set: the call left no trace. The loaded modules of the project can: their source
lines that call ``set_tracer_provider`` / ``set_meter_provider`` are the candidates, and the error
names them so that the user goes straight to the line to guard.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["provider_setting_lines"]

_CALLS = {"tracer": "set_tracer_provider(", "meter": "set_meter_provider("}


def _installed_roots() -> tuple[str, ...]:
    """Folders of the standard library and installed packages: not the project's code."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.add(str(Path(__file__).resolve().parents[1]))  # this package, wherever it is installed
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots)


def _project_files() -> list[Path]:
    roots = _installed_roots()
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        real = os.path.realpath(name)
        if not real.startswith(roots):
            files.append(Path(real))
    return sorted(set(files))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def provider_setting_lines(kind: str, most: int = 3) -> list[str]:
    """``file:line`` of the loaded project code that calls ``set_<kind>_provider(``, at most ``most``."""
    call = _CALLS[kind]
    found: list[str] = []
    for path in _project_files():
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            code = line.split("#", 1)[0]
            if call in code:
                found.append(f"{_shown(path)}:{number}")
                if len(found) == most:
                    return found
    return found
