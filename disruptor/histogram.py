"""A latency histogram small enough to live in any part's ``stats`` and cheap to update.

Parts record durations with ``observe(seconds)``; the metrics collector exports it as a Prometheus
histogram and the dashboard reads its count and sum to chart latency. Rule: fixed bucket bounds,
chosen once, so updating is a bisect and a few additions and memory never grows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# From 1 ms to 2 min: local snippet items take about a millisecond, a big job minutes.
DEFAULT_BOUNDS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)


@dataclass
class LatencyHistogram:
    """Counts of observations at or under each bound, plus their total count and sum (seconds)."""

    bounds_s: tuple[float, ...] = DEFAULT_BOUNDS_S
    # counts[i] counts observations in (bounds_s[i-1], bounds_s[i]]; the last slot is +Inf.
    counts: list[int] = field(default_factory=list)
    count: int = 0
    sum_s: float = 0.0

    def __post_init__(self) -> None:
        if list(self.bounds_s) != sorted(self.bounds_s) or not self.bounds_s:
            raise ValueError("histogram bounds must be a non-empty increasing sequence")
        if not self.counts:
            self.counts = [0] * (len(self.bounds_s) + 1)

    def observe(self, seconds: float) -> None:
        value = max(0.0, float(seconds))
        self.counts[bisect.bisect_left(self.bounds_s, value)] += 1
        self.count += 1
        self.sum_s += value

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations at or under it)`` pairs, ending with ``(inf, count)``."""
        running = 0
        pairs: list[tuple[float, int]] = []
        for bound, n in zip((*self.bounds_s, float("inf")), self.counts, strict=True):
            running += n
            pairs.append((bound, running))
        return pairs
