"""The dashboard's recent history: throughput and latency, one point per sampling step.

Sans-IO: the caller passes the time and the cumulative counters it read (jobs finished, items
finished for the jobs this peer coordinates, items run on this peer, latency count and sum, and
whether work is running here); this turns them into rates and mean latencies.

Rates are taken over a sliding window (``window_s``, 10 s) of what was delivered, not from one
step to the next: results arrive a task at a time, and a per-step rate reads 0 between tasks and
a spike when one ends. While work runs the window never reaches back before the work began (so a
job's first seconds are not diluted by the idle time before it), and when nothing finished within
the window it reaches back to the last result of this run of work (so a long task reads as a
slowing rate, not as idle). Rules: bounded rings (``points_max`` points, ``readings_max``
readings), so a peer running for months holds the last minutes only; a counter that goes
backwards (a part restarted) restarts the history instead of charting a negative rate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Five minutes at one point a second.
POINTS_MAX = 300
# Rates are over the last 10 s...
RATE_WINDOW_S = 10.0
# ...or, while work runs and nothing finished in that window, back to the last result, at most
# this many readings ago (two minutes at one a second).
READINGS_MAX = 120


@dataclass(frozen=True)
class Reading:
    """Cumulative counters at one moment."""

    jobs_done: int = 0
    items_done: int = 0  # items finished for jobs this peer coordinates, wherever they ran
    latency_count: int = 0
    latency_sum_s: float = 0.0
    items_run_here: int = 0  # items this peer's workers and snippet hosts ran, for any job
    busy: bool = False  # jobs coordinated here, or tasks served here, are running


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


def _went_back(before: Reading, now: Reading) -> bool:
    return (
        now.jobs_done < before.jobs_done
        or now.items_done < before.items_done
        or now.latency_count < before.latency_count
        or now.items_run_here < before.items_run_here
    )


class Series:
    def __init__(
        self,
        points_max: int = POINTS_MAX,
        window_s: float = RATE_WINDOW_S,
        readings_max: int = READINGS_MAX,
    ) -> None:
        self._points: deque[Point] = deque(maxlen=points_max)
        # Each point's JSON form, made once when it is recorded rather than on every snapshot.
        self._json: deque[list[Any]] = deque(maxlen=points_max)
        self._readings: deque[tuple[float, Reading]] = deque(maxlen=readings_max)
        self._window_s = window_s

    def sample(self, now_s: float, reading: Reading) -> Point | None:
        """Record a reading; returns the new point (None for the first reading or a reset)."""
        readings = self._readings
        if not readings or _went_back(readings[-1][1], reading):
            readings.clear()
            readings.append((now_s, reading))
            return None
        then_s, before = readings[-1]
        if now_s <= then_s:
            return None
        readings.append((now_s, reading))
        finished = reading.latency_count - before.latency_count
        latency_ms = (
            (reading.latency_sum_s - before.latency_sum_s) / finished * 1000.0 if finished else None
        )
        point = Point(
            t_s=now_s,
            jobs_per_s=self._rate(lambda r: r.jobs_done, while_busy=False),
            items_per_s=self._rate(lambda r: r.items_done),
            latency_ms=latency_ms,
            local_items_per_s=self._rate(lambda r: r.items_run_here),
        )
        self._points.append(point)
        self._json.append(point.to_json())
        return point

    def _rate(self, count: Callable[[Reading], int], while_busy: bool = True) -> float:
        """The rate of ``count`` at the last reading, over the window (see the module's rule)."""
        readings = self._readings
        now_s, current = readings[-1]
        last = len(readings) - 1
        base = 0  # the reading the rate is measured from: the last one at or before the window
        for index in range(last, -1, -1):
            if readings[index][0] <= now_s - self._window_s:
                base = index
                break
        if while_busy and current.busy:
            # The last reading before this run of work began, if the history holds one.
            idle = next((i for i in range(last - 1, -1, -1) if not readings[i][1].busy), None)
            if idle is not None and idle > base:
                base = idle
            if count(readings[base][1]) == count(current):
                floor = -1 if idle is None else idle - 1
                for index in range(base - 1, floor, -1):
                    if count(readings[index][1]) < count(current):
                        base = index
                        break
        then_s, before = readings[base]
        if now_s <= then_s:
            return 0.0
        return (count(current) - count(before)) / (now_s - then_s)

    def points(self) -> list[Point]:
        return list(self._points)

    def to_json(self) -> list[list[Any]]:
        return list(self._json)
