"""pytest plugins that a measuring session registers: xdist, pytest-benchmark, the run history."""
