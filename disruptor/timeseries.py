"""The dashboard's recent history: throughput and latency, one point per sampling step.

Sans-IO: the caller passes the time and the cumulative counters it read (jobs finished, items
finished for the jobs this peer coordinates, items run on this peer, latency count and sum); this
turns consecutive readings into rates and mean latencies.
Rule: a bounded ring (``points_max``), so a peer running for months holds the last minutes only;
a counter that goes backwards (a part restarted) restarts the differences instead of charting a
negative rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

# Five minutes at one point a second.
POINTS_MAX = 300


@dataclass(frozen=True)
class Reading:
    """Cumulative counters at one moment."""

    jobs_done: int = 0
    items_done: int = 0  # items finished for jobs this peer coordinates, wherever they ran
    latency_count: int = 0
    latency_sum_s: float = 0.0
    items_run_here: int = 0  # items this peer's workers and snippet hosts ran, for any job


@dataclass(frozen=True)
class Point:
    t_s: float
    jobs_per_s: float
    items_per_s: float
    # Mean latency of the jobs that finished during this step; None when none did.
    latency_ms: float | None
    local_items_per_s: float = 0.0

    def to_json(self) -> list[Any]:
        """``[t, jobs_per_s, items_per_s, latency_ms, local_items_per_s]``: compact, as it is
        sent every second."""
        return [
            round(self.t_s, 3),
            round(self.jobs_per_s, 3),
            round(self.items_per_s, 3),
            None if self.latency_ms is None else round(self.latency_ms, 3),
            round(self.local_items_per_s, 3),
        ]


class Series:
    def __init__(self, points_max: int = POINTS_MAX) -> None:
        self._points: deque[Point] = deque(maxlen=points_max)
        # Each point's JSON form, made once when it is recorded rather than on every snapshot.
        self._json: deque[list[Any]] = deque(maxlen=points_max)
        self._last: tuple[float, Reading] | None = None

    def sample(self, now_s: float, reading: Reading) -> Point | None:
        """Record a reading; returns the new point (None for the first reading or a reset)."""
        last = self._last
        self._last = (now_s, reading)
        if last is None:
            return None
        then_s, before = last
        elapsed = now_s - then_s
        went_back = (
            reading.jobs_done < before.jobs_done
            or reading.items_done < before.items_done
            or reading.latency_count < before.latency_count
            or reading.items_run_here < before.items_run_here
        )
        if elapsed <= 0 or went_back:
            return None
        finished = reading.latency_count - before.latency_count
        latency_ms = (
            (reading.latency_sum_s - before.latency_sum_s) / finished * 1000.0 if finished else None
        )
        point = Point(
            t_s=now_s,
            jobs_per_s=(reading.jobs_done - before.jobs_done) / elapsed,
            items_per_s=(reading.items_done - before.items_done) / elapsed,
            latency_ms=latency_ms,
            local_items_per_s=(reading.items_run_here - before.items_run_here) / elapsed,
        )
        self._points.append(point)
        self._json.append(point.to_json())
        return point

    def points(self) -> list[Point]:
        return list(self._points)

    def to_json(self) -> list[list[Any]]:
        return list(self._json)
