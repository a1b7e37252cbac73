"""Slow bodies are cut and uploads are few at a time, on a real peer; honest uploads, large or
slow but steady, go through."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from disruptor.address import Address
from disruptor.bundles.pack import pack_to_file
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.settings import HttpSettings, PeerSettings

from ..bundles.archives import make_app
from ..cluster import eventually, free_port
from .test_bundles_functional import _raw_put_head, sign_bytes

# Tight pace, so that the tests take seconds: 0.5 s of grace, 20 KB/s at least.
PACED = HttpSettings(body_rate_min_bytes_s=20_000, body_grace_s=0.5, body_idle_timeout_s=2.0)


async def open_paced_peer(home: Home, http: HttpSettings = PACED, **bundles: int) -> Peer:
    config = PeerSettings(address=Address("127.0.0.1", free_port()), home=home.root, http=http)
    if bundles:
        config = replace(config, bundles=replace(config.bundles, **bundles))
    peer = Peer(config)
    await peer.start()
    return peer


@pytest.fixture
async def paced(home: Home) -> AsyncIterator[Peer]:
    peer = await open_paced_peer(home)
    try:
        yield peer
    finally:
        await peer.stop()


def bundle_of(peer: Peer, tmp_path: Path, payload_bytes: int) -> tuple[bytes, object]:
    archive = tmp_path / f"b{payload_bytes}.tar.zst"
    app = make_app(tmp_path / f"app{payload_bytes}", {"payload.bin": os.urandom(payload_bytes)})
    pack_to_file(app, archive)
    data = archive.read_bytes()
    return data, sign_bytes(peer.home, data)


async def trickle(peer: Peer, head: bytes, stop: asyncio.Event) -> bytes:
    """Send ``head`` then a byte every 0.1 s until the peer closes; what the peer answered."""
    reader, writer = await asyncio.open_connection(peer.address.host, peer.address.port)
    writer.write(head)
    answer = b""
    try:
        while not stop.is_set():
            writer.write(b"x")
            await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.1)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
            if _whole_response(answer):
                break  # answered: a client that reads its answer stops here
    except ConnectionError:
        pass
    finally:
        writer.close()
    return answer


def _whole_response(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


async def test_a_trickled_upload_is_cut_and_leaves_nothing(paced: Peer, tmp_path: Path) -> None:
    data, manifest = bundle_of(paced, tmp_path, 1000)
    head = _raw_put_head(paced, manifest.sha1, manifest, 1024**3)  # type: ignore[arg-type]
    answer = await asyncio.wait_for(trickle(paced, head, asyncio.Event()), 30)
    assert answer == b""  # closed without an answer, as a client too slow to hear one
    assert paced.store is not None
    await eventually(
        lambda: not any(paced.store.tmp_dir.iterdir()), "the temporary file to go", timeout_s=20
    )
    assert paced.store.stats.uploads_broken == 1
    auth = {"Authorization": f"Bearer {paced.api_token}"}
    async with aiohttp.ClientSession(base_url=paced.url, headers=auth) as http:
        headers = {"X-Disruptor-Manifest": manifest.to_header()}  # type: ignore[attr-defined]
        async with http.put(f"/bundles/{manifest.sha1}", data=data, headers=headers) as r:  # type: ignore[attr-defined]
            assert r.status == 201


async def test_any_trickled_body_is_cut_whatever_the_route(paced: Peer) -> None:
    head = (
        f"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {paced.api_token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
    ).encode()
    answer = await asyncio.wait_for(trickle(paced, head, asyncio.Event()), 30)
    assert answer == b""


async def test_a_slow_but_steady_upload_goes_through(paced: Peer, tmp_path: Path) -> None:
    # 60 KB at 40 KB/s, twice the minimum rate: 1.5 s, three times the grace.
    data, manifest = bundle_of(paced, tmp_path, 60_000)
    reader, writer = await asyncio.open_connection(paced.address.host, paced.address.port)
    writer.write(_raw_put_head(paced, manifest.sha1, manifest, len(data)))  # type: ignore[arg-type]
    for i in range(0, len(data), 4000):
        writer.write(data[i : i + 4000])
        await writer.drain()
        await asyncio.sleep(0.1)  # the pace of this client, not a wait for the peer
    status = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    assert b" 201 " in status


async def test_a_large_upload_over_loopback_goes_through(home: Home, tmp_path: Path) -> None:
    peer = await open_paced_peer(home, HttpSettings())  # the defaults
    try:
        data, manifest = bundle_of(peer, tmp_path, 50 * 1024 * 1024)
        auth = {"Authorization": f"Bearer {peer.api_token}"}
        async with aiohttp.ClientSession(base_url=peer.url, headers=auth) as http:
            headers = {"X-Disruptor-Manifest": manifest.to_header()}  # type: ignore[attr-defined]
            async with http.put(
                f"/bundles/{manifest.sha1}",  # type: ignore[attr-defined]
                data=io.BytesIO(data),
                headers=headers,
            ) as r:
                assert r.status == 201
    finally:
        await peer.stop()


async def test_uploads_past_a_clients_share_get_503_and_retry_after(
    home: Home, tmp_path: Path
) -> None:
    slow = HttpSettings(body_rate_min_bytes_s=1.0, body_grace_s=60.0, body_idle_timeout_s=60.0)
    peer = await open_paced_peer(home, slow, uploads_per_client_max=2, uploads_max=10)
    stop = asyncio.Event()
    try:
        _data, manifest = bundle_of(peer, tmp_path, 1000)
        head = _raw_put_head(peer, manifest.sha1, manifest, 1024**3)  # type: ignore[arg-type]
        assert peer.store is not None
        holders = [asyncio.create_task(trickle(peer, head, stop)) for _ in range(2)]
        await eventually(
            lambda: len(list(peer.store.tmp_dir.iterdir())) == 2, "two uploads", timeout_s=20
        )
        refused = await asyncio.wait_for(trickle(peer, head, stop), 30)
        status, _, rest = refused.partition(b"\r\n")
        assert b" 503 " in status and b"Retry-After: 5" in rest
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["type"] == "urn:disruptor:problem:unavailable"
        assert "2 uploads from 127.0.0.1" in body["detail"]
        assert peer.store.stats.uploads_refused_busy == 1
        auth = {"Authorization": f"Bearer {peer.api_token}"}
        async with (
            aiohttp.ClientSession(headers=auth) as http,
            http.get(peer.url + "/metrics") as r,
        ):
            metrics = await r.text()
        assert "disruptor_bundles_uploads_refused_busy_total 1.0" in metrics
        stop.set()
        await asyncio.gather(*holders)
        await eventually(
            lambda: not any(peer.store.tmp_dir.iterdir()), "the uploads to end", timeout_s=20
        )
    finally:
        stop.set()
        await peer.stop()


async def test_uploads_wait_when_descriptors_run_short(home: Home, tmp_path: Path) -> None:
    # A reserve larger than any descriptor limit: every upload waits, everything else is served.
    peer = await open_paced_peer(home, HttpSettings(descriptors_reserved=1 << 30))
    try:
        data, manifest = bundle_of(peer, tmp_path, 1000)
        auth = {"Authorization": f"Bearer {peer.api_token}"}
        async with aiohttp.ClientSession(base_url=peer.url, headers=auth) as http:
            headers = {"X-Disruptor-Manifest": manifest.to_header()}  # type: ignore[attr-defined]
            async with http.put(f"/bundles/{manifest.sha1}", data=data, headers=headers) as r:  # type: ignore[attr-defined]
                assert r.status == 503 and r.headers["Retry-After"] == "5"
                assert "descriptors" in (await r.json(content_type=None))["detail"]
            async with http.get("/health") as r:
                assert r.status == 200
            async with http.get("/bundles/") as r:
                assert r.status == 200
    finally:
        await peer.stop()
