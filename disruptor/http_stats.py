"""``HttpStats``: the requests a peer served, counted by the API's outermost middleware.

Plain counters (requests by method, route pattern and status; durations by method and route),
read by the metrics part for its chart and its Prometheus exposition. Label values are route
patterns, never raw paths, so the counts stay bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .histogram import LatencyHistogram


@dataclass
class HttpStats:
    """Requests served, by (method, route, status), and their durations by (method, route)."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    durations: dict[tuple[str, str], LatencyHistogram] = field(default_factory=dict)
    in_flight: int = 0

    def record(self, method: str, route: str, status: int, duration_s: float | None) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if duration_s is not None:
            hist = self.durations.get((method, route))
            if hist is None:
                hist = self.durations[(method, route)] = LatencyHistogram()
            hist.observe(duration_s)
