"""``BundleFetcher``: getting a bundle from other peers, resuming with byte ranges, verified.

Each source is asked for the signed manifest, then the bytes. If a transfer breaks, the next
attempt (same or next source) asks only for the missing tail with ``Range: bytes=N-``; a source
that answers 200 instead of 206 sends the whole body again, so the partial copy is reset first.
The result goes through the store's own commit, as an upload does: SHA-1, SHA-256, size,
signature, trusted signer and a full archive check. Calls go over the peer link (signed as
peer-to-peer); concurrent fetches of one bundle share one transfer.

Rule: a fetched bundle is trusted exactly as much as an uploaded one; where it came from counts
for nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..address import Address
from ..errors import (
    BundleRejected,
    DisruptorError,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    PeerUnreachable,
    UntrustedSigner,
)
from ..link.peer_link import PeerLink
from .signing import SignedManifest
from .store import BundleStore, Upload, validate_sha1

log = logging.getLogger("disruptor.bundles.fetch")

CHUNK_BYTES = 256 * 1024
# Passes over the source list; each pass resumes where the previous transfer stopped.
ROUNDS = 3
# A source that does not accept a connection within this long is skipped for now.
FETCH_CONNECT_TIMEOUT_S = 5.0


class BundleFetcher:
    """The ``fetcher`` part: fetches into ``store`` over ``link``, one transfer per bundle."""

    def __init__(self, store: BundleStore, link: PeerLink) -> None:
        self.store = store
        self.link = link
        self._flights: dict[str, asyncio.Future[None]] = {}

    async def fetch(self, sha1: str, sources: Sequence[Address]) -> None:
        """Get ``sha1`` from the first of ``sources`` that has it (single flight per bundle)."""
        validate_sha1(sha1)
        if self.store.has(sha1):
            return
        flight = self._flights.get(sha1)
        if flight is None:
            flight = asyncio.ensure_future(self._fetch_counted(sha1, list(sources)))
            self._flights[sha1] = flight
            flight.add_done_callback(lambda _f: self._flights.pop(sha1, None))
        await asyncio.shield(flight)

    async def close(self) -> None:
        """Stop the fetches in flight (each removes its partial copy)."""
        pending = list(self._flights.values())
        for flight in pending:
            flight.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _fetch_counted(self, sha1: str, sources: Sequence[Address]) -> None:
        stats = self.store.stats
        stats.fetches += 1
        try:
            await self._fetch(sha1, sources)
        except BaseException:
            stats.fetch_failures += 1
            raise

    async def _fetch(self, sha1: str, sources: Sequence[Address]) -> None:
        if not sources:
            raise NotFound(f"bundle {sha1}: no peer to fetch it from")
        store = self.store
        upload = store.begin_upload(sha1)
        manifest: SignedManifest | None = None
        errors: list[str] = []
        try:
            for _round in range(ROUNDS):
                for source in sources:
                    try:
                        if manifest is None:
                            manifest = await self._get_manifest(source, sha1)
                        await self._get_bytes(source, sha1, upload, manifest.size)
                    except (DisruptorError, OSError) as exc:
                        errors.append(f"{source}: {exc}")
                        if isinstance(exc, BundleRejected | UntrustedSigner | InsufficientStorage):
                            raise
                        continue
                    created = await upload.commit(manifest)
                    store.stats.bytes_fetched += manifest.size
                    log.info("fetched %s from %s (new=%s)", sha1, source, created)
                    return
        finally:
            if not upload.done:
                upload.abort()
        raise PeerUnreachable(f"bundle {sha1}: no source delivered it ({'; '.join(errors[-3:])})")

    async def _get_manifest(self, source: Address, sha1: str) -> SignedManifest:
        limit = self.store.limits.manifest_bytes_max
        async with self.link.open(
            "GET",
            source,
            f"/bundles/{sha1}/manifest",
            timeout_s=self.store.limits.fetch_timeout_s,
            connect_timeout_s=FETCH_CONNECT_TIMEOUT_S,
        ) as reply:
            if reply.status == 404:
                raise NotFound(f"{source} does not hold {sha1}")
            if reply.status != 200:
                raise PeerUnreachable(f"{source} answered {reply.status} for the manifest")
            try:
                raw = await reply.body(limit)
            except PayloadTooLarge:
                raise BundleRejected(f"{source} sent an oversized manifest for {sha1}") from None
        manifest = SignedManifest.from_json(raw)
        if manifest.sha1 != sha1:
            raise BundleRejected(f"{source} sent the manifest of another bundle")
        # Refuse before spending bandwidth on bytes whose signer this peer would refuse anyway.
        self.store.check_signer(manifest)
        return manifest

    async def _get_bytes(self, source: Address, sha1: str, upload: Upload, size: int) -> None:
        headers = {}
        if upload.size:
            headers["Range"] = f"bytes={upload.size}-"
            self.store.stats.fetch_resumes += 1
        async with self.link.open(
            "GET",
            source,
            f"/bundles/{sha1}",
            headers=headers,
            timeout_s=self.store.limits.fetch_timeout_s,
            connect_timeout_s=FETCH_CONNECT_TIMEOUT_S,
        ) as reply:
            if reply.status == 200 and upload.size:
                upload.reset()
            elif reply.status == 416 and upload.size >= size:
                return
            elif reply.status not in (200, 206):
                raise PeerUnreachable(f"{source} answered {reply.status} for {sha1}")
            async for chunk in reply.chunks(CHUNK_BYTES):
                if upload.size + len(chunk) > size:
                    raise BundleRejected(f"{source} sent more bytes than the manifest's size")
                upload.write(chunk)
        if upload.size != size:
            raise PeerUnreachable(f"{source} stopped after {upload.size} of {size} bytes")
