"""``PeerDirectory``: the live peers as the job layer sees them, and who holds a bundle.

Membership's view comes in through ``ClusterView`` (the composition root adapts the membership
driver to it), so nothing here knows how gossip encodes load or bundle lists. This peer is always
live to itself; peers held down after a failed connection are left out until their hold ends.
Rule: read-only; placements are the dispatcher's.

The live set and the gossiped load figures are read once and kept (``version`` names each
reading): again at once when membership changes or a peer is held down, else at most every
``REFRESH_S``, so a job costs no walk of the member table.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Protocol

from .faults import HoldDown
from .policies import PeerView

# Load figures and expired holds are read again at least this often (gossip refreshes load every
# second or so; a tighter refresh would buy nothing).
REFRESH_S = 0.25


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
        local_load: Callable[[], float] | None = None,
    ) -> None:
        self.self_address = self_address
        self.cluster = cluster
        self.bundles = bundles
        self.hold_down = hold_down
        self.weights = weights
        self.rng = rng
        # This peer's own load, read as it is now (gossip's figure for it is up to a second old).
        self.local_load = local_load
        # Attempts this peer's jobs have out on each peer now (the coordinator keeps it).
        self.out: Counter[str] = Counter()
        self.version = 0  # bumped by every fresh reading of the cluster
        self._read_at: float | None = None
        self._holds_seen = -1
        self._live: list[str] = []
        self._loads: dict[str, float] = {}

    def changed(self) -> None:
        """Membership changed: read the cluster again at the next question."""
        self._read_at = None

    def _fresh(self, now: float) -> None:
        if (
            self._read_at is not None
            and now - self._read_at < REFRESH_S
            and self._holds_seen == self.hold_down.holds
        ):
            return
        addresses = set(self.cluster.live_addresses()) - self.hold_down.held(now)
        addresses.add(self.self_address)
        self._live = sorted(addresses)
        self._loads = {a: self.cluster.load_of(a) or 0.0 for a in self._live}
        self._read_at = now
        self._holds_seen = self.hold_down.holds
        self.version += 1

    def current(self, now: float) -> int:
        """The version of the reading in force at ``now`` (a new one if the last is stale)."""
        self._fresh(now)
        return self.version

    def live_peers(self, now: float) -> list[str]:
        """Every live peer by address, this one included, held-down ones left out."""
        self._fresh(now)
        return list(self._live)

    def views(self, now: float, own: Mapping[str, int] | None = None) -> list[PeerView]:
        """The live peers with their load, this peer's attempts out there not counting ``own``
        (the asking job's, which its dispatcher counts itself), and their weights."""
        self._fresh(now)
        own = own or {}
        me = self.self_address
        here = self.local_load() if self.local_load is not None else None
        return [
            PeerView(
                address,
                here if address == me and here is not None else self._loads[address],
                self.out[address] - own.get(address, 0),
                float(self.weights.get(address, 1.0)),
                address == me,
            )
            for address in self._live
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
