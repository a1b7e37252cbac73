"""The dashboard's picture of the cluster, as one JSON-ready dict built from the peer's parts.

Peers (this one and every member it knows, with state, since, last seen, load), workers per bundle,
bundles held, jobs in flight and recently finished, the throughput/latency history, and a few
totals. The page and ``GET /dashboard/snapshot`` both use it.

Rule: read-only and defensive. A part that is missing (not built on this peer) or fails to answer
leaves its section empty and named in ``unavailable``; it never fails the snapshot.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..address import Address
from ..version import __version__

log = logging.getLogger("disruptor.dashboard")

# Above this a time is a Unix time; below it, a monotonic clock reading (converted on the way out).
UNIX_TIME_MIN_S = 1_000_000_000.0
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


def wall_time(value: Any, now_s: float, now_mono_s: float) -> float | None:
    """A Unix time for a timestamp that may be Unix or monotonic."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    if value >= UNIX_TIME_MIN_S:
        return float(value)
    return now_s - (now_mono_s - float(value))


def _call_first(part: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        method = getattr(part, name, None)
        if callable(method):
            return method()
    raise LookupError(f"none of {names}")


class SnapshotBuilder:
    """Builds snapshots of one peer; holds nothing but the peer and its clocks."""

    def __init__(
        self,
        peer: Any,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._peer = peer
        self._clock = clock
        self._monotonic = monotonic
        self._recent_key: tuple[Any, ...] | None = None
        self._recent: list[Any] = []
        self._recent_at_s = -math.inf

    def build(self) -> dict[str, Any]:
        now_s, now_mono_s = self._clock(), self._monotonic()
        unavailable: list[str] = []

        def section(name: str, make: Callable[[], Any], empty: Any) -> Any:
            try:
                return make()
            except Exception as exc:
                if not isinstance(exc, LookupError | AttributeError):
                    log.exception("dashboard: %s failed", name)
                unavailable.append(name)
                return empty

        peer = self._peer
        snapshot: dict[str, Any] = {
            "now": now_s,
            "self": self._self(now_s),
            "peers": section("peers", lambda: self._peers(now_s, now_mono_s), [self._me(now_s)]),
            "workers": section("workers", self._workers, []),
            "bundles": section("bundles", self._bundles, []),
            "jobs": section("jobs", lambda: self._jobs(now_s, now_mono_s), _no_jobs()),
            "series": section("series", lambda: peer.metrics.series.to_json(), []),
            "stats": section("stats", self._stats, {}),
        }
        snapshot["unavailable"] = unavailable
        return snapshot

    def _self(self, now_s: float) -> dict[str, Any]:
        peer = self._peer
        metrics = getattr(peer, "metrics", None)
        started = getattr(metrics, "started_s", None)
        return {
            "address": str(peer.address),
            "url": peer.url + "/",
            "cluster": str(getattr(peer.settings, "cluster_name", "")),
            "version": __version__,
            "uptime_s": None if started is None else max(0.0, now_s - started),
        }

    def _me(self, now_s: float) -> dict[str, Any]:
        """This peer's own row, used when membership is not running."""
        peer = self._peer
        return {
            "address": str(peer.address),
            "url": peer.url + "/",
            "state": "alive",
            "self": True,
            "since": getattr(getattr(peer, "metrics", None), "started_s", None),
            "last_seen": now_s,
            "incarnation": None,
            "load": jsonable(self._own_load()),
            "bundles": None,
            "version": __version__,
        }

    def _own_load(self) -> Any:
        provider = getattr(self._peer, "metadata", None) or getattr(self._peer, "peer_meta", None)
        if callable(provider):
            meta = provider()
            return getattr(meta, "load", None)
        return None

    def _peers(self, now_s: float, now_mono_s: float) -> list[dict[str, Any]]:
        membership = getattr(self._peer, "membership", None)
        if membership is None:
            raise LookupError("membership")
        own = str(self._peer.address)
        rows: list[dict[str, Any]] = []
        for member in list(membership.members())[:ROWS_MAX]:
            address = str(getattr(member, "address", ""))
            meta = getattr(member, "meta", None)
            if meta is None and hasattr(membership, "meta_of"):
                meta = membership.meta_of(getattr(member, "address", None))
            bundles = getattr(meta, "bundles", None)
            is_self = bool(getattr(member, "is_self", False)) or address == own
            rows.append(
                {
                    "address": address,
                    "url": f"http://{address}/",
                    "state": str(jsonable(getattr(member, "state", "unknown"))).lower(),
                    "self": is_self,
                    "since": wall_time(getattr(member, "since", None), now_s, now_mono_s),
                    "last_seen": (
                        now_s
                        if is_self
                        else wall_time(getattr(member, "last_seen", None), now_s, now_mono_s)
                    ),
                    "incarnation": jsonable(getattr(member, "incarnation", None)),
                    "load": jsonable(getattr(meta, "load", None)),
                    "bundles": None if bundles is None else len(bundles),
                    "version": jsonable(getattr(meta, "version", None)),
                }
            )
        if not any(row["self"] for row in rows):
            rows.append(self._me(now_s))
        order = {"alive": 0, "suspect": 1, "dead": 2, "left": 3}
        rows.sort(key=lambda r: (not r["self"], order.get(r["state"], 4), r["address"]))
        return rows

    def _workers(self) -> list[dict[str, Any]]:
        """One row per bundle: its workers by state, restarts and tasks done."""
        pool = getattr(self._peer, "pool", None)
        if pool is None:
            raise LookupError("pool")
        groups: dict[str, dict[str, Any]] = {}
        for info in _call_first(pool, ("workers",)):
            w = jsonable(info)
            bundle = str(w.get("bundle", ""))
            row = groups.setdefault(
                bundle,
                {
                    "bundle": bundle,
                    "name": w.get("name"),
                    "workers": 0,
                    "running": 0,
                    "busy": 0,
                    "restarts": 0,
                    "tasks_done": 0,
                    "failed": None,
                },
            )
            state = str(w.get("state", ""))
            row["workers"] += 1
            row["running"] += state in RUNNING_WORKER_STATES
            row["busy"] += state == "busy"
            row["restarts"] += int(w.get("restarts") or 0)
            row["tasks_done"] += int(w.get("tasks_done") or 0)
        failed = getattr(pool, "failed_bundles", None)
        for sha1, why in (failed() if callable(failed) else {}).items():
            row = groups.setdefault(
                sha1,
                {
                    "bundle": sha1,
                    "name": None,
                    "workers": 0,
                    "running": 0,
                    "busy": 0,
                    "restarts": 0,
                    "tasks_done": 0,
                    "failed": None,
                },
            )
            row["failed"] = str(why)
        return sorted(groups.values(), key=lambda r: (str(r["name"]), r["bundle"]))[:ROWS_MAX]

    def _bundles(self) -> list[dict[str, Any]]:
        store = getattr(self._peer, "store", None)
        if store is None:
            raise LookupError("store")
        rows: list[dict[str, Any]] = []
        for info in list(store.list())[:ROWS_MAX]:
            row = jsonable(info)
            if not isinstance(row, dict):
                row = {"sha1": str(info)}
            if "signer" not in row and "key_id" not in row:
                row["key_id"] = self._signer(store, row.get("sha1"))
            rows.append(row)
        return rows

    def _signer(self, store: Any, sha1: Any) -> str | None:
        if not isinstance(sha1, str) or not hasattr(store, "manifest"):
            return None
        try:
            return str(getattr(store.manifest(sha1), "key_id", None) or "") or None
        except Exception:
            return None

    def _jobs(self, now_s: float, now_mono_s: float) -> dict[str, Any]:
        jobs = getattr(self._peer, "jobs", None)
        if jobs is None:
            raise LookupError("jobs")
        in_flight = _call_first(jobs, ("in_flight", "running", "active"))
        recent = self._recent_jobs(jobs)
        return {
            "in_flight": [_job_row(j, now_s, now_mono_s) for j in list(in_flight)[:ROWS_MAX]],
            "recent": recent,
        }

    def _recent_jobs(self, jobs: Any) -> list[Any]:
        """The runner's recently finished jobs, asked for again only after another one finished.

        Listing them costs a summary per kept job, and nothing in it changes between finishes.
        """
        stats = getattr(jobs, "stats", None)
        key = tuple(getattr(stats, n, None) for n in ("completed", "failed", "cancelled"))
        now_mono_s = self._monotonic()
        stale = stats is None or key != self._recent_key
        # Under a stream of short jobs it changes every second; refresh it a little less often.
        if stale and now_mono_s - self._recent_at_s >= RECENT_REFRESH_S:
            method = jobs.recent
            if "limit" in inspect.signature(method).parameters:
                rows = list(method(limit=RECENT_JOBS_MAX))
            else:
                rows = list(method())[:RECENT_JOBS_MAX]
            now_s = self._clock()
            self._recent = [_job_row(j, now_s, now_mono_s) for j in rows]
            self._recent_key, self._recent_at_s = key, now_mono_s
        return self._recent

    def _stats(self) -> dict[str, Any]:
        peer = self._peer
        out: dict[str, Any] = {}
        for attr in ("membership", "store", "pool", "snippets", "jobs"):
            stats = getattr(getattr(peer, attr, None), "stats", None)
            if stats is not None and dataclasses.is_dataclass(stats):
                out[attr] = {k: v for k, v in jsonable(stats).items() if isinstance(v, int | float)}
        http = getattr(getattr(peer, "metrics", None), "http", None)
        if http is not None:
            out["http"] = {
                "requests": sum(http.requests.values()),
                "errors": sum(n for (_, _, s), n in http.requests.items() if s >= 500),
                "in_flight": http.in_flight,
            }
        return out


def _job_row(job: Any, now_s: float, now_mono_s: float) -> Any:
    row = jsonable(job)
    if not isinstance(row, dict):
        return {"id": str(job)}
    for key in ("started", "started_at", "finished", "finished_at", "submitted_at", "created"):
        if key in row:
            row[key] = wall_time(row[key], now_s, now_mono_s)
    if "kind" not in row:
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
