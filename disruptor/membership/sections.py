"""Sections: this peer's own (published with versions) and other peers' (fetched and cached).

Gossip carries each peer's ``MetaDigest``: for every section its version, and its content if small
or an 8-byte digest if not. ``LocalSections`` turns a new set of contents into a new digest (a
section's version rises when its content changes; the digest's ``seq`` rises with any change).
``SectionCache`` holds the contents fetched from other peers, and decides what to fetch: when a
peer's digest names content we do not hold, a fetch of that section from that peer is due after a
random delay within ``jitter_s`` (so a change seen by a thousand peers at once does not bring a
thousand requests at once), retried a few times on failure, and dropped once the peer's digest
has moved on. Fetched content must match the digest it was fetched for.

Rule: sans-IO (the protocol emits ``FetchSection`` outputs; the adapter answers with
``fetched``); bounded: one cached content per peer and section, each at most
``SECTION_BYTES_MAX``, and forgotten with the peer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from .meta import (
    SECTION_BYTES_MAX,
    SECTION_VERSION_MAX,
    MetaDigest,
    PeerMeta,
    SectionStamp,
    digest_for,
    digest_of,
    meta_from_sections,
    stamp_for,
)

# Fetches of one section version tried at most this many times.
FETCH_TRIES_MAX = 3


@dataclass(frozen=True)
class FetchSection:
    """Fetch section ``section`` from ``node`` (over HTTP) and hand it to the protocol."""

    node: str
    section: int
    digest: bytes


class LocalSections:
    """This peer's sections: contents, versions, and the digest gossip carries."""

    def __init__(self, incarnation: int) -> None:
        self.contents: dict[int, bytes] = {}
        self.digest = MetaDigest(incarnation, 0, ())

    def update(self, contents: Mapping[int, bytes], incarnation: int) -> bool:
        """Publish ``contents``; True if anything changed (then ``digest`` is new)."""
        stamps: list[SectionStamp] = []
        changed = incarnation != self.digest.incarnation
        for section in sorted(contents):
            content = contents[section][:SECTION_BYTES_MAX]
            old = self.digest.stamp(section)
            if old is not None and self.contents.get(section) == content:
                stamps.append(old)
                continue
            version = 1 if old is None else (old.version + 1) % (SECTION_VERSION_MAX + 1)
            stamps.append(stamp_for(section, version, content))
            self.contents[section] = content
            changed = True
        for section in [s for s in self.contents if s not in contents]:
            del self.contents[section]
            changed = True
        if changed:
            seq = (self.digest.seq + 1) % (SECTION_VERSION_MAX + 1)
            self.digest = digest_for(incarnation, seq, tuple(stamps))
        return changed

    def content(self, section: int) -> bytes | None:
        return self.contents.get(section)


@dataclass
class _Wanted:
    digest: bytes
    due_at: float
    tries: int = 0
    in_flight: bool = False


class SectionCache:
    def __init__(self, jitter_s: float, retry_s: float) -> None:
        self.jitter_s = jitter_s
        self.retry_s = retry_s
        # (node, section) -> (digest, content) of what was fetched.
        self._held: dict[tuple[str, int], tuple[bytes, bytes]] = {}
        self._wanted: dict[tuple[str, int], _Wanted] = {}
        self.fetches = 0
        self.fetches_failed = 0

    def note(self, node: str, digest: MetaDigest, now: float, rng: random.Random) -> None:
        """``node``'s digest is now ``digest``: want whatever content of it we lack."""
        for stamp in digest.sections:
            if stamp.inline is not None:
                continue
            key = (node, stamp.section)
            held = self._held.get(key)
            if held is not None and held[0] == stamp.digest:
                self._wanted.pop(key, None)
                continue
            if stamp.digest == _EMPTY:
                self._held[key] = (_EMPTY, b"")
                self._wanted.pop(key, None)
                continue
            wanted = self._wanted.get(key)
            if wanted is None or wanted.digest != stamp.digest:
                due = now + rng.uniform(0.0, self.jitter_s)
                self._wanted[key] = _Wanted(stamp.digest, due)

    def due(self, now: float) -> list[FetchSection]:
        out = []
        for (node, section), wanted in self._wanted.items():
            if not wanted.in_flight and now >= wanted.due_at:
                wanted.in_flight = True
                wanted.tries += 1
                self.fetches += 1
                out.append(FetchSection(node, section, wanted.digest))
        return out

    def next_deadline(self) -> float:
        if not self._wanted:
            return _NEVER
        return min((w.due_at for w in self._wanted.values() if not w.in_flight), default=_NEVER)

    def fetched(
        self, fetch: FetchSection, content: bytes | None, current: MetaDigest | None, now: float
    ) -> bool:
        """The answer to ``fetch`` (``None`` if it failed); ``current`` is the peer's digest as we
        hold it now. True if content was stored."""
        key = (fetch.node, fetch.section)
        wanted = self._wanted.get(key)
        stamp = current.stamp(fetch.section) if current is not None else None
        if content is not None and len(content) <= SECTION_BYTES_MAX:
            got = digest_of(content)
            if stamp is not None and got == stamp.digest:
                self._held[key] = (got, content)
                self._wanted.pop(key, None)
                return True
        if content is None:
            self.fetches_failed += 1
        if wanted is not None:
            wanted.in_flight = False
            if stamp is None or stamp.digest != wanted.digest or wanted.tries >= FETCH_TRIES_MAX:
                # The peer moved on (a newer digest is wanted under its own entry) or gave up.
                if stamp is None or stamp.digest == wanted.digest:
                    del self._wanted[key]
            else:
                wanted.due_at = now + self.retry_s
        return False

    def content(self, node: str, section: int) -> bytes | None:
        held = self._held.get((node, section))
        return held[1] if held is not None else None

    def forget(self, node: str) -> None:
        for key in [k for k in self._held if k[0] == node]:
            del self._held[key]
        for key in [k for k in self._wanted if k[0] == node]:
            del self._wanted[key]

    def meta(self, node: str, digest: MetaDigest) -> PeerMeta:
        """``node``'s full metadata: inline sections from its digest, the rest as fetched (the
        last content fetched, until the newest arrives)."""
        contents: dict[int, bytes] = {}
        for stamp in digest.sections:
            if stamp.inline is not None:
                contents[stamp.section] = stamp.inline
            else:
                held = self.content(node, stamp.section)
                if held is not None:
                    contents[stamp.section] = held
        return meta_from_sections(contents)

    def current(self, node: str, digest: MetaDigest) -> bool:
        """Whether every section of ``digest`` is held (inline, or fetched at its digest)."""
        for stamp in digest.sections:
            if stamp.inline is None:
                held = self._held.get((node, stamp.section))
                if (held is None or held[0] != stamp.digest) and stamp.digest != _EMPTY:
                    return False
        return True


_EMPTY = digest_of(b"")
_NEVER = float("inf")
