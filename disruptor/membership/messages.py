"""The gossip messages, as frozen dataclasses, and the numbers that name them on the wire.

A datagram carries one ``Packet``: who sent it, a per-sender session and sequence number (replay
protection), the sender's clock, and one or more messages (a probe plus piggybacked rumours).
Rule: wire numbers (``MessageType``, ``MemberState``, ``WIRE_VERSION``) are explicit and
append-only; a number once used is never reused for something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .meta import PeerMeta

# Version of the datagram frame and of the push-pull body; a peer drops any other version.
WIRE_VERSION = 1
# Incarnations are unsigned 32-bit: anything outside is absurd and dropped at decode.
INCARNATION_MAX = 2**32 - 1
# Sequence numbers (probe seq, packet seq) are unsigned 63-bit.
SEQ_MAX = 2**63 - 1
# A peer name is HOST:PORT; ``[v6 address]:port`` is at most 47 characters.
NAME_CHARS_MAX = 64


class MessageType(IntEnum):
    PING = 1
    INDIRECT_PING = 2
    ACK = 3
    NACK = 4
    SUSPECT = 5
    ALIVE = 6
    DEAD = 7


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
    incarnation: int
    node: str
    meta: PeerMeta = field(default_factory=PeerMeta)


@dataclass(frozen=True)
class Dead:
    """``node`` is dead; when ``sender == node`` the node is leaving gracefully (shown as left)."""

    incarnation: int
    node: str
    sender: str


Message = Ping | IndirectPing | Ack | Nack | Suspect | Alive | Dead
Rumour = Suspect | Alive | Dead


@dataclass(frozen=True)
class Packet:
    """One datagram's plaintext."""

    sender: str
    session: int
    seq: int
    sent_at_ms: int
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class MemberRecord:
    """One row of a push-pull exchange."""

    node: str
    incarnation: int
    state: MemberState
    meta: PeerMeta


@dataclass(frozen=True)
class SyncState:
    """A push-pull body: the sender's whole member table (``join`` on a newcomer's first sync)."""

    sender: str
    join: bool
    members: tuple[MemberRecord, ...]
