from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from disruptor.address import Address
from disruptor.api.snapshot import RECENT_REFRESH_S, SnapshotBuilder, from_monotonic, jsonable
from disruptor.http_stats import HttpStats
from disruptor.timeseries import Series

NOW, MONO = 1_800_000_000.0, 500.0


@dataclass
class Counted:
    runs: int = 3


@dataclass(frozen=True)
class Load:
    tasks_running: int = 2
    queue_length: int = 1
    worker_slots_free: int = 3


@dataclass(frozen=True)
class Meta:
    load: Load = field(default_factory=Load)
    bundles: tuple[str, ...] = ("a" * 40,)
    version: str = "0.1.0"


@dataclass(frozen=True)
class Member:
    address: Address
    state: str
    incarnation: int
    since: float
    last_seen: float
    meta: Meta
    is_self: bool = False


class Membership:
    stats = Counted()

    def members(self) -> list[Member]:
        return [
            Member(Address("10.0.0.3", 1), "dead", 4, NOW - 30, NOW - 40, Meta()),
            Member(Address("10.0.0.1", 1), "alive", 1, NOW - 300, NOW, Meta(), is_self=True),
            Member(Address("10.0.0.2", 1), "suspect", 2, NOW - 5, NOW - 3, Meta()),
        ]


@dataclass
class JobStats:
    completed: int = 1
    failed: int = 0
    cancelled: int = 0


class Jobs:
    def __init__(self, completed: int = 1) -> None:
        self.stats = JobStats(completed)
        self.recent_calls = 0

    def in_flight(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "j2",
                "state": "running",
                "progress": {"total": 10, "done": 4, "failed": 0},
                "snippet": "def handle(item):\n    return item\n" * 50,
                "created": MONO - 2.0,  # loop time
            }
        ]

    def recent(self) -> list[dict[str, Any]]:
        self.recent_calls += 1
        return [{"id": f"old{i}", "state": "completed", "bundle": "b" * 40} for i in range(100)]


@dataclass(frozen=True)
class Worker:
    bundle: str
    name: str
    state: str
    restarts: int
    tasks_done: int


class Pool:
    stats = Counted()

    def workers(self) -> list[Worker]:
        return [
            Worker("b" * 40, "primes", "ready", 1, 10),
            Worker("b" * 40, "primes", "busy", 0, 5),
            Worker("c" * 40, "wordcount", "starting", 2, 0),
        ]

    def failed_bundles(self) -> dict[str, str]:
        return {"d" * 40: "crash loop: 5 crashes in 60 s"}


class Store:
    stats = Counted()

    def list(self) -> list[Any]:
        return []


class BrokenStore(Store):
    def list(self) -> list[Any]:
        raise RuntimeError("disk on fire")


class NoMembers:
    stats = Counted()

    def members(self) -> list[Member]:
        return []


clock = {"mono": MONO}


def builder(**given: Any) -> SnapshotBuilder:
    """A snapshot builder over fake parts: the ones given, plain working ones for the others."""
    clock["mono"] = MONO
    parts = {
        "membership": NoMembers(),
        "store": Store(),
        "pool": Pool(),
        "snippets": SimpleNamespace(stats=Counted()),
        "jobs": Jobs(completed=0),
        **given,
    }
    peer = SimpleNamespace(
        address=Address("10.0.0.1", 1), url="http://10.0.0.1:1", cluster_name="disruptor", **parts
    )
    metrics = SimpleNamespace(http=HttpStats(), series=Series(), started_s=NOW - 60)
    return SnapshotBuilder(peer, metrics, clock=lambda: NOW, monotonic=lambda: clock["mono"])


def test_peers_come_from_membership_self_first_then_by_state() -> None:
    snapshot = builder(membership=Membership()).build()
    peers = snapshot["peers"]
    assert [(p["address"], p["state"]) for p in peers] == [
        ("10.0.0.1:1", "alive"),
        ("10.0.0.2:1", "suspect"),
        ("10.0.0.3:1", "dead"),
    ]
    assert peers[0]["self"] and peers[0]["url"] == "http://10.0.0.1:1/"
    assert peers[1]["load"] == {"tasks_running": 2, "queue_length": 1, "worker_slots_free": 3}
    assert peers[2]["since"] == NOW - 30 and peers[2]["bundles"] == 1
    assert "peers" not in snapshot["unavailable"]


def test_workers_are_grouped_per_bundle_with_failures() -> None:
    rows = {r["name"] or r["bundle"][:1]: r for r in builder(pool=Pool()).build()["workers"]}
    assert rows["primes"] == {
        "bundle": "b" * 40,
        "name": "primes",
        "workers": 2,
        "running": 2,
        "busy": 1,
        "restarts": 1,
        "tasks_done": 15,
        "failed": None,
    }
    assert rows["wordcount"]["running"] == 0 and rows["wordcount"]["restarts"] == 2
    assert rows["d"]["failed"].startswith("crash loop")


def test_jobs_are_trimmed_and_timed_and_recent_is_listed_only_after_a_finish() -> None:
    jobs = Jobs()
    build = builder(jobs=jobs)
    snapshot = build.build()
    (running,) = snapshot["jobs"]["in_flight"]
    assert running["created"] == NOW - 2.0  # a loop time became a Unix time
    assert running["kind"] == "snippet" and "snippet" not in running
    assert len(snapshot["jobs"]["recent"]) == 20
    assert snapshot["jobs"]["recent"][0]["kind"] == "bundle"
    build.build()
    assert jobs.recent_calls == 1
    jobs.stats.completed += 1
    build.build()
    assert jobs.recent_calls == 1  # changed, but listed under RECENT_REFRESH_S ago
    clock["mono"] += RECENT_REFRESH_S
    build.build()
    assert jobs.recent_calls == 2


def test_a_broken_part_leaves_its_section_empty_and_is_named(caplog: Any) -> None:
    snapshot = builder(store=BrokenStore()).build()
    assert snapshot["bundles"] == []
    assert snapshot["unavailable"] == ["bundles"]
    assert "disk on fire" in caplog.text  # never silently
    # Membership lists nobody yet: this peer's own row stands in.
    assert [p["address"] for p in snapshot["peers"]] == ["10.0.0.1:1"]
    assert snapshot["self"]["uptime_s"] == 60
    json.dumps(snapshot)


def test_jsonable_and_monotonic_times() -> None:
    assert jsonable({"a": (Address("h", 1), {3, 1}), "b": float("nan")}) == {
        "a": ["h:1", [1, 3]],
        "b": None,
    }
    assert from_monotonic(MONO - 5, NOW, MONO) == NOW - 5
    assert from_monotonic("x", NOW, MONO) is None
