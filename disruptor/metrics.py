"""The peer's metrics part: the HTTP counters, the sampled history, and the Prometheus scrape.

``Metrics`` samples throughput and latency once a second for the dashboard's chart and owns
``HttpStats``, which the API's outermost middleware fills. The Prometheus exposition of every
part's ``stats`` is ``prometheus.py``'s, loaded on the first scrape so a peer starts without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from .http_stats import HttpStats
from .parts import Parts
from .timeseries import Reading, Series

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("disruptor.metrics")

SAMPLE_INTERVAL_S = 1.0


def reading(parts: Parts, http: HttpStats) -> Reading:
    """Cumulative counters for the throughput chart.

    Jobs and their latency come from the coordinator's stats (``completed``, ``failed``,
    ``cancelled`` and its latency histogram). Items finished for the jobs coordinated here count
    those of finished jobs plus the progress of the running ones, so the chart moves while a long
    job runs. Items run here are counted by the worker pool and the snippet engine as they
    finish, for any peer's job. The peer is busy while jobs it coordinates or tasks it serves
    run (the rates then never read idle once a result has come).
    """
    stats = parts.jobs.stats
    done = stats.completed + stats.failed + stats.cancelled
    items = stats.items_completed + stats.items_failed
    items += sum(int(job["progress"]["done"]) for job in parts.jobs.in_flight())
    run_here = parts.pool.stats.tasks_done + parts.snippets.stats.items
    busy = stats.running > 0 or stats.tasks_serving > 0
    return Reading(done, items, stats.latency.count, stats.latency.sum_s, run_here, busy)


class Metrics:
    """The peer's metrics part: registry, HTTP counters and the sampled history."""

    def __init__(self, parts: Parts, sample_interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.http = HttpStats()
        self.series = Series()
        self._registry: CollectorRegistry | None = None
        self._parts = parts
        self._interval_s = sample_interval_s
        self._task: asyncio.Task[None] | None = None
        self.started_s = time.time()

    def render(self) -> bytes:
        """The Prometheus text exposition of this peer's metrics."""
        return self.exposition("")[0]

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """This peer's metrics and their content type: OpenMetrics when ``accept`` (a request's
        ``Accept`` header) asks for ``application/openmetrics-text``, else Prometheus' text
        format (the version it asks for, 0.0.4 by default)."""
        from . import prometheus  # on the first scrape only

        if self._registry is None:
            self._registry = prometheus.registry_for(self._parts, self.http)
        return prometheus.expose(self._registry, accept)

    def sample(self, now_s: float | None = None) -> None:
        self.series.sample(time.time() if now_s is None else now_s, reading(self._parts, self.http))

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("metrics: sampling failed")
            await asyncio.sleep(self._interval_s)
