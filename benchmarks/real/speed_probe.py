"""``python -m benchmarks.real.speed_probe``: the runner's speed over time, beside a campaign.

Every ``--every`` seconds (20), the CPU time and wall time of a fixed pure-Python loop (a million steps
of integer arithmetic), with the share of the machine's time the hypervisor took (steal, from
``/proc/stat``) since the sample before and the 1-minute load average; one line per sample on stdout::

    18:32:07 cpu_ms=99.2 wall_ms=99.3 steal=0.00% load=1.99

It costs the machine about 100 ms every 20 s. ``python -m benchmarks.real.speeds DIR --probe LOG`` puts
each saved run beside the samples taken while it ran.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence


def _stat() -> tuple[int, int]:
    """The machine's steal time and all its time so far, in clock ticks (``/proc/stat``'s first line)."""
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return ticks[7], sum(ticks)


def _loop() -> int:
    total = 0
    for i in range(1_000_000):
        total += i * i % 7
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real.speed_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=20.0, help="seconds between samples (20)")
    parser.add_argument("--samples", type=int, default=0, help="stop after this many (0: run until stopped)")
    args = parser.parse_args(argv)
    before = _stat()
    taken = 0
    while not args.samples or taken < args.samples:
        cpu, wall = time.process_time(), time.perf_counter()
        _loop()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        now = _stat()
        steal = 100 * (now[0] - before[0]) / max(now[1] - before[1], 1)
        before = now
        print(
            f"{time.strftime('%H:%M:%S', time.gmtime())} cpu_ms={1000 * cpu:.1f} wall_ms={1000 * wall:.1f} "
            f"steal={steal:.2f}% load={os.getloadavg()[0]:.2f}",
            flush=True,
        )
        taken += 1
        if not args.samples or taken < args.samples:
            time.sleep(args.every)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
