"""Per layout, the estimated-cycles and instructions overhead of each saved run, read back by the plugin's reader.

Usage: python layouts.py STORE RUN_A RUN_B (run names or paths as ``compare`` takes them).
"""

import math
import sys
from pathlib import Path

from pytest_otel_overhead.history.shift import pairs_of
from pytest_otel_overhead.history.store import Store

store = Store(Path(sys.argv[1]))
runs = [store.load(name)[0] for name in sys.argv[2:]]
for result in runs[0].results:
    print(result.nodeid)
    for metric in ("cycles", "instructions"):
        columns = [pairs_of(run.result(result.nodeid), metric) for run in runs]
        print(f"  {metric}: per layout, overhead % in " + " | ".join(sys.argv[2:]) + " | difference (points)")
        for k, pairs in enumerate(zip(*columns, strict=True)):
            figures = [math.expm1(math.log(i / b)) * 100 for b, i in pairs]
            print(f"    layout {k}: " + " | ".join(f"{f:+.4f}" for f in figures) + f" | {figures[1] - figures[0]:+.4f}")
