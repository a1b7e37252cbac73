"""Peer metadata as versioned sections: what gossip carries about a peer besides membership.

A peer publishes *sections*: small cluster-wide records, each named by a wire number
(``SectionId``, append-only) and holding bytes. Gossip carries only a ``MetaDigest`` per peer:
for each section its version and either its content (when it is at most
``SECTION_INLINE_BYTES_MAX`` bytes, like the load figures) or an 8-byte SHA-256 prefix of it (like
the set of bundles held, fetched over HTTP from the peer when the digest changes, and cached). A
digest's ``(incarnation, seq)`` orders it: the peer raises ``seq`` on every change, and a
restarted peer's first refutation raises its incarnation, so its new digests win again.

``PeerMeta`` is the full metadata callers see (load, every bundle held, version), assembled from
the sections. Rule: every section is bounded (``SECTION_BYTES_MAX``), and a digest carries at most
``SECTIONS_MAX`` of them, so a metadata rumour stays a few tens of bytes whatever a peer holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from .wire import CodecError, Reader, varint


class SectionId(IntEnum):
    """Wire numbers of the sections; append-only, a number is never reused."""

    LOAD = 1
    BUNDLES = 2
    VERSION = 3


# Sections at most this large ride inline in gossip; larger ones travel as a digest.
SECTION_INLINE_BYTES_MAX = 24
# Largest section content, bytes: 6,500 bundle SHA-1s (20 bytes each).
SECTION_BYTES_MAX = 128 * 1024
# Sections one digest may carry.
SECTIONS_MAX = 16
DIGEST_BYTES = 8
# Section versions and digest sequence numbers are unsigned 32-bit.
SECTION_VERSION_MAX = 2**32 - 1
# Counts are bounded so a bad peer cannot make others allocate or print absurd numbers.
META_COUNT_MAX = 1_000_000_000
VERSION_CHARS_MAX = 24
_SHA1 = re.compile(r"[0-9a-f]{40}")
_SHA1_BYTES = 20


def digest_of(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()[:DIGEST_BYTES]


@dataclass(frozen=True, slots=True)
class SectionStamp:
    """One section as gossip carries it: its content if small, else its digest."""

    section: int
    version: int
    digest: bytes = b""
    inline: bytes | None = None

    def same_content(self, other: SectionStamp) -> bool:
        return self.inline == other.inline and self.digest == other.digest


@dataclass(frozen=True, slots=True)
class MetaDigest:
    """What gossip says about a peer's metadata; ``(incarnation, seq)`` orders digests."""

    incarnation: int = 0
    seq: int = 0
    sections: tuple[SectionStamp, ...] = ()
    # Whether any section travels as a digest (and so may need fetching): set by the makers of
    # digests (``digest_for``, ``decode_digest``) so a join storm need not look at every row's.
    large: bool = field(default=False, compare=False)

    def newer_than(self, other: MetaDigest) -> bool:
        return (self.incarnation, self.seq) > (other.incarnation, other.seq)

    def stamp(self, section: int) -> SectionStamp | None:
        for s in self.sections:
            if s.section == section:
                return s
        return None


EMPTY_DIGEST = MetaDigest()


@dataclass(frozen=True)
class PeerLoad:
    tasks_running: int = 0
    queue_length: int = 0
    worker_slots_free: int = 0


@dataclass(frozen=True)
class PeerMeta:
    """A peer's full metadata: its load, every bundle it holds (sorted SHA-1s), its version."""

    load: PeerLoad = field(default_factory=PeerLoad)
    bundles: tuple[str, ...] = ()
    version: str = ""

    def bounded(self) -> PeerMeta:
        """This metadata cut to the limits (what a provider returns may be larger)."""
        bundles = sorted({b for b in self.bundles if _SHA1.fullmatch(b)})
        load = PeerLoad(*(min(max(0, int(v)), META_COUNT_MAX) for v in _load_tuple(self.load)))
        keep = SECTION_BYTES_MAX // _SHA1_BYTES
        return PeerMeta(load, tuple(bundles[:keep]), self.version[:VERSION_CHARS_MAX])

    def sections(self) -> dict[int, bytes]:
        """The section contents that carry this metadata."""
        load = self.load
        return {
            SectionId.LOAD: varint(load.tasks_running)
            + varint(load.queue_length)
            + varint(load.worker_slots_free),
            SectionId.BUNDLES: b"".join(bytes.fromhex(b) for b in self.bundles),
            SectionId.VERSION: self.version.encode(),
        }

    def to_json(self) -> dict[str, object]:
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


def meta_from_sections(contents: Mapping[int, bytes]) -> PeerMeta:
    """The ``PeerMeta`` held in section contents; a section missing or out of shape reads as
    empty (metadata is advisory: a bad section must not stop the rest)."""
    load = PeerLoad()
    raw = contents.get(SectionId.LOAD)
    if raw:
        try:
            r = Reader(raw)
            load = PeerLoad(*(r.varint(META_COUNT_MAX) for _ in range(3)))
        except CodecError:
            load = PeerLoad()
    raw = contents.get(SectionId.BUNDLES) or b""
    bundles: tuple[str, ...] = ()
    if len(raw) % _SHA1_BYTES == 0:
        bundles = tuple(raw[i : i + _SHA1_BYTES].hex() for i in range(0, len(raw), _SHA1_BYTES))
    version = (contents.get(SectionId.VERSION) or b"").decode("utf-8", "replace")
    return PeerMeta(load, bundles, version[:VERSION_CHARS_MAX])


def _load_tuple(load: PeerLoad) -> tuple[int, int, int]:
    return (load.tasks_running, load.queue_length, load.worker_slots_free)


def stamp_for(section: int, version: int, content: bytes) -> SectionStamp:
    """The stamp gossip carries for ``content`` at ``version``."""
    if len(content) <= SECTION_INLINE_BYTES_MAX:
        return SectionStamp(section, version, b"", content)
    return SectionStamp(section, version, digest_of(content), None)


def encode_digest(d: MetaDigest) -> bytes:
    parts = [varint(d.incarnation), varint(d.seq), bytes([len(d.sections)])]
    for s in d.sections:
        parts.append(varint(s.section) + varint(s.version))
        if s.inline is not None:
            parts.append(bytes([1, len(s.inline)]) + s.inline)
        else:
            parts.append(b"\x00" + s.digest)
    return b"".join(parts)


def decode_digest(r: Reader, incarnation_max: int) -> MetaDigest:
    incarnation = r.varint(incarnation_max, "incarnation")
    seq = r.varint(SECTION_VERSION_MAX)
    count = r.byte()
    if count > SECTIONS_MAX:
        raise CodecError("malformed", "too many sections")
    sections = []
    last = 0
    for _ in range(count):
        section = r.varint(255)
        if section <= last:
            raise CodecError("malformed", "sections must be in ascending order")
        last = section
        version = r.varint(SECTION_VERSION_MAX)
        kind = r.byte()
        if kind == 1:
            size = r.byte()
            if size > SECTION_INLINE_BYTES_MAX:
                raise CodecError("malformed", "inline section too long")
            sections.append(SectionStamp(section, version, b"", r.take(size)))
        elif kind == 0:
            sections.append(SectionStamp(section, version, r.take(DIGEST_BYTES), None))
        else:
            raise CodecError("malformed", "unknown section kind")
    return digest_for(incarnation, seq, tuple(sections))


def digest_for(incarnation: int, seq: int, sections: tuple[SectionStamp, ...]) -> MetaDigest:
    return MetaDigest(incarnation, seq, sections, any(s.inline is None for s in sections))
