"""Benchmarks of pytest-otel-overhead itself: how often its verdicts are right, and how fast.

``python -m benchmarks.verdicts`` runs the plugin end to end on workloads with a known injected
cost and on A/A workloads, next to the naive two-run method, and prints the table that
``docs/accuracy.md`` discusses. None of this is part of the test suite.
"""
