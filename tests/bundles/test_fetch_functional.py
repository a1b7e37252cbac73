"""Fetching bundles between two real in-process peers: resume, failover, single flight, trust."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from disruptor.address import Address
from disruptor.bundles.pack import pack_to_file
from disruptor.bundles.signing import generate_key, load_or_create_key, sign_manifest
from disruptor.errors import NotFound, PeerUnreachable, UntrustedSigner
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.settings import PeerSettings

from ..cluster import free_port
from ..conftest import open_peer
from .archives import make_app
from .test_store import upload


@pytest.fixture
async def second(home: Home) -> AsyncIterator[Peer]:
    """Another peer of the same user (same data directory: same secret and keys)."""
    async with open_peer(home) as running:
        yield running


async def held_by(peer: Peer, tmp_path: Path, key_from: Home | None = None) -> str:
    archive = tmp_path / f"b-{os.urandom(3).hex()}.tar.zst"
    result = pack_to_file(make_app(tmp_path / "app", {"blob": os.urandom(300_000)}), archive)
    key = load_or_create_key(peer.home.signing_key_path)[0] if key_from is None else generate_key()
    manifest = sign_manifest(
        key,
        sha1=result.sha1,
        sha256=result.sha256,
        size=result.size,
        name="demo",
        version="1.0",
        signed_at=1,
    )
    assert peer.store is not None
    await upload(peer.store, result.sha1, archive.read_bytes(), manifest)
    return result.sha1


def dead_address() -> Address:
    return Address("127.0.0.1", free_port())


async def test_fetch_from_another_peer(peer: Peer, second: Peer, tmp_path: Path) -> None:
    sha1 = await held_by(peer, tmp_path)
    assert second.store is not None and peer.store is not None
    # The first source is down: the fetch moves on to the next.
    await second.fetcher.fetch(sha1, [dead_address(), peer.address])
    assert second.store.path(sha1).read_bytes() == peer.store.path(sha1).read_bytes()
    assert second.store.manifest(sha1) == peer.store.manifest(sha1)
    assert second.store.stats.fetches == 1 and second.store.stats.uploads == 1
    unpacked = await second.store.unpack(sha1)
    assert (unpacked / "bundle.toml").exists()
    assert list(second.store.tmp_dir.iterdir()) == []


async def test_concurrent_fetches_are_one_transfer(
    peer: Peer, second: Peer, tmp_path: Path
) -> None:
    sha1 = await held_by(peer, tmp_path)
    assert second.store is not None
    await asyncio.gather(*(second.fetcher.fetch(sha1, [peer.address]) for _ in range(6)))
    assert second.store.stats.fetches == 1
    assert second.store.has(sha1)


async def test_a_broken_transfer_resumes_with_a_range(
    peer: Peer, second: Peer, tmp_path: Path
) -> None:
    sha1 = await held_by(peer, tmp_path)
    assert peer.store is not None and second.store is not None
    data = peer.store.path(sha1).read_bytes()
    manifest = peer.store.manifest(sha1)
    partial = second.store.begin_upload(sha1)
    partial.write(data[: len(data) // 3])  # what arrived before the connection broke
    await second.fetcher._get_bytes(peer.address, sha1, partial, manifest.size)
    assert partial.size == len(data)
    assert await partial.commit(manifest) is True
    assert second.store.path(sha1).read_bytes() == data


async def test_missing_everywhere_and_unreachable(peer: Peer, second: Peer, tmp_path: Path) -> None:
    assert second.store is not None
    with pytest.raises(PeerUnreachable):
        await second.fetcher.fetch("a" * 40, [peer.address, dead_address()])
    with pytest.raises(NotFound):
        await second.fetcher.fetch("a" * 40, [])
    assert second.store.stats.fetch_failures == 2
    assert list(second.store.tmp_dir.iterdir()) == []


async def test_an_untrusted_bundle_is_not_fetched(home: Home, second: Peer, tmp_path: Path) -> None:
    other_home = Home(tmp_path / "other").ensure()
    (other_home.root / "cluster.secret").write_bytes((home.root / "cluster.secret").read_bytes())
    settings = PeerSettings(
        address=Address("127.0.0.1", free_port()), home=other_home.root, insecure_dev=True
    )
    lax = Peer(settings)
    await lax.start()
    try:
        sha1 = await held_by(lax, tmp_path, key_from=other_home)
        assert second.store is not None
        with pytest.raises(UntrustedSigner):
            await second.fetcher.fetch(sha1, [lax.address])
        assert not second.store.has(sha1)
        assert list(second.store.tmp_dir.iterdir()) == []
    finally:
        await lax.stop()


async def test_a_transfer_cut_by_its_source_resumes_at_the_next(
    peer: Peer, second: Peer, tmp_path: Path
) -> None:
    """A source that dies half-way through the body: the next source sends only the rest."""
    from aiohttp import web

    sha1 = await held_by(peer, tmp_path)
    assert peer.store is not None and second.store is not None
    data = peer.store.path(sha1).read_bytes()
    manifest_json = peer.store.manifest(sha1).to_json()

    async def manifest(request: web.Request) -> web.Response:
        return web.Response(body=manifest_json, content_type="application/json")

    async def body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        assert request.transport is not None
        request.transport.abort()  # the source dies mid-transfer
        return response

    app = web.Application()
    app.router.add_get(f"/bundles/{sha1}/manifest", manifest)
    app.router.add_get(f"/bundles/{sha1}", body)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    flaky = Address("127.0.0.1", runner.addresses[0][1])
    try:
        await second.fetcher.fetch(sha1, [flaky, peer.address])
    finally:
        await runner.cleanup()
    assert second.store.path(sha1).read_bytes() == data
    # Half came from the dead source and only the other half from the good one: a resumed range.
    assert second.store.stats.bytes_received == len(data)
    assert second.store.stats.fetch_resumes == 1
