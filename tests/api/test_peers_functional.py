"""``GET /peers`` and ``POST /membership/sync`` on real in-process peers."""

from __future__ import annotations

import io

import aiohttp

from disruptor.membership.driver import SYNC_PATH
from disruptor.peer import Peer

from ..cluster import eventually
from ..link.support import peer_headers
from ..membership.test_driver_functional import driver, states


async def test_peers_lists_self_first_then_the_others(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    await eventually(lambda: states(a).get(str(b.address)) == "alive", "a to list b")
    headers = {"Authorization": f"Bearer {a.api_token}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(a.url + "/peers", headers=headers) as r:
            assert r.status == 200
            body = await r.json()
        async with s.get(a.url + "/peers") as r:
            assert r.status == 401
    assert body["self"] == str(a.address)
    first, second = body["peers"]
    assert first["address"] == str(a.address) and first["self"] is True
    assert second["address"] == str(b.address) and second["state"] == "alive"
    assert second["incarnation"] == driver(b).protocol.incarnation  # type: ignore[union-attr]
    assert set(second["load"]) == {"tasks_running", "queue_length", "worker_slots_free"}


async def test_sync_needs_peer_auth_and_a_valid_body(pair: tuple[Peer, Peer]) -> None:
    a, _ = pair
    async with aiohttp.ClientSession() as s:
        async with s.post(a.url + SYNC_PATH, data=b"{}") as r:
            assert r.status == 401
        headers = peer_headers(a.cluster_secret, "POST", SYNC_PATH, b"not json")
        async with s.post(a.url + SYNC_PATH, data=b"not json", headers=headers) as r:
            assert r.status == 400
            assert (await r.json(content_type=None))["type"].endswith("protocol-error")
        big = b"x" * (driver(a).config.sync_bytes_max + 10)
        headers = peer_headers(a.cluster_secret, "POST", SYNC_PATH, big)
        async with s.post(a.url + SYNC_PATH, data=io.BytesIO(big), headers=headers) as r:
            assert r.status == 413
