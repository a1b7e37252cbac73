from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from disruptor.errors import InvalidPayload, PeerUnreachable
from disruptor.jobs.directory import PeerDirectory
from disruptor.jobs.fanout import FanOut, choose_targets
from disruptor.jobs.faults import HoldDown
from disruptor.jobs.policies import PeerView


class RecordingLink:
    """Stands in for the peer link: records who was asked to fetch from whom."""

    def __init__(self, broken: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.fetches: list[tuple[str, str]] = []
        self.broken = broken

    async def call_json(self, method: str, peer: str, target: str, body: Any = None) -> Any:
        assert (method, target) == ("POST", "/tasks/fetch")
        if peer in self.broken:
            raise PeerUnreachable(f"{peer}: refused")
        self.fetches.append((peer, body["sources"][0]))
        return {"held": True}


class Cluster:
    """Membership as the job layer sees it: every target live, ``holders`` holding the bundle."""

    def __init__(self, peers: list[str], holders: list[str]) -> None:
        self.peers, self.holders = peers, holders

    def live_addresses(self) -> list[str]:
        return list(self.peers)

    def load_of(self, address: str) -> float | None:
        return 0.0

    def holds(self, address: str, sha1: str) -> bool:
        return address in self.holders

    def subscribe(self, callback: Any) -> None:
        pass


class NoBundles:
    def has(self, sha1: str) -> bool:
        return False


def fanout(peers: list[str], holders: list[str], link: RecordingLink) -> FanOut:
    cluster = Cluster(peers, holders)
    directory = PeerDirectory("me:1", cluster, NoBundles(), HoldDown(), {}, random.Random(5))
    return FanOut(directory, link, lambda: 0.0)  # type: ignore[arg-type]


async def test_deploy_fetches_everywhere_at_once_spreading_first_sources() -> None:
    targets = [f"p{i}:1" for i in range(16)]
    link = RecordingLink()
    failed = await fanout(targets, ["p0:1", "p1:1", "p2:1"], link).deploy("s" * 40, targets)
    assert failed == {}
    assert sorted(t for t, _ in link.fetches) == sorted(targets[3:])
    # Each target starts with a different holder, in turn: the first sources spread evenly.
    assert sorted(Counter(source for _, source in link.fetches).values()) == [4, 4, 5]


async def test_deploy_reports_peers_that_cannot_fetch() -> None:
    link = RecordingLink(broken={"p2:1"})
    peers = ["p0:1", "p1:1", "p2:1"]
    failed = await fanout(peers, ["p0:1"], link).deploy("s" * 40, peers)
    assert set(failed) == {"p2:1"} and "refused" in failed["p2:1"]
    nobody = await fanout(["p1:1"], [], RecordingLink()).deploy("s" * 40, ["p1:1"])
    assert "no peer holds" in nobody["p1:1"]


def test_targets_all_count_or_list() -> None:
    views = [PeerView("a:1", load=5), PeerView("b:1", load=0), PeerView("c:1", load=1)]
    rng = random.Random(0)
    assert choose_targets("all", views, "a:1", rng) == ["a:1", "b:1", "c:1"]
    assert choose_targets(2, views, "a:1", rng) == ["a:1", "b:1"]
    assert choose_targets(["c:1", "b:1", "c:1"], views, "a:1", rng) == ["b:1", "c:1"]
    for bad in (0, True, [], "some", ["nope"]):
        with pytest.raises(InvalidPayload):
            choose_targets(bad, views, "a:1", rng)
