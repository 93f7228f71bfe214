"""Named sets of pipeline settings: the tuning guide's performance profiles and environment presets.

A profile is selected with ``profile=`` (marker, ``--otel-overhead-profile``, ini
``otel_overhead_profile``) or ``$OTEL_PERFORMANCE_PROFILE``. Its values form a layer just below the
layer that names it, so a setting given next to the profile, or in any higher layer, wins; a
setting given only in a lower layer does not. Only the highest-precedence profile applies.

Every profile names its sampler, rate, batch size, schedule delay and queue size, so the pipeline it
gives does not depend on what lower layers happen to set. Each uses the parent-based trace-id
ratio sampler (rate 1 where everything is sampled), so a ``sample_rate`` given alongside changes
only the rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["PROFILES", "Profile", "canonical_profile", "profile_names"]


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    values: Mapping[str, object] = field(default_factory=dict)
    note: str = ""


def _profile(name: str, title: str, note: str, *, rate: float, batch: int, delay: str, queue: int) -> Profile:
    values = {
        "sampler": "parentbased_traceidratio",
        "sample_rate": rate,
        "batch_size": batch,
        "schedule_delay": delay,
        "queue_size": queue,
    }
    return Profile(name, title, MappingProxyType(values), note)


_DEFINED = (
    # The tuning guide's three performance profiles.
    _profile(
        "high",
        "high traffic",
        "the guide's high-traffic profile: 1% of traces, batches of 4096 every 30 s; the queue holds "
        "two batches (the guide sizes it as peak spans/s × batch timeout × 2: raise it for your peak)",
        rate=0.01,
        batch=4096,
        delay="30s",
        queue=8192,
    ),
    _profile(
        "medium",
        "low latency",
        "the guide's low-latency profile: 5% of traces, batches of 512 every second, SDK default queue",
        rate=0.05,
        batch=512,
        delay="1s",
        queue=2048,
    ),
    _profile(
        "low",
        "resource constrained",
        "the guide's resource-constrained profile: 0.5% of traces in batches of 128; a queue of four "
        "batches and the SDK's 5 s delay keep memory and wake-ups low",
        rate=0.005,
        batch=128,
        delay="5s",
        queue=512,
    ),
    # Environment presets.
    _profile(
        "development",
        "development",
        "every trace, exported within a second, so developers see each request",
        rate=1.0,
        batch=512,
        delay="1s",
        queue=2048,
    ),
    _profile(
        "staging",
        "staging",
        "half of the traces, SDK batch defaults: production's shape with more detail",
        rate=0.5,
        batch=512,
        delay="5s",
        queue=2048,
    ),
    _profile(
        "production",
        "production",
        "10% of traces (the guide's default probabilistic strategy), SDK batch defaults",
        rate=0.1,
        batch=512,
        delay="5s",
        queue=2048,
    ),
    _profile(
        "high-traffic",
        "high traffic",
        "the same settings as 'high'",
        rate=0.01,
        batch=4096,
        delay="30s",
        queue=8192,
    ),
)

PROFILES: Mapping[str, Profile] = MappingProxyType({p.name: p for p in _DEFINED})

# The guide's long names for its profiles.
_ALIASES = {
    "low-latency": "medium",
    "resource-constrained": "low",
    "dev": "development",
    "prod": "production",
}


def profile_names() -> tuple[str, ...]:
    return tuple(PROFILES)


def canonical_profile(text: str) -> str | None:
    """The profile a user's spelling names (case, ``_`` and spaces ignored), or None."""
    key = "-".join(text.strip().lower().replace("_", "-").split())
    key = _ALIASES.get(key, key)
    return key if key in PROFILES else None
