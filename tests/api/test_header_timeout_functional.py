"""The request-head deadline: heads must arrive in time; bodies and fast clients are untouched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from disruptor.api.header_timeout import HeaderTimeoutAppRunner

TIMEOUT_S = 0.5


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(body=b"got %d" % len(body))


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, int]]:
    app = web.Application()
    app.router.add_route("*", "/", echo)
    runner = HeaderTimeoutAppRunner(app, header_timeout_s=TIMEOUT_S, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield "127.0.0.1", port
    finally:
        await runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


async def test_a_head_that_never_completes_is_dropped(server: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10 * TIMEOUT_S + 10) == b""
    writer.close()
    await writer.wait_closed()


async def test_the_second_head_on_a_keep_alive_connection_is_timed_too(
    server: tuple[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"got 0" in await asyncio.wait_for(read_response(reader), 10)
    writer.write(b"GET / HTTP/1.1\r\nHo")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10 * TIMEOUT_S + 10) == b""
    writer.close()
    await writer.wait_closed()


async def test_a_slow_body_is_not_cut(server: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
    for byte in b"abcd":
        # The body arrives over about twice the head deadline; only heads are bounded.
        await asyncio.sleep(TIMEOUT_S / 2)
        writer.write(bytes([byte]))
        await writer.drain()
    assert b"got 4" in await asyncio.wait_for(read_response(reader), 10)
    writer.close()
    await writer.wait_closed()


async def test_an_idle_keep_alive_connection_is_left_to_keep_alive(
    server: tuple[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(*server)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"got 0" in await asyncio.wait_for(read_response(reader), 10)
    await asyncio.sleep(2 * TIMEOUT_S)  # idle, no head started: the head deadline is not running
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"got 0" in await asyncio.wait_for(read_response(reader), 10)
    writer.close()
    await writer.wait_closed()


@pytest.fixture
async def capped() -> AsyncIterator[tuple[str, int]]:
    app = web.Application()
    app.router.add_route("*", "/", echo)
    runner = HeaderTimeoutAppRunner(
        app, header_timeout_s=30.0, connections_per_client_max=2, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield "127.0.0.1", runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_connections_past_a_clients_share_get_a_503_and_are_closed(
    capped: tuple[str, int],
) -> None:
    held = [await asyncio.open_connection(*capped) for _ in range(2)]
    reader, writer = await asyncio.open_connection(*capped)
    # Answered at once, before it sends anything, then closed.
    refusal = await asyncio.wait_for(reader.read(), 10)
    assert refusal.startswith(b"HTTP/1.1 503 ") and b"Retry-After: " in refusal
    writer.close()
    # The two admitted connections are served as usual.
    for r, w in held:
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"got 0" in await asyncio.wait_for(read_response(r), 10)
    # Once one of them closes, its place is free again.
    held[0][1].close()
    await held[0][1].wait_closed()

    async def admitted() -> bool:
        r, w = await asyncio.open_connection(*capped)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(read_response(r), 10)
        w.close()
        return b"got 0" in answer

    for _ in range(200):  # the server sees the close a moment after we do
        if await admitted():
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("a freed place was never given again")
    held[1][1].close()
