"""The dashboard's picture of the cluster, as one JSON-ready dict built from the peer's parts.

Peers (this one and every member it knows, with state, since, last seen, load), workers per bundle,
bundles held, jobs in flight and recently finished, the throughput/latency history, and a few
totals. The page and ``GET /dashboard/snapshot`` both use it.

It reads the typed ``Parts`` record and the metrics part the composition root hands it. Times
are Unix seconds on the way out: members' times already are (the membership driver converts
them); jobs' ``created`` and ``finished`` are event-loop (monotonic) times, converted here.

Rule: read-only and defensive. A part that fails to answer leaves its section empty and named in
``unavailable``, with the failure logged; it never fails the snapshot.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..address import Address
from ..membership.members import MemberView
from ..metrics import Metrics
from ..parts import Parts
from ..version import __version__

log = logging.getLogger("disruptor.dashboard")

RECENT_JOBS_MAX = 20
RECENT_REFRESH_S = 2.0
# Worker states that count as up (able to take or doing work).
RUNNING_WORKER_STATES = frozenset({"ready", "busy"})
ROWS_MAX = 500


def jsonable(value: Any) -> Any:
    """Plain JSON data from dataclasses, enums, addresses, paths, tuples and sets."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Address | Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return jsonable(to_json())
    return str(value)


def from_monotonic(value: Any, now_s: float, now_mono_s: float) -> float | None:
    """The Unix time of a monotonic clock reading (the event loop's clock, on which jobs run)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return now_s - (now_mono_s - float(value))


def _worker_row(bundle: str, name: str | None) -> dict[str, Any]:
    return {
        "bundle": bundle,
        "name": name,
        "workers": 0,
        "running": 0,
        "busy": 0,
        "restarts": 0,
        "tasks_done": 0,
        "failed": None,
    }


class SnapshotBuilder:
    """Builds snapshots of one peer from its parts; holds nothing but them and its clocks."""

    def __init__(
        self,
        parts: Parts,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parts = parts
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._recent_key: tuple[int, ...] | None = None
        self._recent: list[Any] = []
        self._recent_at_s = -math.inf

    def build(self) -> dict[str, Any]:
        now_s, now_mono_s = self._clock(), self._monotonic()
        unavailable: list[str] = []

        def section(name: str, make: Callable[[], Any], empty: Any) -> Any:
            try:
                return make()
            except Exception:
                log.exception("dashboard: %s failed", name)
                unavailable.append(name)
                return empty

        snapshot: dict[str, Any] = {
            "now": now_s,
            "self": self._self(now_s),
            "peers": section("peers", lambda: self._peers(now_s), [self._me(now_s)]),
            "workers": section("workers", self._workers, []),
            "bundles": section("bundles", self._bundles, []),
            "jobs": section("jobs", lambda: self._jobs(now_s, now_mono_s), _no_jobs()),
            "series": section("series", self._metrics.series.to_json, []),
            "stats": section("stats", self._stats, {}),
        }
        snapshot["unavailable"] = unavailable
        return snapshot

    def _self(self, now_s: float) -> dict[str, Any]:
        parts = self._parts
        return {
            "address": str(parts.address),
            "url": parts.url + "/",
            "cluster": parts.cluster_name,
            "version": __version__,
            "uptime_s": max(0.0, now_s - self._metrics.started_s),
        }

    def _me(self, now_s: float) -> dict[str, Any]:
        """This peer's own row, used while membership does not list it yet."""
        parts = self._parts
        return {
            "address": str(parts.address),
            "url": parts.url + "/",
            "state": "alive",
            "self": True,
            "since": self._metrics.started_s,
            "last_seen": now_s,
            "incarnation": None,
            "load": None,
            "bundles": None,
            "version": __version__,
        }

    def _peers(self, now_s: float) -> list[dict[str, Any]]:
        rows = [self._member_row(m, now_s) for m in self._parts.membership.members()[:ROWS_MAX]]
        if not any(row["self"] for row in rows):
            rows.append(self._me(now_s))
        order = {"alive": 0, "suspect": 1, "dead": 2, "left": 3}
        rows.sort(key=lambda r: (not r["self"], order.get(r["state"], 4), r["address"]))
        return rows

    def _member_row(self, member: MemberView, now_s: float) -> dict[str, Any]:
        address = str(member.address)
        is_self = member.is_self or address == str(self._parts.address)
        return {
            "address": address,
            "url": f"http://{address}/",
            "state": member.state,
            "self": is_self,
            "since": member.since,
            "last_seen": now_s if is_self else member.last_seen,
            "incarnation": member.incarnation,
            "load": jsonable(member.meta.load),
            "bundles": len(member.meta.bundles),
            "version": member.meta.version,
        }

    def _workers(self) -> list[dict[str, Any]]:
        """One row per bundle: its workers by state, restarts and tasks done."""
        pool = self._parts.pool
        groups: dict[str, dict[str, Any]] = {}
        for info in pool.workers():
            row = groups.setdefault(info.bundle, _worker_row(info.bundle, info.name))
            row["workers"] += 1
            row["running"] += info.state in RUNNING_WORKER_STATES
            row["busy"] += info.state == "busy"
            row["restarts"] += info.restarts
            row["tasks_done"] += info.tasks_done
        for sha1, why in pool.failed_bundles().items():
            groups.setdefault(sha1, _worker_row(sha1, None))["failed"] = why
        return sorted(groups.values(), key=lambda r: (str(r["name"]), r["bundle"]))[:ROWS_MAX]

    def _bundles(self) -> list[dict[str, Any]]:
        return [jsonable(info) for info in self._parts.store.list()[:ROWS_MAX]]

    def _jobs(self, now_s: float, now_mono_s: float) -> dict[str, Any]:
        in_flight = self._parts.jobs.in_flight()[:ROWS_MAX]
        return {
            "in_flight": [_job_row(j, now_s, now_mono_s) for j in in_flight],
            "recent": self._recent_jobs(),
        }

    def _recent_jobs(self) -> list[Any]:
        """The recently finished jobs, asked for again only after another one finished.

        Listing them costs a summary per kept job, and nothing in it changes between finishes.
        """
        jobs = self._parts.jobs
        key = (jobs.stats.completed, jobs.stats.failed, jobs.stats.cancelled)
        now_mono_s = self._monotonic()
        # Under a stream of short jobs it changes every second; refresh it a little less often.
        if key != self._recent_key and now_mono_s - self._recent_at_s >= RECENT_REFRESH_S:
            rows = jobs.recent()[:RECENT_JOBS_MAX]
            now_s = self._clock()
            self._recent = [_job_row(j, now_s, now_mono_s) for j in rows]
            self._recent_key, self._recent_at_s = key, now_mono_s
        return self._recent

    def _stats(self) -> dict[str, Any]:
        parts = self._parts
        out: dict[str, Any] = {}
        for name, stats in (
            ("membership", parts.membership.stats),
            ("store", parts.store.stats),
            ("pool", parts.pool.stats),
            ("snippets", parts.snippets.stats),
            ("jobs", parts.jobs.stats),
        ):
            out[name] = {k: v for k, v in jsonable(stats).items() if isinstance(v, int | float)}
        http = self._metrics.http
        out["http"] = {
            "requests": sum(http.requests.values()),
            "errors": sum(n for (_, _, s), n in http.requests.items() if s >= 500),
            "in_flight": http.in_flight,
        }
        return out


def _job_row(job: dict[str, Any], now_s: float, now_mono_s: float) -> dict[str, Any]:
    row = dict(job)
    for key in ("created", "finished"):
        if key in row:
            row[key] = from_monotonic(row[key], now_s, now_mono_s)
    if "bundle" in row:
        row["kind"] = "bundle"
    elif "snippet" in row or "snippet_sha1" in row:
        row["kind"] = "snippet"
    # Sources and results stay out of a snapshot sent every second to every open browser.
    for bulky in ("snippet", "results", "items"):
        row.pop(bulky, None)
    return row


def _no_jobs() -> dict[str, list[Any]]:
    return {"in_flight": [], "recent": []}
