"""The retransmit queues of rumours waiting to be piggybacked: one for membership (alive, suspect,
dead), one for metadata digests, so a burst of metadata changes never delays news of a join or a
death (membership rumours fill a datagram first).

Each rumour is sent at most ``retransmit_mult * ceil(log10(N + 1)) + base`` times, least-sent
first, so a fresh rumour goes out before old ones; a newer rumour about a node replaces any queued
one about the same node (only the newest state matters). As memberlist's ``queue.go``, but
deterministic: ties break by insertion order. Rule: bounded; past ``queue_max`` the most-sent
rumours are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from .codec import encode_message
from .messages import Meta, Rumour

R = TypeVar("R", bound=Rumour | Meta)


def retransmit_limit(retransmit_mult: int, n: int, base: int = 0) -> int:
    return retransmit_mult * max(1, math.ceil(math.log10(n + 1))) + base


@dataclass(slots=True)
class _Entry(Generic[R]):
    rumour: R
    size: int
    transmits: int


class BroadcastQueue(Generic[R]):
    def __init__(self, retransmit_mult: int, queue_max: int, base: int = 0) -> None:
        self.retransmit_mult = retransmit_mult
        self.base = base
        self.queue_max = queue_max
        self._by_node: dict[str, _Entry[R]] = {}
        # Entries grouped by how often they were sent; within a group, in insertion order. A
        # take walks the least-sent group newest first and stops when the datagram is full, so
        # its cost follows the datagram, not the queue (thousands of rumours when many join).
        self._buckets: dict[int, dict[str, _Entry[R]]] = {}

    def __len__(self) -> int:
        return len(self._by_node)

    def queue(self, rumour: R) -> None:
        """Queue a rumour, replacing any older one about the same node."""
        self._remove(rumour.node)
        entry = _Entry(rumour, _size(rumour), 0)
        self._by_node[rumour.node] = entry
        self._buckets.setdefault(0, {})[rumour.node] = entry
        if len(self._by_node) > self.queue_max:
            most = max(self._buckets)
            oldest = next(iter(self._buckets[most]))
            self._remove(oldest)

    def _remove(self, node: str) -> None:
        entry = self._by_node.pop(node, None)
        if entry is not None:
            bucket = self._buckets[entry.transmits]
            del bucket[node]
            if not bucket:
                del self._buckets[entry.transmits]

    def pending_about(self, node: str) -> R | None:
        entry = self._by_node.get(node)
        return entry.rumour if entry else None

    def take(
        self, bytes_budget: int, n_members: int, per_message_overhead: int = 0
    ) -> tuple[list[R], int]:
        """Rumours whose encodings fit in ``bytes_budget`` (and the bytes they use), least-sent
        and newest first, counting one transmission for each."""
        if not self._by_node or bytes_budget <= 0:
            return [], 0
        limit = retransmit_limit(self.retransmit_mult, n_members, self.base)
        buckets = self._buckets
        chosen: list[_Entry[R]] = []
        used = 0
        misses = 0
        for transmits in sorted(buckets):
            for entry in reversed(buckets[transmits].values()):
                size = entry.size + per_message_overhead
                if used + size > bytes_budget:
                    misses += 1
                    if misses > _MISSES_MAX:
                        break
                    continue
                used += size
                chosen.append(entry)
            if misses > _MISSES_MAX:
                break
        # Move each chosen entry up one group (or drop it once sent ``limit`` times), in the
        # order chosen. Inlined: a join storm takes millions of rumours.
        by_node = self._by_node
        for entry in chosen:
            node = entry.rumour.node
            bucket = buckets[entry.transmits]
            del bucket[node]
            if not bucket:
                del buckets[entry.transmits]
            entry.transmits += 1
            if entry.transmits < limit:
                up = buckets.get(entry.transmits)
                if up is None:
                    up = buckets[entry.transmits] = {}
                up[node] = entry
            else:
                del by_node[node]
        return [e.rumour for e in chosen], used


@lru_cache(maxsize=65536)
def _size(rumour: Rumour | Meta) -> int:
    """A rumour's encoded size, cached: every peer queues the same rumours (frozen, hashable)."""
    return len(encode_message(rumour))


# A take gives up after this many rumours that did not fit: the datagram is as good as full.
_MISSES_MAX = 8
