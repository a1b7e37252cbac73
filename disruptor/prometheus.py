"""The peer's metrics in Prometheus' terms: a registry per peer, filled from the parts' ``stats``.

Each part keeps a small dataclass of counters and gauges (``store.stats``, ``pool.stats``...) and
updates it where things happen; nothing here is called on the hot path. At scrape time the
collector reads those dataclasses and the parts' query methods (members by state, bundles held),
from the typed ``Parts`` record, and turns them into metric families. Loaded on the first scrape
(``metrics.Metrics.exposition``), not when a peer starts.

Rules: a registry per peer, never prometheus_client's global one (several peers share a process in
tests); a part that fails to answer is skipped, so one broken part cannot break the scrape; label
values are bounded (states, route patterns, status codes).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .histogram import LatencyHistogram
from .http_stats import HttpStats
from .metric_help import help_text
from .parts import Parts
from .version import __version__

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


log = logging.getLogger("disruptor.metrics")

PREFIX = "disruptor"
MEMBER_STATES = ("alive", "suspect", "dead", "left")
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


def stats_families(part: str, stats: DataclassInstance) -> Iterator[Metric]:
    """Metric families for every number and histogram in one part's stats dataclass."""
    groups: dict[str, CounterMetricFamily] = {}
    for f in dataclasses.fields(stats):
        if (part, f.name) in DERIVED:
            continue
        group, _, reason = f.name.partition("_")
        if group in LABELLED_GROUPS and reason and _number(getattr(stats, f.name)) is not None:
            family = groups.get(group)
            if family is None:
                text = help_text(part, group) or f"{part} {group}, by reason"
                family = groups[group] = CounterMetricFamily(
                    f"{PREFIX}_{part}_{group}", text, labels=["reason"]
                )
            family.add_metric([reason], float(getattr(stats, f.name)))
            continue
        value = getattr(stats, f.name, None)
        text = str(f.metadata.get("help") or help_text(part, f.name) or _fallback(part, f.name))
        if isinstance(value, LatencyHistogram):
            name, _ = metric_name(part, f.name)
            if not name.endswith("_seconds"):
                name += "_seconds"
            yield histogram_family(name, text + ", in seconds", value)
            continue
        number = _number(value)
        if number is None:
            continue
        name, scale = metric_name(part, f.name)
        if metric_kind(f.name, f.metadata) == "gauge":
            yield GaugeMetricFamily(name, text, value=number * scale)
        else:
            yield CounterMetricFamily(name, text, value=number * scale)
    yield from groups.values()


def _fallback(part: str, field_name: str) -> str:
    """The help of a field nobody described yet (``metric_help.py`` is where to describe it)."""
    return f"{part} {field_name.replace('_', ' ')} (undescribed)"


def exported_stats(parts: Parts) -> tuple[tuple[str, DataclassInstance], ...]:
    """Each part's stats dataclass with the name its metrics carry (``disruptor_<name>_...``)."""
    return (
        ("membership", parts.membership.stats),
        ("bundles", parts.store.stats),
        ("workers", parts.pool.stats),
        ("snippets", parts.snippets.stats),
        ("jobs", parts.jobs.stats),
    )


class PeerCollector(Collector):
    """Reads the peer's parts at scrape time; never holds numbers of its own."""

    def __init__(self, parts: Parts, http: HttpStats) -> None:
        self._parts = parts
        self._http = http

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        for build in (self._info, self._members, self._bundles, self._stats, self._http_families):
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
        info = GaugeMetricFamily(
            f"{PREFIX}_peer_info",
            "This peer: address, cluster name and software version",
            labels=["address", "cluster", "version"],
        )
        parts = self._parts
        info.add_metric([str(parts.address), parts.cluster_name, __version__], 1.0)
        yield info

    def _members(self) -> Iterator[Metric]:
        counts = dict.fromkeys(MEMBER_STATES, 0)
        for member in self._parts.membership.members():
            if member.state in counts:
                counts[member.state] += 1
        family = GaugeMetricFamily(
            f"{PREFIX}_members", "Cluster members this peer knows, by state", labels=["state"]
        )
        for state, n in counts.items():
            family.add_metric([state], float(n))
        yield family

    def _bundles(self) -> Iterator[Metric]:
        infos = self._parts.store.list()
        held = float(len(infos))
        yield GaugeMetricFamily(f"{PREFIX}_bundles_held", "Bundles this peer holds", value=held)
        size = float(sum(i.size for i in infos))
        text = "Bytes of the bundles this peer holds (their archives)"
        yield GaugeMetricFamily(f"{PREFIX}_bundles_held_bytes", text, value=size)

    def _stats(self) -> Iterator[Metric]:
        for name, stats in exported_stats(self._parts):
            yield from stats_families(name, stats)

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
            "Time to serve HTTP requests, in seconds, by method and route pattern",
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


def registry_for(parts: Parts, http: HttpStats) -> CollectorRegistry:
    """A registry of this peer's own (never the global one): its parts, its HTTP counters, and the
    stock names (process_cpu_seconds_total, python_info, python_gc_*...) that ready-made
    dashboards and alerts expect."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PeerCollector(parts, http))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def expose(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The registry's exposition and its content type, as ``accept`` asks (OpenMetrics or
    Prometheus' text format)."""
    encode, content_type = choose_encoder(accept)
    return bytes(encode(registry)), str(content_type)
