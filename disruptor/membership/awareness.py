"""Lifeguard's local health: a peer that misses acks and nacks trusts its own judgement less.

The score runs from 0 (healthy) to ``max_multiplier - 1``. Failed probes without the expected
nacks, and having to refute a suspicion of ourselves, raise it; successful probes lower it. Probe
timeouts are multiplied by ``score + 1``, so a peer that is itself slow (a stalled event loop, a
saturated CPU) waits longer before accusing others, as in memberlist's ``awareness.go``.
Rule: plain integer state; no clock.
"""

from __future__ import annotations


class Awareness:
    __slots__ = ("max_multiplier", "score")

    def __init__(self, max_multiplier: int) -> None:
        self.max_multiplier = max(1, max_multiplier)
        self.score = 0

    def apply_delta(self, delta: int) -> None:
        self.score = min(self.max_multiplier - 1, max(0, self.score + delta))

    def scale(self, timeout_s: float) -> float:
        return timeout_s * (self.score + 1)
