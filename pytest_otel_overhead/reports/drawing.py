"""Charts in HTML pages when matplotlib is installed, and a one-line note in their place when it is not.

matplotlib comes with the ``html`` extra. This module does not import it: the HTML report and the
sweep page ask :class:`ChartDrawer` for each chart, which imports :mod:`pytest_otel_overhead.reports.charts`
once, on first need, and otherwise says why the page has tables only.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any

from pytest_otel_overhead.reports.html_text import escape_html as _h

__all__ = ["CHARTS_EXTRA", "ChartDrawer", "charts_available"]

CHARTS_EXTRA = "pytest-otel-overhead[html]"


def charts_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


class ChartDrawer:
    """Draws charts when matplotlib is importable; records why not otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.module: Any = None
        self.failure: str | None = None
        if enabled:
            try:  # by its name in sys.modules, so a test that hides matplotlib is seen at once
                self.module = importlib.import_module("pytest_otel_overhead.reports.charts")
            except ImportError as error:
                self.failure = f"matplotlib could not be imported ({error})"

    def draw(self, make: Callable[[Any], str], caption: str) -> str:
        """``make(charts_module)``'s SVG in a figure, a short note if it fails, nothing without matplotlib."""
        if self.module is None:
            return ""
        try:
            svg = make(self.module)
        except Exception as error:  # a chart that cannot be drawn must not cost the page
            return f'<p class="muted">{_h(caption)}: chart not drawn ({_h(type(error).__name__)}: {_h(error)})</p>'
        return f'<figure role="img" aria-label="{_h(caption)}">{svg}</figure>'

    def left_out_note(self) -> str:
        """Without charts, the paragraph that says why and which extra adds them; empty with charts."""
        if self.module is not None:
            return ""
        reason = self.failure or "matplotlib is not installed"
        return (
            f'<p class="note">Charts are left out: {_h(reason)}. Install <code>{_h(CHARTS_EXTRA)}</code> '
            "(matplotlib) to add them; the tables below hold the same figures.</p>"
        )
