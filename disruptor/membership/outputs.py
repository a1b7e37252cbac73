"""What the protocol core puts out, and its counters: plain data for the adapter and simulator.

``Send`` (a datagram), ``PushPull`` and ``FetchSection`` (HTTP calls for the adapter to make),
``MemberChanged`` and ``MetaChanged`` (news for subscribers). Rule: data only; no decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from .messages import MemberState, Message, SyncState
from .meta import MetaDigest
from .sections import FetchSection

# Peers above this count stretch the push-pull interval (log2), as memberlist does.
PUSH_PULL_SCALE_THRESHOLD = 32


@dataclass(frozen=True)
class Send:
    to: str
    messages: tuple[Message, ...]
    # The datagram's size on the wire, bytes (an upper bound; used for traffic accounting).
    size_bytes: int


@dataclass(frozen=True)
class PushPull:
    """Carry ``state`` to ``target`` over HTTP and hand the reply to ``push_pull_done``."""

    target: str
    state: SyncState


class MemberChanged(NamedTuple):
    # A named tuple, not a dataclass: a join storm makes N^2 of them, and this is the cheap kind.
    node: str
    old: MemberState | None
    new: MemberState
    incarnation: int


class MetaChanged(NamedTuple):
    """We hold a newer metadata digest for ``node`` (or, once fetched, its large sections)."""

    node: str
    digest: MetaDigest


Output = Send | PushPull | MemberChanged | MetaChanged | FetchSection


@dataclass
class ProtocolCounters:
    probes: int = 0
    probes_failed: int = 0
    indirect_probes: int = 0
    suspicions: int = 0
    refutations: int = 0
    deaths_declared: int = 0
    misrouted: int = 0
    absurd_incarnations: int = 0
    push_pulls: int = 0
    push_pulls_failed: int = 0
    push_pulls_hash_only: int = 0
    fast_syncs: int = 0
    dead_by_state: dict[str, int] = field(default_factory=dict)


def push_pull_scale(interval_s: float, n: int) -> float:
    if n <= PUSH_PULL_SCALE_THRESHOLD:
        return interval_s
    multiplier = math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1
    return interval_s * multiplier
