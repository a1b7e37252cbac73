"""A full disk under a real peer's store: 507 with its own problem type, logged, counted, and
nothing half-written left; the peer goes on serving."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.signing import (
    SignedManifest,
    format_public_key,
    generate_key,
    load_or_create_key,
    public_raw,
    sign_manifest,
)
from disruptor.bundles.store import BundleStore
from disruptor.bundles.trust import TrustStore
from disruptor.errors import InsufficientStorage
from disruptor.home import Home
from disruptor.peer import Peer

from ..conftest import open_peer
from .archives import make_app
from .tmpfs import small_tmpfs

PROBLEM = "urn:disruptor:problem:"
TMPFS_BYTES = 6 * 1024 * 1024


def signed(key: Ed25519PrivateKey, data: bytes) -> SignedManifest:
    return sign_manifest(
        key,
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        name="demo",
        version="1.0",
        signed_at=1_700_000_000,
    )


def packed(directory: Path, extra: dict[str, bytes] | None = None) -> bytes:
    archive = directory / "bundle.tar.zst"
    pack_to_file(make_app(directory / "app", extra), archive)
    return archive.read_bytes()


@pytest.fixture
async def peer_on_small_disk(tmp_path: Path) -> AsyncIterator[Peer]:
    with small_tmpfs(tmp_path / "small", TMPFS_BYTES) as mount:
        home = Home(mount / "home").ensure()
        async with open_peer(home) as peer:
            yield peer


async def test_a_full_disk_during_an_upload_is_a_507(
    peer_on_small_disk: Peer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    peer = peer_on_small_disk
    assert peer.store is not None
    key, _ = load_or_create_key(peer.home.signing_key_path)
    body = os.urandom(2 * TMPFS_BYTES)  # more than the disk holds: it fills while streaming
    manifest = signed(key, body)
    caplog.set_level(logging.WARNING, logger="disruptor.bundles")
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession(base_url=peer.url, headers=auth) as http:
        headers = {"X-Disruptor-Manifest": manifest.to_header()}
        async with http.put(
            f"/bundles/{manifest.sha1}", data=io.BytesIO(body), headers=headers
        ) as r:
            assert r.status == 507
            problem = await r.json(content_type=None)
        assert problem["type"] == PROBLEM + "insufficient-storage"
        assert problem["free_bytes"] >= 0 and "disk is full" in problem["detail"]
        # Nothing half-written is left, and the space is back.
        assert list(peer.store.tmp_dir.iterdir()) == []
        assert peer.store.sha1s() == set()
        warnings = [r for r in caplog.records if "disk full" in r.getMessage()]
        assert warnings and warnings[0].levelno == logging.WARNING
        assert "bytes free" in warnings[0].getMessage()
        async with http.get("/metrics") as r:
            text = await r.text()
        samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples["disruptor_bundles_disk_full_refusals_total"] == 1.0
        # The peer serves on: a bundle that fits is stored.
        small = packed(tmp_path)
        fits = signed(key, small)
        headers = {"X-Disruptor-Manifest": fits.to_header()}
        async with http.put(f"/bundles/{fits.sha1}", data=small, headers=headers) as r:
            assert r.status == 201


async def test_a_full_disk_during_an_unpack_leaves_no_partial_tree(tmp_path: Path) -> None:
    key = generate_key()
    with small_tmpfs(tmp_path / "small", 2 * 1024 * 1024) as mount:
        trust = TrustStore(mount / "trusted")
        trust.add(format_public_key(public_raw(key)))
        store = BundleStore(mount / "store", mount / "unpacked", trust)
        # 8 MiB of zeros packs into a few KiB and unpacks into more than the disk holds.
        data = packed(tmp_path, {"zeros.bin": bytes(8 * 1024 * 1024)})
        manifest = signed(key, data)
        upload = store.begin_upload(manifest.sha1)
        upload.write(data)
        assert await upload.commit(manifest)
        with pytest.raises(InsufficientStorage, match="disk is full"):
            await store.unpack(manifest.sha1)
        assert list(store.tmp_dir.iterdir()) == []
        assert not (store.unpacked_root / manifest.sha1).exists()
        assert store.stats.disk_full_refusals == 1
