"""The between-process term calibrated on the user's own tests and runner (the ``calibrate`` command).

The command's defaults live here, light to import, for the command line's parser and help."""

DEFAULT_PROCESSES = 5
"""Fresh processes each test is measured over."""
DEFAULT_LOAD = 2
"""Busy processes beside the loaded run: as many as the real-workload campaign's loaded runs had."""
