"""The client's bundle calls: push (packing and signing a directory first), list, pull, delete.

A push sends the bundle's bytes as the PUT body and its signed manifest, base64url JSON, in the
``X-Disruptor-Manifest`` header. A directory is packed deterministically into a temporary file
first; a ready ``.tar.zst`` is checked locally (the same archive rules the peer applies) so its
``bundle.toml`` names what gets signed. The signing key is the user's own
(``$DISRUPTOR_HOME/keys/signing.key``), made on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundles.pack import pack_to_file
from ..bundles.settings import BundleSettings
from ..bundles.signing import SignedManifest, load_or_create_key, sign_manifest
from ..bundles.store import validate_sha1
from ..bundles.unpack import check_archive
from ..errors import DigestMismatch, NotFound
from ..home import Home
from .transport import Transport

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MANIFEST_HEADER = "X-Disruptor-Manifest"
CHUNK_BYTES = 1024 * 1024
# Called with (bytes just moved, total bytes) as a transfer proceeds.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PushResult:
    sha1: str
    size: int
    created: bool  # False when the peer already held it


def digest_file(path: Path) -> tuple[str, str, int]:
    """SHA-1, SHA-256 and size of a file."""
    sha1 = hashlib.sha1()  # noqa: S324 - the content address
    sha256 = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            sha1.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
    return sha1.hexdigest(), sha256.hexdigest(), size


def sign_archive(
    archive: Path, key: Ed25519PrivateKey, limits: BundleSettings | None = None
) -> SignedManifest:
    """Check ``archive`` as a peer would, then sign its manifest with ``key``."""
    app = check_archive(archive, limits or BundleSettings())
    sha1, sha256, size = digest_file(archive)
    return sign_manifest(
        key,
        sha1=sha1,
        sha256=sha256,
        size=size,
        name=app.name,
        version=app.version,
        signed_at=int(time.time()),
    )


def prepare_archive(
    source: Path, key: Ed25519PrivateKey, scratch: Path
) -> tuple[Path, SignedManifest]:
    """Pack a directory into ``scratch`` (a file is used as is); check and sign the archive."""
    archive = source
    if source.is_dir():
        archive = scratch / "bundle.tar.zst"
        pack_to_file(source, archive)
    return archive, sign_archive(archive, key)


async def _file_chunks(path: Path, progress: Progress | None, total: int) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk
            if progress is not None:
                progress(len(chunk), total)


class BundlesMixin(Transport):
    async def push_bundle(
        self,
        path: str | os.PathLike[str],
        *,
        key: Ed25519PrivateKey | None = None,
        home: Home | None = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """Upload a bundle (a ``.tar.zst`` or an app directory, packed first); returns its SHA-1."""
        source = Path(path)
        if key is None:
            key_path = (home or Home.from_env()).signing_key_path
            loaded = await asyncio.to_thread(load_or_create_key, key_path)
            key = loaded[0]
        signing_key: Ed25519PrivateKey = key
        with tempfile.TemporaryDirectory(prefix="disruptor-push-") as tmp:
            archive, manifest = await asyncio.to_thread(
                prepare_archive, source, signing_key, Path(tmp)
            )
            return await self._push_archive(archive, manifest, progress)

    async def _push_archive(
        self, archive: Path, manifest: SignedManifest, progress: Progress | None
    ) -> PushResult:
        path = f"/bundles/{manifest.sha1}"
        if await self.has_bundle(manifest.sha1):
            if progress is not None:
                progress(manifest.size, manifest.size)
            return PushResult(manifest.sha1, manifest.size, created=False)
        headers = {
            MANIFEST_HEADER: manifest.to_header(),
            "Content-Type": "application/zstd",
            "Content-Length": str(manifest.size),
        }
        response = await self.request(
            "PUT",
            path,
            data=_file_chunks(archive, progress, manifest.size),
            headers=headers,
            failover=False,
        )
        async with response:
            created = response.status == 201
        return PushResult(manifest.sha1, manifest.size, created)

    async def has_bundle(self, sha1: str) -> bool:
        try:
            response = await self.request("HEAD", f"/bundles/{validate_sha1(sha1)}")
        except NotFound:
            return False
        response.release()
        return True

    async def list_bundles(self) -> list[dict[str, Any]]:
        body = await self.request_json("GET", "/bundles/")
        return list(body["bundles"])

    async def bundle_manifest(self, sha1: str) -> SignedManifest:
        body = await self.request_json("GET", f"/bundles/{validate_sha1(sha1)}/manifest")
        return SignedManifest.from_dict(body)

    async def delete_bundle(self, sha1: str) -> None:
        response = await self.request("DELETE", f"/bundles/{validate_sha1(sha1)}")
        response.release()

    async def pull_bundle(
        self, sha1: str, destination: str | os.PathLike[str], progress: Progress | None = None
    ) -> Path:
        """Download ``sha1`` to ``destination``, checking SHA-1 and the manifest's SHA-256."""
        validate_sha1(sha1)
        manifest = await self.bundle_manifest(sha1)
        target = Path(destination)
        temp = target.with_name(f".{target.name}.partial")
        digest1 = hashlib.sha1()  # noqa: S324 - the content address
        digest256 = hashlib.sha256()
        try:
            response = await self.request("GET", f"/bundles/{sha1}")
            async with response:
                with temp.open("wb") as f:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        digest1.update(chunk)
                        digest256.update(chunk)
                        f.write(chunk)
                        if progress is not None:
                            progress(len(chunk), manifest.size)
            if digest1.hexdigest() != sha1 or digest256.hexdigest() != manifest.sha256:
                raise DigestMismatch(f"the bytes received do not match bundle {sha1}")
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        return target
