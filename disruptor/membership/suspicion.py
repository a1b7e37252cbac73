"""Lifeguard's suspicion timeout: long when one peer suspects alone, shorter with confirmations.

A suspicion starts at ``max_s`` when ``k`` independent confirmations are expected, and each new
confirmation (from a peer other than those already counted) shortens it on a log scale down to
``min_s``, as in memberlist's ``suspicion.go``:

    timeout(n) = max(min_s, max_s - (max_s - min_s) * log(n + 1) / log(k + 1))

Rule: pure arithmetic on times passed in; the protocol owns the timer and asks ``deadline``.
"""

from __future__ import annotations

import math


def suspicion_timeout_s(suspicion_mult: float, n: int, probe_interval_s: float) -> float:
    """The shortest suspicion timeout: ``mult * max(1, log10(n)) * probe_interval``."""
    node_scale = max(1.0, math.log10(max(1.0, float(n))))
    return suspicion_mult * node_scale * probe_interval_s


def remaining_timeout_s(confirmations: int, k: int, min_s: float, max_s: float) -> float:
    """The total timeout after ``confirmations`` independent confirmations of ``k`` expected."""
    if k < 1:
        return min_s
    frac = math.log(confirmations + 1.0) / math.log(k + 1.0)
    return max(min_s, max_s - frac * (max_s - min_s))


class Suspicion:
    """One outstanding suspicion of one node: who confirmed it and when it fires."""

    __slots__ = ("checked", "confirmers", "k", "max_s", "min_s", "started_at")

    def __init__(self, started_at: float, first_sender: str, k: int, min_s: float, max_s: float):
        self.started_at = started_at
        self.k = k
        self.min_s = min_s
        self.max_s = max_s if k >= 1 else min_s
        # The first accuser does not count as a confirmation of itself.
        self.confirmers: set[str] = {first_sender}
        # Whether we probed the suspect ourselves before a lone suspicion ran out.
        self.checked = False

    def confirm(self, sender: str) -> bool:
        """Count an independent confirmation; True if it was new (and so worth re-gossiping)."""
        if len(self.confirmers) - 1 >= self.k or sender in self.confirmers:
            return False
        self.confirmers.add(sender)
        return True

    @property
    def confirmations(self) -> int:
        return len(self.confirmers) - 1

    @property
    def deadline(self) -> float:
        timeout = remaining_timeout_s(self.confirmations, self.k, self.min_s, self.max_s)
        return self.started_at + timeout
