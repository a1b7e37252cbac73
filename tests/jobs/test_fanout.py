from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from disruptor.errors import InvalidPayload, PeerUnreachable
from disruptor.jobs.fanout import choose_targets, deploy
from disruptor.jobs.policies import PeerView


class RecordingCalls:
    """Stands in for the HTTP calls: records who was asked to fetch from whom."""

    def __init__(self, broken: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.fetches: list[tuple[str, str]] = []
        self.broken = broken

    async def send_json(self, peer: str, method: str, path: str, body: Any) -> Any:
        assert (method, path) == ("POST", "/tasks/fetch")
        if peer in self.broken:
            raise PeerUnreachable(f"{peer}: refused")
        self.fetches.append((peer, body["sources"][0]))
        return {"held": True}


class Runner:
    def __init__(self, holders: list[str], calls: RecordingCalls) -> None:
        self._holders = holders
        self.calls = calls
        self.rng = random.Random(5)

    def holders(self, sha1: str) -> list[str]:
        return list(self._holders)


async def test_deploy_spreads_copies_in_doubling_waves() -> None:
    targets = [f"p{i}:1" for i in range(16)]
    calls = RecordingCalls()
    failed = await deploy(Runner(["p0:1"], calls), "s" * 40, targets)  # type: ignore[arg-type]
    assert failed == {}
    assert sorted(t for t, _ in calls.fetches) == sorted(targets[1:])
    # Holders double each wave: 1, 2, 4, 8 -> the first holder sends one copy per wave (4), not
    # fifteen.
    assert max(Counter(source for _, source in calls.fetches).values()) <= 4


async def test_deploy_reports_peers_that_cannot_fetch() -> None:
    calls = RecordingCalls(broken={"p2:1"})
    failed = await deploy(Runner(["p0:1"], calls), "s" * 40, ["p0:1", "p1:1", "p2:1"])  # type: ignore[arg-type]
    assert set(failed) == {"p2:1"} and "refused" in failed["p2:1"]
    nobody = await deploy(Runner([], RecordingCalls()), "s" * 40, ["p1:1"])  # type: ignore[arg-type]
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
