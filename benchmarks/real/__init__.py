"""Accuracy of pytest-otel-overhead on real instrumented workloads: ``python -m benchmarks.real``.

Where ``benchmarks.verdicts`` injects a known cost into a synthetic loop, this harness measures
real telemetry (Flask, FastAPI, requests, sqlite3, a hand-instrumented handler; the project in
``benchmarks/real_workloads/``), whose true overhead nobody knows in advance. So it measures it
three more ways beside the plugin: a reference from many fresh processes of a plain interleaved
A/B, pyperf, and pytest-benchmark's two-run gate; and it compares saved plugin runs of unchanged
code (A/A). The report says how often the plugin's interval holds the reference, whether its
verdicts ever contradict each other across runs, and how long they take. A regression campaign
(``--regression``) asks the comparison gate the other question: does a real change of about +5
points come out REGRESSED, and unchanged code never?
"""
