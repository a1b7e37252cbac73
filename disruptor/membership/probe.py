"""The bookkeeping of one probe round and of the indirect probes we relay for others.

A round is SWIM's: ping the target; if no ack by ``direct_deadline``, ask ``indirect_checks``
others to ping it for us (ping-req); if still no ack by ``deadline`` (one probe interval, scaled by
local health), suspect it. With Lifeguard, each helper answers a nack when the target is silent, so
the prober can tell "the target is down" (nacks arrive) from "I am the one cut off" (nothing
arrives) and adjust its local health. Rule: plain records; the protocol moves them along.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProbeRound:
    seq: int
    target: str
    direct_deadline: float
    deadline: float
    indirect_sent: bool = False
    expected_nacks: int = 0
    nacks: int = 0

    def next_deadline(self) -> float:
        return self.deadline if self.indirect_sent else self.direct_deadline


@dataclass
class Relay:
    """An indirect ping we sent for ``requester``: forward the target's ack until ``deadline``;
    if it wants one, send a nack at ``nack_at`` (a little earlier, so the nack reaches the
    requester before its round ends) unless the ack came first."""

    requester: str
    requester_seq: int
    want_nack: bool
    deadline: float
    nack_at: float = float("inf")

    def next_deadline(self) -> float:
        return self.nack_at if self.want_nack else self.deadline
