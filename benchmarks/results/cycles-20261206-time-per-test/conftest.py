import os

import pytest_otel_overhead.instructions.valgrind as valgrind

MODE = os.environ.get("S23_SIM", "cache")
if MODE == "none":
    valgrind.cache_options = lambda: []
elif MODE == "branch":
    _base = valgrind.cache_options
    valgrind.cache_options = lambda: [*_base(), "--branch-sim=yes"]
