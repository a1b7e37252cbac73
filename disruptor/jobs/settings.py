"""The job layer's settings (``PeerSettings.jobs``) and its counters (``peer.jobs.stats``).

Every bound on a queue or a registry is set here, with the reason for its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..histogram import LatencyHistogram


@dataclass(frozen=True)
class JobsSettings:
    # Jobs this peer coordinates at once; one more gets 429 Overloaded with Retry-After.
    jobs_running_max: int = 1024
    # Finished jobs kept for ``GET /jobs/<id>`` (oldest forgotten first).
    jobs_kept_max: int = 256
    # Tasks other coordinators may have running here at once; one more gets 429.
    tasks_served_max: int = 512
    # Per-peer weights for the ``weighted`` policy, by "HOST:PORT" (absent peers weigh 1).
    weights: Mapping[str, float] = field(default_factory=dict)
    # A peer that does not accept a TCP connection for a task within this long is unreachable.
    connect_timeout_s: float = 5.0
    # A peer whose connection failed is left out of placements this long (or until membership
    # says it is gone): about the time gossip takes to declare a crashed peer dead.
    unreachable_hold_s: float = 10.0
    # Seconds the coordinator asks a client to wait when it refuses a job for load.
    retry_after_s: float = 1.0


@dataclass
class JobStats:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0
    items_completed: int = 0  # items whose result is a value
    items_failed: int = 0  # items whose result is an error
    items_retried: int = 0  # items run again after their worker crashed or timed out
    tasks_local: int = 0  # attempts this coordinator ran on itself
    tasks_forwarded: int = 0  # attempts this coordinator sent to other peers
    tasks_replaced: int = 0  # attempts placed again after their peer was lost
    tasks_served: int = 0  # attempts other coordinators ran here
    tasks_serving: int = 0  # of those, running now
    rejected_overloaded: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
