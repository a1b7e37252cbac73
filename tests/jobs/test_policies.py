from __future__ import annotations

import random
from collections import Counter

import pytest

from disruptor.errors import InvalidPayload
from disruptor.jobs.policies import (
    LeastConnections,
    LeastLoaded,
    PeerView,
    RoundRobin,
    Weighted,
    make_policy,
    pick_peers,
)

PEERS = [PeerView("a:1"), PeerView("b:1"), PeerView("c:1")]


def test_round_robin_spreads_evenly() -> None:
    policy, rng = RoundRobin(), random.Random(1)
    counts = Counter(policy.choose(PEERS, rng) for _ in range(300))
    assert counts == {"a:1": 100, "b:1": 100, "c:1": 100}


def test_round_robin_keeps_its_turn_when_a_peer_leaves() -> None:
    policy, rng = RoundRobin(), random.Random(1)
    assert [policy.choose(PEERS, rng) for _ in range(2)] == ["a:1", "b:1"]
    assert policy.choose([PEERS[0], PEERS[2]], rng) == "c:1"
    assert policy.choose([PEERS[0], PEERS[2]], rng) == "a:1"


def test_weighted_follows_weights_exactly_over_each_window() -> None:
    peers = [PeerView("a:1", weight=5), PeerView("b:1", weight=3), PeerView("c:1", weight=2)]
    policy, rng = Weighted(), random.Random(1)
    first = Counter(policy.choose(peers, rng) for _ in range(10))
    assert first == {"a:1": 5, "b:1": 3, "c:1": 2}
    many = Counter(policy.choose(peers, rng) for _ in range(1000))
    assert many == {"a:1": 500, "b:1": 300, "c:1": 200}


def test_weighted_interleaves_rather_than_bursts() -> None:
    peers = [PeerView("a:1", weight=2), PeerView("b:1", weight=1)]
    policy, rng = Weighted(), random.Random(1)
    assert [policy.choose(peers, rng) for _ in range(6)] == ["a:1", "b:1", "a:1"] * 2


def test_zero_weight_gets_nothing() -> None:
    peers = [PeerView("a:1", weight=1), PeerView("b:1", weight=0)]
    policy, rng = Weighted(), random.Random(1)
    assert {policy.choose(peers, rng) for _ in range(50)} == {"a:1"}


def test_least_loaded_never_picks_the_most_loaded_of_two() -> None:
    peers = [PeerView("a:1", load=10), PeerView("b:1", load=0)]
    policy, rng = LeastLoaded(), random.Random(7)
    assert {policy.choose(peers, rng) for _ in range(100)} == {"b:1"}


def test_least_loaded_avoids_the_busiest_peer_of_many() -> None:
    peers = [PeerView(f"p{i}:1", load=float(i)) for i in range(10)]
    policy, rng = LeastLoaded(), random.Random(3)
    counts = Counter(policy.choose(peers, rng) for _ in range(2000))
    # The most loaded peer can only win a sample of two against nobody: never.
    assert counts["p9:1"] == 0
    assert counts["p0:1"] > counts["p5:1"] > counts["p8:1"]


def test_least_loaded_counts_our_own_tasks_in_flight() -> None:
    peers = [PeerView("a:1", load=0, in_flight=5), PeerView("b:1", load=2)]
    assert LeastLoaded().choose(peers, random.Random(0)) == "b:1"


def test_least_loaded_keeps_a_task_here_unless_another_peer_is_clearly_less_loaded() -> None:
    policy, rng = LeastLoaded(), random.Random(1)

    def chosen(here_load: float, other_load: float) -> set[str]:
        peers = [PeerView("me:1", load=here_load, local=True), PeerView("b:1", load=other_load)]
        return {policy.choose(peers, rng) for _ in range(40)}

    assert chosen(0, 0) == {"me:1"}, "no trip for nothing"
    assert chosen(6, 3) == {"me:1"}, "a few items queued here beat a trip"
    assert chosen(40, 0) == {"b:1"}, "a long queue here sends the task where it can start"
    assert chosen(40, 30) == {"me:1"}


def test_least_connections_picks_fewest_in_flight() -> None:
    peers = [
        PeerView("a:1", in_flight=3),
        PeerView("b:1", in_flight=1),
        PeerView("c:1", in_flight=2),
    ]
    assert LeastConnections().choose(peers, random.Random(0)) == "b:1"


def test_same_seed_same_choices() -> None:
    peers = [PeerView(f"p{i}:1", load=float(i % 3)) for i in range(8)]
    runs = [
        [LeastLoaded().choose(peers, rng) for _ in range(50)]
        for rng in (random.Random(42), random.Random(42))
    ]
    assert runs[0] == runs[1]


def test_pick_peers_prefers_self_then_least_loaded() -> None:
    peers = [PeerView("a:1", load=9), PeerView("b:1", load=1), PeerView("c:1", load=5)]
    assert [p.address for p in pick_peers(peers, 2, random.Random(0), prefer="a:1")] == [
        "a:1",
        "b:1",
    ]
    assert [p.address for p in pick_peers(peers, 2, random.Random(0))] == ["b:1", "c:1"]


def test_unknown_policy_is_a_bad_request() -> None:
    with pytest.raises(InvalidPayload, match="unknown policy"):
        make_policy("fastest")
