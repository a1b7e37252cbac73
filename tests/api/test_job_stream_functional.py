"""``/jobs/stream``: many jobs on one WebSocket, frames batched both ways, refusals per job."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import msgspec

from disruptor.chunks import Chunk
from disruptor.peer import Peer

from ..cluster import eventually

DOUBLE = "def handle(item):\n    return item * 2\n"
SPIN = "def handle(item):\n    while True:\n        pass\n"


def submit(ref: int, items: list[Any], source: str = DOUBLE, **options: Any) -> dict[str, Any]:
    job = {"snippet": source, "chunks": [msgspec.Raw(Chunk.of(items).data)], **options}
    return {"op": "submit", "ref": ref, "job": job}


async def frames(
    ws: aiohttp.ClientWebSocketResponse, count: int
) -> dict[int, list[dict[str, Any]]]:
    """Read until ``count`` jobs have a last frame (done or error); frames by ref."""
    by_ref: dict[int, list[dict[str, Any]]] = {}
    ended = 0
    while ended < count:
        message = await asyncio.wait_for(ws.receive(), 30)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        for frame in msgspec.msgpack.decode(message.data):
            by_ref.setdefault(frame["ref"], []).append(frame)
            ended += frame["type"] in ("done", "error")
    return by_ref


def socket_to(peer: Peer) -> tuple[aiohttp.ClientSession, str]:
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {peer.api_token}"})
    return session, peer.url + "/jobs/stream"


async def test_many_jobs_in_one_message_each_answered_by_its_ref(peer: Peer) -> None:
    session, url = socket_to(peer)
    async with session, session.ws_connect(url) as ws:
        batch = [submit(ref, [ref, ref + 1]) for ref in range(1, 41)]
        await ws.send_bytes(msgspec.msgpack.encode(batch))
        answers = await frames(ws, 40)
    assert sorted(answers) == list(range(1, 41))
    for ref, (frame,) in answers.items():
        assert frame["type"] == "done"
        assert frame["body"]["values"] == [ref * 2, (ref + 1) * 2]
        assert frame["body"]["state"] == "completed"


async def test_a_refused_job_is_an_error_frame_and_the_others_run(peer: Peer) -> None:
    session, url = socket_to(peer)
    async with session, session.ws_connect(url) as ws:
        bad = submit(2, [1], source="def handle(item):\n    return item._secret\n")
        wrong = {"op": "submit", "ref": 3, "job": {"snippet": DOUBLE, "items": [1], "retries": 99}}
        await ws.send_bytes(msgspec.msgpack.encode([submit(1, [5]), bad]))
        await ws.send_bytes(msgspec.msgpack.encode([{"op": "explode", "ref": 4}]))
        answers = await frames(ws, 3)
        assert answers[1][0]["body"]["values"] == [10]
        assert answers[2][0]["type"] == "error"
        assert answers[2][0]["problem"]["type"].endswith(":snippet-rejected")
        assert answers[4][0]["problem"]["type"].endswith(":invalid-payload")
        # A job whose fields are wrong cannot be decoded at all: the socket ends, saying why.
        await ws.send_bytes(msgspec.msgpack.encode([wrong]))
        closing = await asyncio.wait_for(ws.receive(), 30)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.UNSUPPORTED_DATA
    # ...and the peer keeps serving.
    session, url = socket_to(peer)
    async with session, session.ws_connect(url) as ws:
        await ws.send_bytes(msgspec.msgpack.encode([submit(1, [21])]))
        assert (await frames(ws, 1))[1][0]["body"]["values"] == [42]


async def test_streamed_jobs_send_their_id_pieces_then_a_done_without_results(peer: Peer) -> None:
    session, url = socket_to(peer)
    async with session, session.ws_connect(url) as ws:
        job = submit(7, list(range(12)), stream=True, chunk_size=4)
        await ws.send_bytes(msgspec.msgpack.encode([job]))
        got = (await frames(ws, 1))[7]
    started, *pieces, done = got
    assert started["type"] == "started" and started["body"]["id"] == done["body"]["id"]
    assert {p["type"] for p in pieces} == {"piece"}
    assert done["type"] == "done" and "values" not in done["body"]
    assert sorted(p["body"]["start"] for p in pieces) == [0, 4, 8]
    assert sorted(v for p in pieces for v in p["body"]["values"]) == [2 * i for i in range(12)]


async def test_cancel_and_a_closed_socket_stop_their_jobs(peer: Peer) -> None:
    session, url = socket_to(peer)
    jobs = peer.jobs
    async with session, session.ws_connect(url) as ws:
        await ws.send_bytes(msgspec.msgpack.encode([submit(1, [0], source=SPIN, timeout_s=120)]))
        await eventually(lambda: bool(jobs.in_flight()), "the job to start", timeout_s=30)
        await ws.send_bytes(msgspec.msgpack.encode([{"op": "cancel", "ref": 1}]))
        (done,) = (await frames(ws, 1))[1]
        assert done["body"]["state"] == "cancelled"
        await ws.send_bytes(msgspec.msgpack.encode([submit(2, [0], source=SPIN, timeout_s=120)]))
        await eventually(lambda: bool(jobs.in_flight()), "the second job to start", timeout_s=30)
    await eventually(lambda: not jobs.in_flight(), "the closed socket's job to stop", timeout_s=30)
    assert jobs.recent()[0]["state"] == "cancelled"
