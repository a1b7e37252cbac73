"""Fetching a bundle from other peers over HTTP, resuming with byte ranges, verified on arrival.

Each source is asked for the signed manifest, then the bytes. If a transfer breaks, the next
attempt (same or next source) asks only for the missing tail with ``Range: bytes=N-``; a source
that answers 200 instead of 206 sends the whole body again, so the partial copy is reset first.
The result goes through the same commit as an upload: SHA-1, SHA-256, size, signature, trusted
signer and a full archive check. Calls are authenticated as peer-to-peer (``X-Disruptor-Peer``).

Rule: a fetched bundle is trusted exactly as much as an uploaded one; where it came from counts
for nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiohttp

from ..api.auth import PEER_AUTH_HEADER, peer_auth_header
from ..errors import (
    BundleRejected,
    DisruptorError,
    InsufficientStorage,
    NotFound,
    PeerUnreachable,
    UntrustedSigner,
)
from .signing import SignedManifest

if TYPE_CHECKING:
    from ..address import Address
    from .store import BundleStore, Upload

log = logging.getLogger("disruptor.bundles.fetch")

CHUNK_BYTES = 256 * 1024
# Passes over the source list; each pass resumes where the previous transfer stopped.
ROUNDS = 3


async def fetch_bundle(store: BundleStore, sha1: str, sources: Sequence[Address]) -> None:
    store.stats.fetches += 1
    try:
        await _fetch(store, sha1, sources)
    except BaseException:
        store.stats.fetch_failures += 1
        raise


async def _fetch(store: BundleStore, sha1: str, sources: Sequence[Address]) -> None:
    if not sources:
        raise NotFound(f"bundle {sha1}: no peer to fetch it from")
    timeout = aiohttp.ClientTimeout(total=store.limits.fetch_timeout_s, sock_connect=5.0)
    upload = store.begin_upload(sha1)
    manifest: SignedManifest | None = None
    errors: list[str] = []
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for _round in range(ROUNDS):
                for source in sources:
                    try:
                        if manifest is None:
                            manifest = await _get_manifest(session, store, source, sha1)
                        await _get_bytes(session, store, source, sha1, upload, manifest.size)
                    except (aiohttp.ClientError, TimeoutError, OSError, DisruptorError) as exc:
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


def _headers(store: BundleStore, path: str) -> dict[str, str]:
    return {PEER_AUTH_HEADER: peer_auth_header(store.cluster_secret, "GET", path)}


async def _get_manifest(
    session: aiohttp.ClientSession, store: BundleStore, source: Address, sha1: str
) -> SignedManifest:
    path = f"/bundles/{sha1}/manifest"
    async with session.get(source.url + path, headers=_headers(store, path)) as response:
        if response.status == 404:
            raise NotFound(f"{source} does not hold {sha1}")
        if response.status != 200:
            raise PeerUnreachable(f"{source} answered {response.status} for the manifest")
        raw = await response.content.read(store.limits.manifest_bytes_max + 1)
    if len(raw) > store.limits.manifest_bytes_max:
        raise BundleRejected(f"{source} sent an oversized manifest for {sha1}")
    manifest = SignedManifest.from_json(raw)
    if manifest.sha1 != sha1:
        raise BundleRejected(f"{source} sent the manifest of another bundle")
    # Refuse before spending bandwidth on bytes whose signer this peer would refuse anyway.
    store.check_signer(manifest)
    return manifest


async def _get_bytes(
    session: aiohttp.ClientSession,
    store: BundleStore,
    source: Address,
    sha1: str,
    upload: Upload,
    size: int,
) -> None:
    path = f"/bundles/{sha1}"
    headers = _headers(store, path)
    if upload.size:
        headers["Range"] = f"bytes={upload.size}-"
        store.stats.fetch_resumes += 1
    async with session.get(source.url + path, headers=headers) as response:
        if response.status == 200 and upload.size:
            upload.reset()
        elif response.status == 416 and upload.size >= size:
            return
        elif response.status not in (200, 206):
            raise PeerUnreachable(f"{source} answered {response.status} for {sha1}")
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            if upload.size + len(chunk) > size:
                raise BundleRejected(f"{source} sent more bytes than the manifest's size")
            upload.write(chunk)
    if upload.size != size:
        raise PeerUnreachable(f"{source} stopped after {upload.size} of {size} bytes")
