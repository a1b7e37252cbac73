"""The member table: every peer we know of, its incarnation, state, since when, and its metadata
digest.

It also keeps the probe order: a shuffled round robin over the members (a new member is put at a
random place among those not yet probed this round, as memberlist does, so a newcomer is not
probed by everyone at once), reshuffled each time round; and a hash of the whole table, updated on
every change, that two peers compare to skip an anti-entropy exchange when nothing differs.

Rule: the table only stores; deciding whether a rumour wins (incarnation rules) is the protocol's
job, and every change goes through ``add``, ``set_state``, ``set_meta`` or ``prune`` so ``since``,
the counts and the hash stay true. A row is small (a simulated cluster of 10,000 peers holds 10^8
of them): when a member was last heard from is kept apart, for the members we hear from.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from ..address import Address
from .messages import MemberState
from .meta import EMPTY_DIGEST, MetaDigest, PeerMeta

LIVE_STATES = (MemberState.ALIVE, MemberState.SUSPECT)
_MASK64 = 2**64 - 1


class Member:
    __slots__ = ("incarnation", "meta", "node", "since", "state")

    def __init__(
        self,
        node: str,
        incarnation: int,
        state: MemberState,
        since: float,
        meta: MetaDigest = EMPTY_DIGEST,
    ) -> None:
        self.node = node
        self.incarnation = incarnation
        self.state = state
        self.since = since
        self.meta = meta

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    def __repr__(self) -> str:
        return f"Member({self.node}, {self.incarnation}, {self.state.label})"


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


@lru_cache(maxsize=65536)
def _name_hash(node: str) -> int:
    return int.from_bytes(hashlib.blake2b(node.encode(), digest_size=8).digest(), "big")


def row_hash(m: Member) -> int:
    """A stable 64-bit hash of one row: its name's hash mixed with its incarnation, state and
    metadata stamp by odd multipliers (plain integer arithmetic, the same in every process)."""
    meta = m.meta
    mixed = (
        _name_hash(m.node)
        ^ ((m.incarnation << 2 | m.state) * 0x9E3779B97F4A7C15)
        ^ ((meta.incarnation << 32 | meta.seq) * 0xC2B2AE3D27D4EB4F)
    )
    return (mixed * 0x165667B19E3779F9) & _MASK64


class MemberTable:
    def __init__(self, local: str) -> None:
        self.local = local
        self.members: dict[str, Member] = {}
        # When each member was last heard from directly (only those we hear from).
        self.last_seen: dict[str, float] = {}
        self._probe_order: list[str] = []
        self._probe_index = 0
        # N is asked for on every send: kept up to date on every change instead of recounted.
        self._live_count = 0
        self._alive_count = 0
        # Dead and left members, for pruning without a scan of the whole table.
        self._gone: dict[str, None] = {}
        self.hash = 0

    def __len__(self) -> int:
        return len(self.members)

    def get(self, node: str) -> Member | None:
        return self.members.get(node)

    def add(self, member: Member, rng: random.Random) -> None:
        self._put(member)
        if member.node != self.local:
            order = self._probe_order
            order.append(member.node)
            # Swap it to a random place among those not yet probed this round.
            low = min(self._probe_index, len(order) - 1)
            j = low + int(rng.random() * (len(order) - low))
            order[j], order[-1] = order[-1], order[j]

    def add_many(
        self, members: list[Member], rng: random.Random, table_hash: int | None = None
    ) -> None:
        """Add many new members at once (one shuffle, not one insertion each). ``table_hash``,
        when the caller knows it, is the hash of the table afterwards (a simulator building
        10,000 identical tables computes it once)."""
        if table_hash is None:
            for member in members:
                self._put(member)
        else:
            self.members.update((m.node, m) for m in members)
            for m in members:
                if m.state in LIVE_STATES:
                    self._live_count += 1
                    self._alive_count += m.state == MemberState.ALIVE
                else:
                    self._gone[m.node] = None
            self.hash = table_hash
        self._reshuffle(rng)

    def _put(self, member: Member) -> None:
        old = self.members.get(member.node)
        if old is not None:
            self._count(old, -1)
        self.members[member.node] = member
        self._count(member, 1)

    def _count(self, member: Member, delta: int) -> None:
        self.hash ^= row_hash(member)
        state = member.state
        if state in LIVE_STATES:
            self._live_count += delta
            if state == MemberState.ALIVE:
                self._alive_count += delta
        elif delta > 0:
            self._gone[member.node] = None
        else:
            self._gone.pop(member.node, None)

    def set_state(self, member: Member, state: MemberState, incarnation: int, now: float) -> bool:
        """Record a state (and incarnation); True if the state itself changed."""
        changed = member.state != state
        self._count(member, -1)
        member.incarnation = incarnation
        if changed:
            member.state = state
            member.since = now
        self._count(member, 1)
        return changed

    def set_meta(self, member: Member, meta: MetaDigest) -> None:
        self.hash ^= row_hash(member)
        member.meta = meta
        self.hash ^= row_hash(member)

    def live_count(self) -> int:
        """Members believed alive or suspect, self included: the N of the timing formulas."""
        return self._live_count

    def alive_count(self) -> int:
        """Members believed alive, self included."""
        return self._alive_count

    def counts_by_state(self) -> dict[str, int]:
        counts = Counter(m.state.label for m in self.members.values())
        return {s.label: counts.get(s.label, 0) for s in MemberState}

    def dead(self) -> list[Member]:
        """Members believed dead (not left)."""
        return [m for n in self._gone if (m := self.members[n]).state == MemberState.DEAD]

    def next_probe_target(self, rng: random.Random) -> Member | None:
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
        self,
        rng: random.Random,
        count: int,
        now: float,
        dead_gossip_s: float,
        exclude: str = "",
        alive_only: bool = False,
    ) -> list[Member]:
        """Up to ``count`` random others: live ones, plus the recently dead (so they can refute);
        only alive ones with ``alive_only`` (helpers for an indirect probe: a suspect helper is
        likely down, and its missing nack would count against our own health)."""
        states = (MemberState.ALIVE,) if alive_only else LIVE_STATES

        def eligible(m: Member | None) -> bool:
            return (
                m is not None
                and m.node not in (self.local, exclude)
                and (
                    m.state in states
                    or (m.state == MemberState.DEAD and now - m.since < dead_gossip_s)
                )
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
            n for n in self._gone if n != self.local and now - self.members[n].since > retention_s
        ]
        for node in gone:
            self._count(self.members.pop(node), -1)
            self.last_seen.pop(node, None)
        return gone
