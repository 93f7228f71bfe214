"""The busy-machine note: other processes' CPU and steal time while a measurement runs."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pytest_otel_overhead.engine import runner
from pytest_otel_overhead.engine.machine import BUSY_SHARE, CpuReading, busy_note, cpu_reading
from pytest_otel_overhead.otel.routing import ArmRouter
from pytest_otel_overhead.settings.layers import Layer
from pytest_otel_overhead.settings.merge import resolve


def reading(wall: float, own: float, busy: float, steal: float = 0.0, cpus: int = 2) -> CpuReading:
    return CpuReading(wall=wall, own=own, busy=busy, steal=steal, cpus=cpus)


@given(
    seconds=st.floats(0.1, 100),
    cpus=st.integers(1, 64),
    own_share=st.floats(0, 1),
    others_share=st.floats(0, 1),
    steal_share=st.floats(0, 1),
)
def test_the_note_says_busy_exactly_when_others_and_steal_reach_the_share(
    seconds: float, cpus: int, own_share: float, others_share: float, steal_share: float
) -> None:
    capacity = seconds * cpus
    own, others, steal = own_share * capacity, others_share * capacity, steal_share * capacity
    note = busy_note(reading(0, 0, 0, 0, cpus), reading(seconds, own, own + others, steal, cpus))
    if others_share + steal_share < BUSY_SHARE * (1 - 1e-9):
        assert note is None
    elif others_share + steal_share > BUSY_SHARE * (1 + 1e-9):
        assert note is not None
        assert f"of its {cpus} CPUs" in note
        used = re.search(r"other processes used (\d+)%", note)
        assert used is not None, note
        # The nearest whole percent of the share; the share the note computes from the readings may differ
        # from ``others_share`` in its last bits, which decides a share that lies on a half percent.
        assert abs(int(used.group(1)) - 100 * min(others_share, 1.0)) <= 0.5 + 1e-6


def test_the_note_names_steal_time_when_there_is_some() -> None:
    note = busy_note(reading(0, 0, 0), reading(10, 5, 10, steal=8))
    assert note == (
        "the machine was busy while measuring: other processes used 25% of its 2 CPUs, and the hypervisor "
        "took 40% (steal); on a loaded machine the same code can read differently than on a quiet one "
        "(docs/accuracy.md)"
    )


def test_own_cpu_is_not_counted_as_others() -> None:
    # This process kept both CPUs busy with its threads: the machine is busy, but not by others.
    assert busy_note(reading(0, 0, 0), reading(10, 20, 20)) is None


def test_no_time_no_note() -> None:
    assert busy_note(reading(5, 0, 0), reading(5, 0, 0)) is None


def test_a_reading_counts_busy_time_that_grows() -> None:
    first = cpu_reading()
    total = 0
    while cpu_reading().own - first.own < 0.05:
        total += 1
    second = cpu_reading()
    assert second.busy - first.busy >= (second.own - first.own) * 0.5  # clock ticks are coarse
    assert second.cpus >= 1


def test_a_measurement_on_a_machine_kept_busy_says_so(machine_kept_busy: int) -> None:
    settings = resolve([Layer.parse({"budget": "100000%", "max_time": 3}, lambda key: "marker")])

    def work() -> int:
        return sum(i * i for i in range(2000))

    result = runner.measure(work, settings, ArmRouter())
    # Others had more runnable processes than CPUs: far above half of the machine.
    assert any(note.startswith("the machine was busy while measuring: other processes used") for note in result.notes)
