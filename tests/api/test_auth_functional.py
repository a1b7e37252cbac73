"""Peer calls cannot be replayed: a captured ``X-Disruptor-Peer`` header works once, for its body.

The header is captured off the wire: a peer seeded with a fake address sends its push-pull there
(``POST /membership/sync``, signed with the cluster secret), and the test replays what it caught
against a real peer of the same cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from disruptor.address import Address
from disruptor.home import Home

from ..cluster import eventually, free_port
from ..conftest import open_peer

PEER_HEADER = "X-Disruptor-Peer"
SYNC_PATH = "/membership/sync"


@pytest.fixture
async def captured(home: Home) -> AsyncIterator[tuple[str, bytes]]:
    """One signed push-pull (its peer header and body), caught by a fake seed."""
    calls: list[tuple[str, bytes]] = []

    async def catch(request: web.Request) -> web.Response:
        calls.append((request.headers.get(PEER_HEADER, ""), await request.read()))
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post(SYNC_PATH, catch)
    runner = web.AppRunner(app)
    await runner.setup()
    fake = Address("127.0.0.1", free_port())
    site = web.TCPSite(runner, fake.host, fake.port)
    await site.start()
    try:
        async with open_peer(home, [fake]):
            await eventually(lambda: bool(calls), "a push-pull to the fake seed")
        yield calls[0]
    finally:
        await runner.cleanup()


async def test_a_captured_peer_header_is_refused_with_another_body_or_the_same(
    home: Home, captured: tuple[str, bytes]
) -> None:
    header, body = captured
    assert header and body
    async with open_peer(home) as target, aiohttp.ClientSession() as http:
        url = target.url + SYNC_PATH

        async def send(data: bytes) -> int:
            headers = {PEER_HEADER: header, "Content-Type": "application/json"}
            async with http.post(url, data=data, headers=headers) as reply:
                await reply.read()
                return reply.status

        # Delivered once, as sent: accepted (the body is a valid push-pull of this cluster).
        assert await send(body) == 200
        # The same header with another body (what an eavesdropper would do): refused.
        assert await send(b'{"jobs": "anything"}') == 401
        # The same header and the same body again: a replay, refused.
        assert await send(body) == 401
