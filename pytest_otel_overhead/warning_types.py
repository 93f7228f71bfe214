"""The plugin's warning categories, importable for ``-W`` and ``filterwarnings`` at no cost beyond pytest.

All are exported from the package root: ``-W error::pytest_otel_overhead.OverheadInconclusiveWarning``.
"""

from __future__ import annotations

import pytest

__all__ = [
    "OverheadCompareWarning",
    "OverheadFailedExportsWarning",
    "OverheadInconclusiveWarning",
    "OverheadNoTelemetryWarning",
]


class OverheadInconclusiveWarning(pytest.PytestWarning):
    """A budget could not be decided within the allowed time (``--otel-overhead-inconclusive=warn``)."""


class OverheadCompareWarning(pytest.PytestWarning):
    """The compared runs were measured on different machines or versions, or there was nothing to compare."""


class OverheadNoTelemetryWarning(pytest.PytestWarning):
    """The instrumented arm recorded no spans and no metrics, so both arms ran the same code
    (``--otel-overhead-no-telemetry=warn``)."""


class OverheadFailedExportsWarning(pytest.PytestWarning):
    """Every export failed, so nothing the instrumented arm recorded reached the backend
    (``--otel-overhead-failed-exports=warn``)."""
