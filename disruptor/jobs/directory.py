"""``PeerDirectory``: the live peers as the job layer sees them, and who holds a bundle.

Membership's view comes in through ``ClusterView`` (the composition root adapts the membership
driver to it), so nothing here knows how gossip encodes load or bundle lists. This peer is always
live to itself; peers held down after a failed connection are left out until their hold ends.
Rule: read-only; placements are the dispatcher's.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Protocol

from .faults import HoldDown
from .policies import PeerView


class ClusterView(Protocol):
    """The other peers, as membership knows them."""

    def live_addresses(self) -> list[str]:
        """Peers alive or suspect (this one may be among them)."""
        ...

    def load_of(self, address: str) -> float | None:
        """The load a peer gossips (tasks running plus queued), if known."""
        ...

    def holds(self, address: str, sha1: str) -> bool:
        """Whether a peer gossips that it holds a bundle."""
        ...

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a member changes state."""
        ...


class BundleHolder(Protocol):
    """This peer's bundle store, as the job layer reads it."""

    def has(self, sha1: str) -> bool: ...


class PeerDirectory:
    def __init__(
        self,
        self_address: str,
        cluster: ClusterView,
        bundles: BundleHolder,
        hold_down: HoldDown,
        weights: Mapping[str, float],
        rng: random.Random,
    ) -> None:
        self.self_address = self_address
        self.cluster = cluster
        self.bundles = bundles
        self.hold_down = hold_down
        self.weights = weights
        self.rng = rng
        # Attempts this peer's jobs have out on each peer now (the coordinator keeps it).
        self.out: Counter[str] = Counter()

    def live_peers(self, now: float) -> list[str]:
        """Every live peer by address, this one included, held-down ones left out."""
        addresses = set(self.cluster.live_addresses()) - self.hold_down.held(now)
        addresses.add(self.self_address)
        return sorted(addresses)

    def views(self, now: float, own: Mapping[str, int] | None = None) -> list[PeerView]:
        """The live peers with their load, this peer's attempts out there not counting ``own``
        (the asking job's, which its dispatcher counts itself), and their weights."""
        own = own or {}
        return [
            PeerView(
                address,
                self.cluster.load_of(address) or 0.0,
                self.out[address] - own.get(address, 0),
                float(self.weights.get(address, 1.0)),
            )
            for address in self.live_peers(now)
        ]

    def holders(self, sha1: str, now: float, exclude: str | None = None) -> list[str]:
        """Peers that hold the bundle (gossip says so), shuffled so fetches spread among them."""
        found = [self.self_address] if self.bundles.has(sha1) else []
        found += [
            address
            for address in self.live_peers(now)
            if address != self.self_address and self.cluster.holds(address, sha1)
        ]
        self.rng.shuffle(found)
        return [a for a in found if a != exclude]
