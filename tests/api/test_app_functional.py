from __future__ import annotations

import aiohttp

from disruptor.peer import Peer


async def test_health_is_public(peer: Peer) -> None:
    async with aiohttp.ClientSession() as s, s.get(peer.url + "/health") as r:
        assert r.status == 200
        assert (await r.json())["address"] == str(peer.address)


async def test_unknown_path_is_problem_json_404(peer: Peer) -> None:
    headers = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession() as s, s.get(peer.url + "/nope", headers=headers) as r:
        assert r.status == 404
        assert r.headers["Content-Type"].startswith("application/problem+json")
        body = await r.json(content_type=None)
        assert body["type"] == "urn:disruptor:problem:not-found"


async def test_wrong_token_is_401(peer: Peer) -> None:
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with s.get(peer.url + "/nope", headers=headers) as r:
                assert r.status == 401
                body = await r.json(content_type=None)
                assert body["type"] == "urn:disruptor:problem:unauthorized"
