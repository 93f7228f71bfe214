"""One workload in one arm as pyperf measures it: ``python pyperf_bench.py --workload W --arm A -o FILE``.

pyperf spreads the benchmark over its worker processes; the harness runs it once per arm and
compares the two files with ``python -m pyperf compare_to``. The arm is set for the whole process
(``arms.fixed_arm``): the SDK pipeline installed globally and the instrumentors applied, or nothing.
"""

from __future__ import annotations

import argparse

import pyperf  # type: ignore[import-untyped]
from apps import WORKLOADS
from arms import fixed_arm


def worker_args(command: list[str], args: argparse.Namespace) -> None:
    command.extend(["--workload", args.workload, "--arm", args.arm])


def main() -> None:
    runner = pyperf.Runner(add_cmdline_args=worker_args)
    runner.argparser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    runner.argparser.add_argument("--arm", required=True, choices=("baseline", "instrumented"))
    args = runner.parse_args()
    workload = WORKLOADS[args.workload]
    with fixed_arm(args.arm == "instrumented", workload.instrument), workload.open() as call:
        runner.bench_func(workload.name, call)


if __name__ == "__main__":
    main()
