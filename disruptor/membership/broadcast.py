"""The retransmit queue of rumours (alive, suspect, dead) waiting to be piggybacked.

Each rumour is sent at most ``retransmit_mult * ceil(log10(N + 1))`` times, least-sent first, so a
fresh rumour goes out before old ones; a newer rumour about a node replaces any queued one about
the same node (only the newest state matters). As memberlist's ``queue.go``, but deterministic:
ties break by insertion order. Rule: bounded; past ``queue_max`` the most-sent rumours are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .codec import encode_message
from .messages import Rumour


def retransmit_limit(retransmit_mult: int, n: int) -> int:
    return retransmit_mult * max(1, math.ceil(math.log10(n + 1)))


@dataclass
class _Entry:
    rumour: Rumour
    encoded: bytes
    transmits: int
    order: int


class BroadcastQueue:
    def __init__(self, retransmit_mult: int, queue_max: int) -> None:
        self.retransmit_mult = retransmit_mult
        self.queue_max = queue_max
        self._by_node: dict[str, _Entry] = {}
        self._order = 0

    def __len__(self) -> int:
        return len(self._by_node)

    def queue(self, rumour: Rumour) -> None:
        """Queue a rumour, replacing any older one about the same node."""
        self._order += 1
        self._by_node[rumour.node] = _Entry(rumour, encode_message(rumour), 0, self._order)
        if len(self._by_node) > self.queue_max:
            worst = max(self._by_node.values(), key=lambda e: (e.transmits, -e.order))
            del self._by_node[worst.rumour.node]

    def pending_about(self, node: str) -> Rumour | None:
        entry = self._by_node.get(node)
        return entry.rumour if entry else None

    def take(
        self, bytes_budget: int, n_members: int, per_message_overhead: int = 1
    ) -> tuple[list[Rumour], int]:
        """Rumours whose encodings fit in ``bytes_budget`` (and the bytes they use), counting one
        transmission for each."""
        if not self._by_node or bytes_budget <= 0:
            return [], 0
        limit = retransmit_limit(self.retransmit_mult, n_members)
        chosen: list[Rumour] = []
        used = 0
        for entry in sorted(self._by_node.values(), key=lambda e: (e.transmits, -e.order)):
            size = len(entry.encoded) + per_message_overhead
            if used + size > bytes_budget:
                continue
            used += size
            chosen.append(entry.rumour)
            entry.transmits += 1
            if entry.transmits >= limit:
                del self._by_node[entry.rumour.node]
        return chosen, used
