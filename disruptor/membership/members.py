"""The member table: every peer we know of, its incarnation, state, since when, and its metadata.

It also keeps the probe order: a shuffled round robin over the members (new members inserted at
a random place, as memberlist does, so a newcomer is not probed by everyone at once), reshuffled
each time round. Rule: the table only stores; deciding whether a rumour wins (incarnation rules)
is the protocol's job, and every state change goes through ``set_state`` so ``since`` stays true.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from ..address import Address
from .messages import MemberRecord, MemberState
from .meta import PeerMeta

LIVE_STATES = (MemberState.ALIVE, MemberState.SUSPECT)


@dataclass(slots=True)
class Member:
    node: str
    incarnation: int
    state: MemberState
    since: float
    last_seen: float
    meta: PeerMeta

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    def record(self) -> MemberRecord:
        return MemberRecord(self.node, self.incarnation, self.state, self.meta)


@dataclass(frozen=True)
class MemberView:
    """What callers outside the package see of a member (times are wall-clock seconds)."""

    address: Address
    state: str
    incarnation: int
    since: float
    last_seen: float
    meta: PeerMeta
    is_self: bool = False


class MemberTable:
    def __init__(self, local: str) -> None:
        self.local = local
        self.members: dict[str, Member] = {}
        self._probe_order: list[str] = []
        self._probe_index = 0
        # N is asked for on every send: kept up to date on every change instead of recounted.
        self._live_count = 0
        self._alive_count = 0

    def __len__(self) -> int:
        return len(self.members)

    def get(self, node: str) -> Member | None:
        return self.members.get(node)

    def add(self, member: Member, rng: random.Random) -> None:
        self._put(member)
        if member.node != self.local:
            self._probe_order.insert(rng.randint(0, len(self._probe_order)), member.node)

    def add_many(self, members: list[Member], rng: random.Random) -> None:
        """Add many members at once (one shuffle, not one insertion each)."""
        for member in members:
            self._put(member)
        self._reshuffle(rng)

    def _put(self, member: Member) -> None:
        old = self.members.get(member.node)
        if old is not None:
            self._count(old.state, -1)
        self.members[member.node] = member
        self._count(member.state, 1)

    def _count(self, state: MemberState, delta: int) -> None:
        if state in LIVE_STATES:
            self._live_count += delta
            if state == MemberState.ALIVE:
                self._alive_count += delta

    def set_state(self, member: Member, state: MemberState, incarnation: int, now: float) -> bool:
        """Record a state (and incarnation); True if the state itself changed."""
        changed = member.state != state
        member.incarnation = incarnation
        if changed:
            self._count(member.state, -1)
            member.state = state
            member.since = now
            self._count(state, 1)
        return changed

    def live_count(self) -> int:
        """Members believed alive or suspect, self included: the N of the timing formulas."""
        return self._live_count

    def alive_count(self) -> int:
        """Members believed alive, self included."""
        return self._alive_count

    def counts_by_state(self) -> dict[str, int]:
        counts = Counter(m.state.label for m in self.members.values())
        return {s.label: counts.get(s.label, 0) for s in MemberState}

    def next_probe_target(
        self, rng: random.Random, now: float, dead_gossip_s: float
    ) -> Member | None:
        """The next member to probe in round-robin order, skipping self, dead and left."""
        for _ in range(2):
            while self._probe_index < len(self._probe_order):
                node = self._probe_order[self._probe_index]
                self._probe_index += 1
                member = self.members.get(node)
                if member is not None and member.is_live:
                    return member
            self._reshuffle(rng)
        return None

    def _reshuffle(self, rng: random.Random) -> None:
        order = [n for n in self.members if n != self.local]
        rng.shuffle(order)
        self._probe_order = order
        self._probe_index = 0

    def random_members(
        self, rng: random.Random, count: int, now: float, dead_gossip_s: float, exclude: str = ""
    ) -> list[Member]:
        """Up to ``count`` random others: live ones, plus the recently dead (so they can refute)."""

        def eligible(m: Member | None) -> bool:
            return (
                m is not None
                and m.node not in (self.local, exclude)
                and (m.is_live or (m.state == MemberState.DEAD and now - m.since < dead_gossip_s))
            )

        names = self._probe_order
        if len(names) > 4 * count:
            # Large tables: sample names and keep the eligible ones (no full scan per tick).
            picked: dict[str, Member] = {}
            for _ in range(3 * count):
                m = self.members.get(names[rng.randrange(len(names))])
                if m is not None and eligible(m):
                    picked[m.node] = m
                    if len(picked) == count:
                        break
            return list(picked.values())
        pool = [m for m in self.members.values() if eligible(m)]
        if len(pool) <= count:
            rng.shuffle(pool)
            return pool
        return rng.sample(pool, count)

    def prune(self, now: float, retention_s: float) -> list[str]:
        """Forget dead and left members after ``retention_s``; returns the forgotten names."""
        gone = [
            n
            for n, m in self.members.items()
            if not m.is_live and n != self.local and now - m.since > retention_s
        ]
        for node in gone:
            self._count(self.members.pop(node).state, -1)
        return gone
