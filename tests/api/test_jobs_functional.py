"""``/jobs``, ``/tasks`` and ``/stream`` over real HTTP on a 3-peer cluster."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import pytest_asyncio

from disruptor.chunks import Chunk
from disruptor.home import Home
from disruptor.jobs.settings import JobsSettings
from disruptor.jobs.wire import TaskReply, TaskRequest, decode_msgpack, encode_msgpack
from disruptor.peer import Peer

from ..cluster import eventually
from ..jobs.support import client_for, open_cluster
from ..link.support import peer_headers

DOUBLE = "def handle(item):\n    return item * 2\n"

# One cluster for the whole module; the event loop lives as long as it does.
pytestmark = pytest.mark.asyncio(loop_scope="module")
Shared = tuple[list[Peer], Home]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    home = Home(Path(tmp_path_factory.mktemp("api-jobs")) / "home").ensure()
    async with open_cluster(home) as peers:
        yield peers, home


def auth(peer: Peer) -> dict[str, str]:
    return {"Authorization": f"Bearer {peer.api_token}"}


async def post(peer: Peer, body: Any, **headers: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(peer.url + "/jobs", json=body, headers={**auth(peer), **headers}) as r,
    ):
        return r.status, await r.json(content_type=None)


async def test_ndjson_streams_each_result_once_tagged_with_its_index(shared: Shared) -> None:
    peers, _ = shared
    body = {"snippet": DOUBLE, "items": list(range(50)), "chunk_size": 5}
    headers = {**auth(peers[0]), "Accept": "application/x-ndjson"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(peers[0].url + "/jobs", json=body, headers=headers) as r,
    ):
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        lines = [json.loads(line) async for line in r.content if line.strip()]
    *pieces, tail = lines
    assert tail["done"] is True and tail["state"] == "completed"
    rows = [
        (piece["start"] + offset, value, piece["peer"])
        for piece in pieces
        for offset, value in enumerate(piece["values"])
    ]
    assert sorted(index for index, _, _ in rows) == list(range(50))
    assert all(value == index * 2 and peer for index, value, peer in rows)
    assert all(piece["count"] == 5 and piece["errors"] == [] for piece in pieces)


async def test_async_job_202_then_get_then_delete(shared: Shared) -> None:
    peers, _ = shared
    peer = peers[0]
    body = {"snippet": DOUBLE, "items": [1, 2], "wait": False, "peers": [str(peer.address)]}
    status, answer = await post(peer, body)
    assert status == 202 and answer["state"] in ("running", "completed")
    job_url = f"{peer.url}/jobs/{answer['id']}"
    async with aiohttp.ClientSession(headers=auth(peer)) as s:

        async def finished() -> bool:
            async with s.get(job_url) as r:
                return bool((await r.json())["state"] == "completed")

        await eventually(finished, "the job to complete", timeout_s=30)
        async with s.get(job_url) as r:
            job = await r.json()
        assert job["values"] == [2, 4] and job["errors"] == []
        assert {run["peer"] for run in job["chunks"]} == {str(peer.address)}
        assert sum(run["count"] for run in job["chunks"]) == 2
        assert job["progress"] == {"total": 2, "done": 2, "failed": 0}
        async with s.delete(job_url) as r:
            assert r.status == 200 and (await r.json())["state"] == "completed"
        async with s.get(f"{peer.url}/jobs/nope") as r:
            assert r.status == 404


async def test_idempotency_key_returns_the_same_job(shared: Shared) -> None:
    peers, _ = shared
    body = {"snippet": DOUBLE, "items": [3]}
    _, first = await post(peers[0], body, **{"Idempotency-Key": "k-1"})
    _, again = await post(peers[0], body, **{"Idempotency-Key": "k-1"})
    _, other = await post(peers[0], body, **{"Idempotency-Key": "k-2"})
    assert first["id"] == again["id"] != other["id"]
    assert again["values"] == [6]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"items": [1]}, "exactly one of"),
        ({"snippet": DOUBLE, "items": 3}, "'items' must be an array"),
        ({"snippet": DOUBLE, "items": [], "timeout_s": 1e300}, "at most 86400"),
        ({"snippet": DOUBLE, "items": [], "polcy": "x"}, "unknown field `polcy`"),
        ({"snippet": DOUBLE, "items": [[[[[]]]]] * 3, "chunk_size": 1.5}, "'chunk_size'"),
        ({"snippet": DOUBLE, "items": [], "policy": "fastest"}, "'policy' must be one of"),
        ({"snippet": DOUBLE, "items": [], "chunk_size": 0}, "'chunk_size'"),
        ({"snippet": DOUBLE, "items": [], "timeout_s": -1}, "'timeout_s'"),
        ({"snippet": DOUBLE, "items": [], "retries": 99}, "'retries'"),
        ({"snippet": DOUBLE, "items": [], "peers": ["nope"]}, "HOST:PORT"),
        ({"bundle": "xyz", "items": []}, "40 lowercase hex"),
        ({"snippet": DOUBLE, "items": [], "fail_fast": "yes"}, "'fail_fast'"),
    ],
)
async def test_bad_jobs_are_4xx_saying_what_is_wrong(
    shared: Shared, body: dict[str, Any], says: str
) -> None:
    peers, _ = shared
    status, problem = await post(peers[0], body)
    assert 400 <= status < 500
    assert problem["type"].startswith("urn:disruptor:problem:")
    assert says in problem["detail"]
    # ...and the peer keeps serving.
    status, answer = await post(peers[0], {"snippet": DOUBLE, "items": [1]})
    assert status == 200 and answer["values"] == [2]


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_deeply_nested_json_is_refused_saying_so(shared: Shared, depth: int) -> None:
    peers, _ = shared
    data = b'{"snippet": "x", "items": [' + b"[" * depth + b"]" * depth + b"]}"
    headers = {**auth(peers[0]), "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as s,
        s.post(peers[0].url + "/jobs", data=data, headers=headers) as r,
    ):
        assert r.status == 400
        problem = await r.json(content_type=None)
    assert problem["type"].endswith(":invalid-payload") and "nests deeper" in problem["detail"]


async def test_bad_snippet_is_refused_before_any_task_is_placed(shared: Shared) -> None:
    peers, _ = shared
    assert peers[0].jobs is not None
    submitted = peers[0].jobs.stats.submitted
    bad = "def handle(item):\n    return item._secret\n"
    status, problem = await post(peers[0], {"snippet": bad, "items": [1]})
    assert status == 422 and problem["type"].endswith(":snippet-rejected")
    assert peers[0].jobs is not None and peers[0].jobs.stats.submitted == submitted


async def test_tasks_need_the_cluster_secret_or_token(shared: Shared) -> None:
    peers, _ = shared
    peer = peers[0]
    task = TaskRequest(
        job="j", task="j.0", attempt=1, coordinator=str(peers[1].address), count=1,
        items=msgspec.Raw(Chunk.of([4]).data), snippet=DOUBLE,
    )  # fmt: skip
    data = encode_msgpack(task)
    packed = {"Content-Type": "application/msgpack"}
    async with aiohttp.ClientSession() as s:
        async with s.post(peer.url + "/tasks", data=data, headers=packed) as r:
            assert r.status == 401
        forged = {**peer_headers(b"wrong" * 8, "POST", "/tasks", data), **packed}
        async with s.post(peer.url + "/tasks", data=data, headers=forged) as r:
            assert r.status == 401
        signed = {**peer_headers(peer.cluster_secret, "POST", "/tasks", data), **packed}
        async with s.post(peer.url + "/tasks", data=data, headers=signed) as r:
            assert r.status == 200
            reply = decode_msgpack(await r.read(), TaskReply)
        assert reply.count == 1 and msgspec.msgpack.decode(reply.values) == [8]
        assert reply.peer == str(peer.address) and reply.errors == []
        as_json = json.dumps({"job": "j"}).encode()
        signed = peer_headers(peer.cluster_secret, "POST", "/tasks", as_json)
        async with s.post(peer.url + "/tasks", data=as_json, headers=signed) as r:
            assert r.status == 415


async def test_websocket_stream_returns_results_tagged_with_item_ids(shared: Shared) -> None:
    peers, _ = shared
    async with (
        aiohttp.ClientSession(headers=auth(peers[0])) as s,
        s.ws_connect(peers[0].url + "/stream") as ws,
    ):
        await ws.send_json({"snippet": DOUBLE, "policy": "round-robin"})
        assert (await ws.receive_json())["ready"] is True
        for n in range(30):
            await ws.send_json({"id": f"item-{n}", "item": n})
        await ws.send_json({"oops": 1})
        replies = [await ws.receive_json() for _ in range(31)]
    bad = [r for r in replies if "id" not in r]
    assert len(bad) == 1 and bad[0]["error"]["kind"] == "bad-request"
    good = {r["id"]: r for r in replies if "id" in r}
    assert {k: v["value"] for k, v in good.items()} == {f"item-{n}": n * 2 for n in range(30)}
    assert len({r["peer"] for r in good.values()}) > 1


async def test_cluster_jobs_listing_names_the_live_peers(shared: Shared) -> None:
    peers, _ = shared
    async with (
        aiohttp.ClientSession(headers=auth(peers[1])) as s,
        s.get(peers[1].url + "/jobs") as r,
    ):
        listing = await r.json()
    assert sorted(listing["peers"]) == sorted(str(p.address) for p in peers)


async def test_saturated_coordinator_answers_429_with_retry_after(shared: Shared) -> None:
    peers, _ = shared
    coordinator = peers[0].jobs
    saved = coordinator.settings
    coordinator.settings = JobsSettings(jobs_running_max=0)
    try:
        async with (
            aiohttp.ClientSession(headers=auth(peers[0])) as s,
            s.post(peers[0].url + "/jobs", json={"snippet": DOUBLE, "items": [1]}) as r,
        ):
            assert r.status == 429 and r.headers["Retry-After"] == "1"
            assert (await r.json(content_type=None))["type"].endswith(":overloaded")
    finally:
        coordinator.settings = saved


async def test_saturated_peer_makes_the_coordinator_back_off_not_fail(shared: Shared) -> None:
    peers, home = shared
    async with client_for(peers[:1], home) as client:
        busy = peers[1].tasks
        saved = busy.settings
        busy.settings = JobsSettings(tasks_served_max=0)
        try:
            job_id = await client.start_job(
                DOUBLE, list(range(30)), chunk_size=1, policy="round-robin"
            )
            await eventually(
                lambda: busy.stats.rejected_overloaded > 0, "a refused task", timeout_s=30
            )
        finally:
            busy.settings = saved

        async def finished() -> bool:
            return bool((await client.job(job_id, results=False))["state"] == "completed")

        await eventually(finished, "the job to complete", timeout_s=60)
        job = await client.job(job_id)
        assert job["values"] == [2 * i for i in range(30)]
        assert str(peers[1].address) in {run["peer"] for run in job["chunks"]}
