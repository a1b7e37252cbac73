"""The bundle store: content-addressed, verified, atomic and durable.

Layout (inside the peer's own state directory)::

    store/blobs/<sha1>.tar.zst       the verified bundle bytes
    store/manifests/<sha1>.json      its signed manifest
    store/tmp/                       uploads and unpacks in progress (emptied at start-up)
    unpacked/<sha1>/                 read-only extracted trees (see ``unpack``)

Rule: a bundle appears under its name only after every check passed. Bytes stream into a
temporary file while SHA-1, SHA-256 and size are counted; then the file is fsynced, the SHA-1 is
compared with the name, the SHA-256 and size with the signed manifest, the signature is checked
against a trusted key, and the archive is decoded whole (tar rules, limits, ``bundle.toml``
present and naming the same app and version). Only then are the manifest and the blob renamed into
place (manifest first, so a blob never lacks one) and the directory fsynced. A crash at any point
leaves temporary files, which the next start removes. A full disk (``ENOSPC``, ``EDQUOT``) at any
write is ``InsufficientStorage`` (507): logged at warning with the free space, counted in
``stats.disk_full_refusals``, and the half-written files removed like any other failure.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    DigestMismatch,
    InsufficientStorage,
    InvalidName,
    ManifestInvalid,
    NotFound,
    PayloadTooLarge,
    SignatureInvalid,
    UntrustedSigner,
)
from .settings import BundleSettings
from .signing import SignedManifest, unsigned_manifest, verify_signature
from .trust import TrustStore
from .unpack import check_archive, remove_tree, unpack_archive

log = logging.getLogger("disruptor.bundles")

SHA1_RE = re.compile(r"[0-9a-f]{40}")
BLOB_SUFFIX = ".tar.zst"
# The errors a write gives when the file system (or the user's quota) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def validate_sha1(name: str) -> str:
    """``name`` if it is exactly 40 lower-case hex digits, else ``InvalidName``."""
    if not SHA1_RE.fullmatch(name):
        raise InvalidName(
            f"{name[:80]!r} is not a bundle name: a bundle is named by 40 lower-case hex digits"
        )
    return name


@dataclass
class StoreStats:
    uploads: int = 0  # bundles stored for the first time (by upload or fetch)
    uploads_duplicate: int = 0  # uploads of a bundle already held
    verify_failures: int = 0
    bytes_received: int = 0
    bytes_stored: int = 0
    bundles: int = 0
    unpacks: int = 0
    fetches: int = 0
    fetch_failures: int = 0
    fetch_resumes: int = 0  # transfers continued with a byte range after a break
    bytes_fetched: int = 0
    deletes: int = 0
    # Writes abandoned because the disk was full (uploads, fetches, unpacks): alert on it.
    disk_full_refusals: int = 0
    # Uploads refused before their body (too many at once, or descriptors running short).
    uploads_refused_busy: int = field(default=0, metadata={"metric": "counter"})
    # Uploads whose body broke off: the client went away, or sent too slowly and was cut.
    uploads_broken: int = 0


@dataclass(frozen=True)
class BundleInfo:
    sha1: str
    size: int
    name: str
    version: str
    key_id: str
    signed_at: int
    created_at: float  # when this peer stored it (Unix seconds)


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system (-1 if unknown)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Upload:
    """One bundle body arriving: a temporary file plus running digests and a size bound."""

    def __init__(self, store: BundleStore, sha1: str) -> None:
        self.store = store
        self.sha1_expected = sha1
        fd_name = f"upload-{sha1}-{os.getpid()}-{id(self):x}.part"
        self.temp_path = store.tmp_dir / fd_name
        try:
            self._file = open(self.temp_path, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            store.raise_if_disk_full(exc, "starting an upload")
            raise
        self._sha1 = hashlib.sha1()  # noqa: S324 - the content address, checked with SHA-256 too
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.done = False

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.store.limits.upload_bytes_max:
            raise PayloadTooLarge(
                f"bundle body exceeds {self.store.limits.upload_bytes_max} bytes",
                limit_bytes=self.store.limits.upload_bytes_max,
            )
        self._sha1.update(chunk)
        self._sha256.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            self.store.raise_if_disk_full(exc, "receiving a bundle")
            raise
        self.store.stats.bytes_received += len(chunk)

    def reset(self) -> None:
        """Start over from byte 0 (a source ignored a range request)."""
        self._file.seek(0)
        self._file.truncate()
        self._sha1 = hashlib.sha1()  # noqa: S324
        self._sha256 = hashlib.sha256()
        self.size = 0

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.temp_path.unlink(missing_ok=True)
        self.done = True

    async def commit(self, manifest: SignedManifest | None) -> bool:
        """Verify and store; True if newly stored, False if already held. Always cleans up."""
        try:
            return await self._commit(manifest)
        except BaseException:
            self.store.stats.verify_failures += 1
            raise
        finally:
            self.abort()

    async def _commit(self, manifest: SignedManifest | None) -> bool:
        store = self.store
        try:
            self._file.flush()
            await asyncio.to_thread(os.fsync, self._file.fileno())
            self._file.close()
        except OSError as exc:
            store.raise_if_disk_full(exc, "writing a bundle to disk")
            raise
        sha1, sha256 = self._sha1.hexdigest(), self._sha256.hexdigest()
        if sha1 != self.sha1_expected:
            raise DigestMismatch(
                f"the body's SHA-1 is {sha1}, not {self.sha1_expected} as the URL says"
            )
        if manifest is not None:
            if manifest.sha1 != sha1:
                raise DigestMismatch("the signed manifest names another bundle")
            if manifest.sha256 != sha256 or manifest.size != self.size:
                raise DigestMismatch(
                    "the body's SHA-256 or size differs from the signed manifest's"
                )
        store.check_signer(manifest)
        app = await asyncio.to_thread(check_archive, self.temp_path, store.limits)
        if manifest is None:
            manifest = unsigned_manifest(
                sha1=sha1,
                sha256=sha256,
                size=self.size,
                name=app.name,
                version=app.version,
                signed_at=int(store.clock()),
            )
        elif (app.name, app.version) != (manifest.name, manifest.version):
            raise ManifestInvalid(
                f"bundle.toml says {app.name} {app.version}; the signature covers "
                f"{manifest.name} {manifest.version}"
            )
        return await store._install(sha1, self.temp_path, manifest)


class BundleStore:
    def __init__(
        self,
        root: Path,
        unpacked_root: Path,
        trust: TrustStore,
        limits: BundleSettings | None = None,
        *,
        insecure_dev: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.blobs_dir = root / "blobs"
        self.manifests_dir = root / "manifests"
        self.tmp_dir = root / "tmp"
        self.unpacked_root = unpacked_root
        self.trust = trust
        self.limits = limits or BundleSettings()
        self.insecure_dev = insecure_dev
        self.clock = clock
        self.stats = StoreStats()
        self._commit_locks: dict[str, asyncio.Lock] = {}
        self._unpacking: dict[str, asyncio.Future[Path]] = {}
        for path in (self.blobs_dir, self.manifests_dir, self.tmp_dir, self.unpacked_root):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._recover()

    def _recover(self) -> None:
        """Remove what a crash left: temporaries, and manifests whose blob never arrived."""
        for leftover in self.tmp_dir.iterdir():
            if leftover.is_dir() and not leftover.is_symlink():
                remove_tree(leftover)
            else:
                leftover.unlink(missing_ok=True)
        for manifest in self.manifests_dir.glob("*.json"):
            if not (self.blobs_dir / f"{manifest.stem}{BLOB_SUFFIX}").exists():
                manifest.unlink(missing_ok=True)
        for stray in self.manifests_dir.glob(".*"):
            stray.unlink(missing_ok=True)
        held = self.sha1s()
        # What is held, in memory: ``has`` is asked on every job, and this process alone writes
        # its store (every peer has a store of its own).
        self._held = set(held)
        self.stats.bundles = len(held)
        self.stats.bytes_stored = sum(self._blob(s).stat().st_size for s in held)

    # --- reading -------------------------------------------------------------------------

    def _blob(self, sha1: str) -> Path:
        return self.blobs_dir / f"{sha1}{BLOB_SUFFIX}"

    def has(self, sha1: str) -> bool:
        return sha1 in self._held

    def path(self, sha1: str) -> Path:
        """The verified ``.tar.zst`` of a held bundle (``NotFound`` otherwise)."""
        validate_sha1(sha1)
        blob = self._blob(sha1)
        if not blob.exists():
            raise NotFound(f"bundle {sha1} is not held by this peer")
        return blob

    def manifest(self, sha1: str) -> SignedManifest:
        validate_sha1(sha1)
        try:
            raw = (self.manifests_dir / f"{sha1}.json").read_bytes()
        except FileNotFoundError:
            raise NotFound(f"bundle {sha1} is not held by this peer") from None
        return SignedManifest.from_json(raw)

    def sha1s(self) -> set[str]:
        return {
            p.name.removesuffix(BLOB_SUFFIX)
            for p in self.blobs_dir.glob(f"*{BLOB_SUFFIX}")
            if SHA1_RE.fullmatch(p.name.removesuffix(BLOB_SUFFIX))
        }

    def changed_at(self) -> float:
        """When a bundle was last added or removed (the blobs directory's modification time)."""
        return self.blobs_dir.stat().st_mtime

    def info(self, sha1: str) -> BundleInfo:
        manifest = self.manifest(sha1)
        st = self.path(sha1).stat()
        return BundleInfo(
            sha1=sha1,
            size=st.st_size,
            name=manifest.name,
            version=manifest.version,
            key_id=manifest.key_id,
            signed_at=manifest.signed_at,
            created_at=st.st_mtime,
        )

    def list(self) -> list[BundleInfo]:
        infos = []
        for sha1 in sorted(self.sha1s()):
            try:
                infos.append(self.info(sha1))
            except NotFound:
                continue  # deleted while listing
        return infos

    # --- writing -------------------------------------------------------------------------

    def begin_upload(self, sha1: str) -> Upload:
        return Upload(self, validate_sha1(sha1))

    def raise_if_disk_full(self, exc: OSError, doing: str) -> None:
        """Raise ``InsufficientStorage`` (logged, counted) if ``exc`` says the disk is full."""
        if exc.errno not in DISK_FULL_ERRNOS:
            return
        self.stats.disk_full_refusals += 1
        free = free_bytes(self.root)
        log.warning(
            "bundle store %s: disk full while %s (%s bytes free): %s",
            self.root,
            doing,
            free,
            exc.strerror,
        )
        raise InsufficientStorage(
            f"the peer's disk is full ({free} bytes free) while {doing}; nothing was kept",
            free_bytes=free,
        ) from exc

    def check_signer(self, manifest: SignedManifest | None) -> None:
        """Refuse an unsigned, untrusted or badly signed manifest (unless in insecure dev mode)."""
        if manifest is None or not manifest.signed:
            if self.insecure_dev:
                return
            raise SignatureInvalid(
                "the bundle carries no signature; sign it (disruptor push signs for you) or "
                "run the peer with --insecure-dev for development"
            )
        public = self.trust.lookup(manifest.key_id)
        if public is None:
            if self.insecure_dev:
                return
            raise UntrustedSigner(
                f"key {manifest.key_id} is not trusted here (disruptor trust add PUBKEY)",
                key_id=manifest.key_id,
            )
        verify_signature(manifest, public)

    async def _install(self, sha1: str, temp: Path, manifest: SignedManifest) -> bool:
        lock = self._commit_locks.setdefault(sha1, asyncio.Lock())
        async with lock:
            if self._blob(sha1).exists():
                self.stats.uploads_duplicate += 1
                return False
            await asyncio.to_thread(self._install_files, sha1, temp, manifest)
            self._held.add(sha1)
            self.stats.uploads += 1
            self.stats.bundles += 1
            self.stats.bytes_stored += manifest.size
            return True

    def _install_files(self, sha1: str, temp: Path, manifest: SignedManifest) -> None:
        manifest_temp = self.tmp_dir / f"manifest-{sha1}-{os.getpid()}-{id(temp):x}.json"
        try:
            with open(manifest_temp, "xb") as f:
                f.write(manifest.to_json())
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            manifest_temp.unlink(missing_ok=True)
            self.raise_if_disk_full(exc, "writing a bundle's manifest")
            raise
        os.replace(manifest_temp, self.manifests_dir / f"{sha1}.json")
        _fsync_dir(self.manifests_dir)
        os.chmod(temp, 0o400)
        os.replace(temp, self._blob(sha1))
        _fsync_dir(self.blobs_dir)

    def delete(self, sha1: str) -> None:
        blob = self.path(sha1)
        size = blob.stat().st_size
        self._held.discard(sha1)
        blob.unlink(missing_ok=True)
        (self.manifests_dir / f"{sha1}.json").unlink(missing_ok=True)
        unpacked = self.unpacked_root / sha1
        if unpacked.exists():
            # Renamed away first so a reader never sees a half-deleted tree under its name.
            doomed = self.tmp_dir / f"delete-{sha1}-{os.getpid()}"
            os.chmod(unpacked, 0o700)  # a directory moving to a new parent rewrites its ".."
            os.rename(unpacked, doomed)
            remove_tree(doomed)
        self.stats.deletes += 1
        self.stats.bundles = max(0, self.stats.bundles - 1)
        self.stats.bytes_stored = max(0, self.stats.bytes_stored - size)

    # --- unpacking -----------------------------------------------------------------------

    async def unpack(self, sha1: str) -> Path:
        """The read-only ``unpacked/<sha1>/`` tree; many concurrent callers share one unpack."""
        destination = self.unpacked_root / validate_sha1(sha1)
        if destination.is_dir():
            return destination
        flight = self._unpacking.get(sha1)
        if flight is None:
            archive = self.path(sha1)
            flight = asyncio.ensure_future(self._unpack(archive, destination))
            self._unpacking[sha1] = flight
            flight.add_done_callback(lambda _f: self._unpacking.pop(sha1, None))
            flight.add_done_callback(self._count_unpack)
        return await asyncio.shield(flight)

    async def _unpack(self, archive: Path, destination: Path) -> Path:
        try:
            return await asyncio.to_thread(
                unpack_archive, archive, destination, self.tmp_dir, self.limits
            )
        except OSError as exc:
            self.raise_if_disk_full(exc, f"unpacking {destination.name}")
            raise

    def _count_unpack(self, flight: asyncio.Future[Path]) -> None:
        if not flight.cancelled() and flight.exception() is None:
            self.stats.unpacks += 1

    async def close(self) -> None:
        """Wait for unpacks in flight (they clean up after themselves)."""
        pending: list[asyncio.Future[Any]] = list(self._unpacking.values())
        for flight in pending:
            flight.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
