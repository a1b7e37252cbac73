"""``PeerMeta``: the small, bounded facts each peer gossips about itself.

Load (tasks running, queue length, free worker slots), the bundles it holds and its version ride on
every alive rumour, so the job dispatcher can place work without asking. Rule: the encoded form
never exceeds ``META_BYTES_MAX`` (the bundle list is cut to fit; the full list travels over HTTP
push-pull), so an alive rumour always fits in one datagram with room to spare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Bundles listed in gossip metadata, at most: 16 SHA-1s of 40 hex characters is ~700 bytes.
META_BUNDLES_MAX = 16
# Largest encoded metadata, bytes (memberlist's MetaMaxSize is 512; our bundle list needs more).
META_BYTES_MAX = 800
# Counts are bounded so a bad peer cannot make others allocate or print absurd numbers.
META_COUNT_MAX = 1_000_000_000
VERSION_CHARS_MAX = 32
_SHA1 = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class PeerLoad:
    tasks_running: int = 0
    queue_length: int = 0
    worker_slots_free: int = 0


@dataclass(frozen=True)
class PeerMeta:
    load: PeerLoad = field(default_factory=PeerLoad)
    bundles: tuple[str, ...] = ()
    version: str = ""

    def to_wire(self) -> list[Any]:
        """A compact JSON-able list: ``[[running, queue, free], [sha1...], version]``."""
        load = self.load
        return [
            [load.tasks_running, load.queue_length, load.worker_slots_free],
            list(self.bundles[:META_BUNDLES_MAX]),
            self.version[:VERSION_CHARS_MAX],
        ]

    @classmethod
    def from_wire(cls, raw: Any) -> PeerMeta:
        """Parse the wire form; raise ``ValueError`` on anything out of shape or out of bounds."""
        if not isinstance(raw, list) or len(raw) != 3:
            raise ValueError("meta must be [load, bundles, version]")
        load_raw, bundles_raw, version = raw
        if not isinstance(load_raw, list) or len(load_raw) != 3:
            raise ValueError("meta load must be three counts")
        counts = [_count(v) for v in load_raw]
        if not isinstance(bundles_raw, list) or len(bundles_raw) > META_BUNDLES_MAX:
            raise ValueError("meta bundles must be a short list")
        if not all(isinstance(b, str) and _SHA1.fullmatch(b) for b in bundles_raw):
            raise ValueError("meta bundles must be SHA-1 hex digests")
        if not isinstance(version, str) or len(version) > VERSION_CHARS_MAX:
            raise ValueError("meta version must be a short string")
        return cls(PeerLoad(*counts), tuple(bundles_raw), version)

    def bounded(self) -> PeerMeta:
        """This metadata cut to the wire limits (what a provider returns may be larger)."""
        bundles = tuple(b for b in self.bundles if _SHA1.fullmatch(b))[:META_BUNDLES_MAX]
        load = PeerLoad(*(min(max(0, int(v)), META_COUNT_MAX) for v in _load_tuple(self.load)))
        return PeerMeta(load, bundles, self.version[:VERSION_CHARS_MAX])

    def to_json(self) -> dict[str, Any]:
        """The form shown by ``GET /peers``."""
        return {
            "load": {
                "tasks_running": self.load.tasks_running,
                "queue_length": self.load.queue_length,
                "worker_slots_free": self.load.worker_slots_free,
            },
            "bundles": list(self.bundles),
            "version": self.version,
        }


def _load_tuple(load: PeerLoad) -> tuple[int, int, int]:
    return (load.tasks_running, load.queue_length, load.worker_slots_free)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= META_COUNT_MAX:
        raise ValueError("meta counts must be non-negative integers")
    return value
