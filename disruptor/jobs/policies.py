"""Distribution policies: which live peer gets the next task.

Each policy sees the candidate peers as ``PeerView`` (gossiped load, this coordinator's tasks in
flight there, configured weight) and picks one. Rule: policies are deterministic given the random
generator they are handed (never the module-level ``random``), so a placement replays from a seed.

- ``least-loaded`` (default): power of two choices — sample two peers, take the one with the lower
  load (gossiped load plus our own tasks in flight there). Sampling two instead of taking the
  global minimum keeps many coordinators holding the same stale figures from all piling onto one
  peer. This peer itself wins unless the choice is clearly less loaded (``LOCAL_FACTOR``,
  ``LOCAL_SLACK``): a task run here costs no trip to another peer, which for a small task is
  most of its cost, while one that would wait long here still goes where it can start.
- ``round-robin``: each peer in turn (by address order), so tasks spread evenly.
- ``weighted``: smooth weighted round-robin over the configured weights: over any window of W tasks
  (W = the sum of the weights) each peer receives exactly its weight's share, interleaved.
- ``least-connections``: the peer with the fewest of this coordinator's tasks in flight.
- ``broadcast`` is not a placement: the dispatcher gives every peer the whole job once.

Adding a policy is one class with a ``name`` and a ``choose``, decorated with ``@register``: the
API accepts its name, and jobs share one instance of it (``PolicySet``), from then on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import InvalidPayload

BROADCAST = "broadcast"


# Another peer takes a task from this one only when its load is below this fraction of ours,
# less this many items: a trip costs more than waiting behind a few small items here.
LOCAL_FACTOR = 0.5
LOCAL_SLACK = 4.0


@dataclass(frozen=True)
class PeerView:
    address: str
    load: float = 0.0  # tasks running + queued on that peer (gossiped; this peer's own, read now)
    in_flight: int = 0  # this coordinator's tasks out on that peer now
    weight: float = 1.0
    local: bool = False  # the coordinating peer itself


class Policy(Protocol):
    name: str

    def choose(self, peers: Sequence[PeerView], rng: random.Random) -> str:
        """The address of the peer to place one task on; ``peers`` is never empty."""
        ...


# Every placement policy, by name: filled by ``@register``, in the order the classes are defined.
POLICIES: dict[str, Callable[[], Policy]] = {}
P = TypeVar("P", bound=Policy)


def register(cls: type[P]) -> type[P]:
    """Make a policy class known by its ``name`` (to the API, the dispatcher and the docs)."""
    POLICIES[cls.name] = cls
    return cls


@register
class LeastLoaded:
    name = "least-loaded"

    def choose(self, peers: Sequence[PeerView], rng: random.Random) -> str:
        if len(peers) == 1:
            return peers[0].address
        a, b = rng.sample(list(peers), 2)
        chosen = a if _score(a) <= _score(b) else b
        here = next((p for p in peers if p.local), None)
        if (
            here is not None
            and here is not chosen
            and _score(chosen) > LOCAL_FACTOR * _score(here) - LOCAL_SLACK
        ):
            return here.address
        return chosen.address


def _score(peer: PeerView) -> float:
    return peer.load + peer.in_flight


@register
class RoundRobin:
    name = "round-robin"

    def __init__(self) -> None:
        self._last: str | None = None

    def choose(self, peers: Sequence[PeerView], rng: random.Random) -> str:
        # Follows address order from the last peer chosen, so a peer joining or leaving shifts
        # the turn without restarting it.
        ordered = sorted(p.address for p in peers)
        chosen = next((a for a in ordered if self._last is None or a > self._last), ordered[0])
        self._last = chosen
        return chosen


@register
class Weighted:
    name = "weighted"

    def __init__(self) -> None:
        self._current: dict[str, float] = {}

    def choose(self, peers: Sequence[PeerView], rng: random.Random) -> str:
        total = 0.0
        best: PeerView | None = None
        live = {p.address for p in peers}
        for gone in set(self._current) - live:
            del self._current[gone]
        for peer in sorted(peers, key=lambda p: p.address):
            weight = max(0.0, peer.weight)
            total += weight
            self._current[peer.address] = self._current.get(peer.address, 0.0) + weight
            if best is None or self._current[peer.address] > self._current[best.address]:
                best = peer
        assert best is not None
        self._current[best.address] -= total
        return best.address


@register
class LeastConnections:
    name = "least-connections"

    def choose(self, peers: Sequence[PeerView], rng: random.Random) -> str:
        fewest = min(p.in_flight for p in peers)
        tied = sorted(p.address for p in peers if p.in_flight == fewest)
        return tied[0] if len(tied) == 1 else rng.choice(tied)


# What a job may ask for: every registered policy, and broadcast.
POLICY_NAMES = (*POLICIES, BROADCAST)


def make_policy(name: str) -> Policy:
    """A fresh policy instance by name (``broadcast`` is handled by the dispatcher itself)."""
    make = POLICIES.get(name)
    if make is None:
        raise InvalidPayload(f"unknown policy {name!r}; one of {', '.join(POLICY_NAMES)}")
    return make()


class PolicySet:
    """One instance per policy name, made on first use and shared by every job of a peer (so a
    round-robin turn carries on across jobs)."""

    def __init__(self) -> None:
        self._instances: dict[str, Policy] = {}

    def get(self, name: str) -> Policy:
        policy = self._instances.get(name)
        if policy is None:
            policy = self._instances[name] = make_policy(name)
        return policy


def pick_peers(
    peers: Sequence[PeerView], count: int, rng: random.Random, prefer: str | None = None
) -> list[PeerView]:
    """The ``count`` least-loaded peers (ties broken at random); ``prefer`` first if present.

    Used to restrict a job to a target number of peers.
    """
    shuffled = list(peers)
    rng.shuffle(shuffled)
    ordered = sorted(shuffled, key=lambda p: (p.address != prefer, _score(p)))
    return ordered[: max(1, count)]
