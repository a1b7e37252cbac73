"""The gossip messages, as frozen dataclasses, and the numbers that name them on the wire.

A datagram carries one ``Packet``: who sent it, a per-sender session and sequence number (replay
protection), the sender's clock, and one or more messages (a probe plus piggybacked rumours).
Rule: wire numbers (``MessageType``, ``MemberState``, ``WIRE_VERSION``) are explicit and
append-only; a number once used is never reused for something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from .meta import EMPTY_DIGEST, MetaDigest
from .wire import NAME_CHARS_MAX as NAME_CHARS_MAX

# Version of the datagram frame and of the push-pull body; a peer drops any other version.
# 2: binary encoding, membership rumours without metadata, metadata as ``Meta`` digests.
WIRE_VERSION = 2
# Incarnations are unsigned 32-bit: anything outside is absurd and dropped at decode.
INCARNATION_MAX = 2**32 - 1
# Sequence numbers (probe seq, packet seq) are unsigned 63-bit.
SEQ_MAX = 2**63 - 1


class MessageType(IntEnum):
    PING = 1
    INDIRECT_PING = 2
    ACK = 3
    NACK = 4
    SUSPECT = 5
    ALIVE = 6
    DEAD = 7
    META = 8


class MemberState(IntEnum):
    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Ping:
    """Are you there? ``target`` names the intended peer, so a misrouted ping is not acked."""

    seq: int
    target: str


@dataclass(frozen=True)
class IndirectPing:
    """Please ping ``target`` for me and forward its ack (SWIM's ping-req); nack if it is silent."""

    seq: int
    target: str
    requester: str
    want_nack: bool


@dataclass(frozen=True)
class Ack:
    seq: int


@dataclass(frozen=True)
class Nack:
    """Lifeguard: an intermediary heard nothing from the target, but we did hear from it."""

    seq: int


@dataclass(frozen=True)
class Suspect:
    incarnation: int
    node: str
    sender: str


@dataclass(frozen=True)
class Alive:
    """``node`` is alive at ``incarnation`` (a few bytes: metadata travels in ``Meta``)."""

    incarnation: int
    node: str


@dataclass(frozen=True)
class Dead:
    """``node`` is dead; when ``sender == node`` the node is leaving gracefully (shown as left)."""

    incarnation: int
    node: str
    sender: str


@dataclass(frozen=True)
class Meta:
    """``node``'s metadata digest (section versions, small sections inline). Ordered by the
    digest's ``(incarnation, seq)``, apart from membership rumours, so a metadata change never
    displaces news of a join or a death."""

    node: str
    digest: MetaDigest


Message = Ping | IndirectPing | Ack | Nack | Suspect | Alive | Dead | Meta
Rumour = Suspect | Alive | Dead


@dataclass(frozen=True)
class Packet:
    """One datagram's plaintext."""

    sender: str
    session: int
    seq: int
    sent_at_ms: int
    messages: tuple[Message, ...]


class Record(Protocol):
    """One row of a push-pull exchange, as read: a ``MemberRecord`` decoded from the wire, or a
    live ``members.Member`` (a table is sent without copying its rows)."""

    @property
    def node(self) -> str: ...
    @property
    def incarnation(self) -> int: ...
    @property
    def state(self) -> MemberState: ...
    @property
    def meta(self) -> MetaDigest: ...


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One row of a push-pull exchange, decoded."""

    node: str
    incarnation: int
    state: MemberState
    meta: MetaDigest = EMPTY_DIGEST


@dataclass(frozen=True)
class SyncState:
    """A push-pull body. ``members`` is the sender's whole table, or empty when ``summary``: then
    only ``table_hash`` is sent, and the answer is a whole table only if the hashes differ (an
    idle cluster's anti-entropy costs a few bytes, whatever N). ``join`` on a newcomer's first."""

    sender: str
    join: bool
    members: tuple[Record, ...]
    table_hash: int = 0
    summary: bool = False
