"""The peer's Prometheus metrics: one registry per peer, filled from the parts' ``stats`` on scrape.

Each part keeps a small dataclass of counters and gauges (``store.stats``, ``pool.stats``...) and
updates it where things happen; nothing here is called on the hot path. At scrape time the
collector reads those dataclasses and the parts' query methods (members by state, bundles held)
and turns them into metric families. ``Metrics`` also samples throughput and latency once a second
for the dashboard's chart.

Rules: a registry per peer, never prometheus_client's global one (several peers share a process in
tests); a part that is absent or fails to answer is skipped, so one broken part cannot break the
scrape; label values are bounded (states, route patterns, status codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .api.observe import HttpStats
from .histogram import LatencyHistogram
from .timeseries import Reading, Series
from .version import __version__

log = logging.getLogger("disruptor.metrics")

PREFIX = "disruptor"
# The peer's parts whose ``stats`` are exported, as (attribute on the peer, metric name part).
PARTS: tuple[tuple[str, str], ...] = (
    ("membership", "membership"),
    ("store", "bundles"),
    ("pool", "workers"),
    ("snippets", "snippets"),
    ("jobs", "jobs"),
)
MEMBER_STATES = ("alive", "suspect", "dead", "left")
SAMPLE_INTERVAL_S = 1.0
# Stats fields left out because the collector exports the same figure under a clearer name
# (disruptor_bundles_held and disruptor_bundles_held_bytes, read from the store's listing;
# disruptor_members{state}, read from the member list).
DERIVED = frozenset(
    {("bundles", "bundles"), ("bundles", "bytes_stored")}
    | {("membership", f"members_{state}") for state in MEMBER_STATES}
)
# Fields named ``<group>_<reason>`` exported as one counter with a ``reason`` label.
LABELLED_GROUPS = ("dropped",)

# Stats fields that hold a current level rather than a running count. A part may also say so
# itself with ``field(metadata={"metric": "gauge"})`` (or "counter"), and give ``"help"``.
GAUGE_WORDS = frozenset(
    {
        "running",
        "in_flight",
        "inflight",
        "active",
        "held",
        "stored",
        "free",
        "busy",
        "idle",
        "length",
        "size",
        "pending",
        "queued",
        "queue",
        "open",
        "current",
        "slots",
        "members",
        "level",
        "health",
        "awareness",
        "incarnation",
        "warm",
        "serving",
    }
)

# Whole names that are levels although no word in them says so.
GAUGE_FIELDS = frozenset({"bundles", "workers", "hosts", "peers"})
# ...unless the name says it is a running total ("gossip_bytes_sent", "bytes_fetched").
RUNNING_TOTAL_WORDS = frozenset({"sent", "received", "fetched", "uploaded", "downloaded", "total"})


def metric_kind(name: str, metadata: Any) -> str:
    """``counter`` or ``gauge`` for a stats field: its own say first, then its name."""
    declared = metadata.get("metric") if hasattr(metadata, "get") else None
    if declared in ("counter", "gauge"):
        return str(declared)
    if name in GAUGE_FIELDS:
        return "gauge"
    words = set(name.split("_"))
    if words & RUNNING_TOTAL_WORDS:
        return "counter"
    if words & GAUGE_WORDS:
        return "gauge"
    return "counter"


def metric_name(part: str, field_name: str) -> tuple[str, float]:
    """The exported name for a stats field and the factor its value is scaled by (base units)."""
    # workers.workers_running is disruptor_workers_running, not disruptor_workers_workers_running.
    name = field_name.removesuffix("_total").removeprefix(part + "_")
    scale = 1.0
    if name.endswith("_ms"):
        name, scale = name[: -len("_ms")] + "_seconds", 0.001
    elif name.endswith("_s"):
        name = name[: -len("_s")] + "_seconds"
    return f"{PREFIX}_{part}_{name}", scale


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def histogram_family(name: str, help_text: str, hist: LatencyHistogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, help_text, labels=[])
    buckets = [(_le(bound), float(n)) for bound, n in hist.cumulative()]
    family.add_metric([], buckets, sum_value=hist.sum_s)
    return family


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def stats_families(part: str, stats: Any) -> Iterator[Metric]:
    """Metric families for every number and histogram in one part's stats dataclass."""
    if not dataclasses.is_dataclass(stats):
        return
    groups: dict[str, CounterMetricFamily] = {}
    for f in dataclasses.fields(stats):
        if (part, f.name) in DERIVED:
            continue
        group, _, reason = f.name.partition("_")
        if group in LABELLED_GROUPS and reason and _number(getattr(stats, f.name)) is not None:
            family = groups.get(group)
            if family is None:
                family = groups[group] = CounterMetricFamily(
                    f"{PREFIX}_{part}_{group}", f"{part} {group}, by reason", labels=["reason"]
                )
            family.add_metric([reason], float(getattr(stats, f.name)))
            continue
        value = getattr(stats, f.name, None)
        help_text = str(f.metadata.get("help", f"{part} {f.name.replace('_', ' ')}"))
        if isinstance(value, LatencyHistogram):
            name, _ = metric_name(part, f.name)
            if not name.endswith("_seconds"):
                name += "_seconds"
            yield histogram_family(name, help_text, value)
            continue
        number = _number(value)
        if number is None:
            continue
        name, scale = metric_name(part, f.name)
        if metric_kind(f.name, f.metadata) == "gauge":
            yield GaugeMetricFamily(name, help_text, value=number * scale)
        else:
            yield CounterMetricFamily(name, help_text, value=number * scale)
    yield from groups.values()


class PeerCollector(Collector):
    """Reads the peer's parts at scrape time; never holds numbers of its own."""

    def __init__(self, peer: Any, http: HttpStats) -> None:
        self._peer = peer
        self._http = http

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        for build in (self._info, self._members, self._bundles, self._parts, self._http_families):
            try:
                families.extend(build())
            except Exception:
                # A part mid-change or broken must not take the whole scrape down.
                log.exception("metrics: %s failed", build.__name__)
        seen: set[str] = set()
        for family in families:
            if family.name not in seen:
                seen.add(family.name)
                yield family

    def _info(self) -> Iterator[Metric]:
        peer = self._peer
        info = GaugeMetricFamily(
            f"{PREFIX}_peer_info",
            "This peer: address, cluster name and software version",
            labels=["address", "cluster", "version"],
        )
        cluster = str(getattr(getattr(peer, "settings", None), "cluster_name", ""))
        info.add_metric([str(peer.address), cluster, __version__], 1.0)
        yield info

    def _members(self) -> Iterator[Metric]:
        membership = getattr(self._peer, "membership", None)
        if membership is None or not hasattr(membership, "members"):
            return
        counts = dict.fromkeys(MEMBER_STATES, 0)
        for member in membership.members():
            state = str(getattr(member, "state", "")).lower()
            state = getattr(getattr(member, "state", None), "value", state)
            if state in counts:
                counts[state] += 1
        family = GaugeMetricFamily(
            f"{PREFIX}_members", "Cluster members this peer knows, by state", labels=["state"]
        )
        for state, n in counts.items():
            family.add_metric([state], float(n))
        yield family

    def _bundles(self) -> Iterator[Metric]:
        store = getattr(self._peer, "store", None)
        if store is None or not hasattr(store, "list"):
            return
        infos = list(store.list())
        yield GaugeMetricFamily(f"{PREFIX}_bundles_held", "Bundles held", value=float(len(infos)))
        size = sum(float(getattr(i, "size", 0) or 0) for i in infos)
        yield GaugeMetricFamily(f"{PREFIX}_bundles_held_bytes", "Bytes of bundles held", value=size)

    def _parts(self) -> Iterator[Metric]:
        for path, part in PARTS:
            owner: Any = self._peer
            for attr in path.split("."):
                owner = getattr(owner, attr, None)
            stats = getattr(owner, "stats", None)
            if stats is not None:
                yield from stats_families(part, stats)

    def _http_families(self) -> Iterator[Metric]:
        http = self._http
        requests = CounterMetricFamily(
            f"{PREFIX}_http_requests",
            "HTTP requests served, by method, route pattern and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(http.requests.items()):
            requests.add_metric([method, route, str(status)], float(n))
        yield requests
        durations = HistogramMetricFamily(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to serve HTTP requests, by method and route pattern",
            labels=["method", "route"],
        )
        for (method, route), hist in sorted(http.durations.items()):
            buckets = [(_le(bound), float(n)) for bound, n in hist.cumulative()]
            durations.add_metric([method, route], buckets, sum_value=hist.sum_s)
        yield durations
        yield GaugeMetricFamily(
            f"{PREFIX}_http_requests_in_flight",
            "HTTP requests being served now (open event streams included)",
            value=float(http.in_flight),
        )


def reading(peer: Any, http: HttpStats) -> Reading:
    """Cumulative counters for the throughput chart.

    Jobs and their latency come from the job runner's stats (``completed``, ``failed`` and its
    latency histogram), or else from the HTTP layer's count and timing of ``POST /jobs``. Items
    finished for the jobs coordinated here count those of finished jobs plus the progress of the
    running ones, so the chart moves while a long job runs. Items run here are counted by the worker
    pool and the snippet runner as they finish, for any peer's job.
    """
    jobs = getattr(peer, "jobs", None)
    stats = getattr(jobs, "stats", None)
    hist = _first_histogram(stats)
    run_here = _items_run(peer) or 0
    if stats is not None and hist is not None:
        done = sum(int(getattr(stats, n, 0) or 0) for n in ("completed", "failed", "cancelled"))
        items = sum(int(getattr(stats, n, 0) or 0) for n in ("items_completed", "items_failed"))
        items += _items_in_flight(jobs)
        return Reading(done, items, hist.count, hist.sum_s, run_here)
    http_hist = http.durations.get(("POST", "/jobs"))
    done = sum(n for (m, r, s), n in http.requests.items() if m == "POST" and r == "/jobs")
    if http_hist is None:
        return Reading(done, 0, 0, 0.0, run_here)
    return Reading(done, 0, http_hist.count, http_hist.sum_s, run_here)


def _items_in_flight(jobs: Any) -> int:
    in_flight = getattr(jobs, "in_flight", None)
    if not callable(in_flight):
        return 0
    total = 0
    for job in in_flight():
        progress = job.get("progress") if isinstance(job, dict) else None
        if isinstance(progress, dict):
            total += int(progress.get("done", 0) or 0)
    return total


def _items_run(peer: Any) -> int | None:
    pool_stats = getattr(getattr(peer, "pool", None), "stats", None)
    snippet_stats = getattr(getattr(peer, "snippets", None), "stats", None)
    if pool_stats is None and snippet_stats is None:
        return None
    return int(getattr(pool_stats, "tasks_done", 0) or 0) + int(
        getattr(snippet_stats, "items", 0) or 0
    )


def _first_histogram(stats: Any) -> LatencyHistogram | None:
    if stats is None or not dataclasses.is_dataclass(stats):
        return None
    for f in dataclasses.fields(stats):
        value = getattr(stats, f.name, None)
        if isinstance(value, LatencyHistogram):
            return value
    return None


class Metrics:
    """The peer's metrics part: registry, HTTP counters and the sampled history."""

    def __init__(self, peer: Any, sample_interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.http = HttpStats()
        self.series = Series()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(PeerCollector(peer, self.http))
        ProcessCollector(namespace=PREFIX, registry=self.registry)
        self._peer = peer
        self._interval_s = sample_interval_s
        self._task: asyncio.Task[None] | None = None
        self.started_s = time.time()

    def render(self) -> bytes:
        """The Prometheus text exposition of this peer's metrics."""
        return bytes(generate_latest(self.registry))

    def sample(self, now_s: float | None = None) -> None:
        self.series.sample(time.time() if now_s is None else now_s, reading(self._peer, self.http))

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
