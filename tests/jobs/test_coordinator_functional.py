"""A 3-peer cluster in one event loop: placement, collation, reduce, cancel, bundle fetch."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from disruptor.errors import NotFound, TaskFailed
from disruptor.home import Home
from disruptor.peer import Peer

from ..cluster import eventually
from .support import client_for, open_cluster, write_slow_bundle

DOUBLE = "def handle(item):\n    return item * 2\n"

# One cluster for the tests that only read from it; the event loop lives as long as it does.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[list[Peer], Home]]:
    home = Home(tmp_path_factory.mktemp("jobs-shared") / "home").ensure()
    async with open_cluster(home) as peers:
        yield peers, home


async def test_ten_thousand_items_correct_and_in_order(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    async with client_for(peers, home) as client:
        outcomes = await client.outcomes(DOUBLE, list(range(10_000)))
        assert [o.value for o in outcomes] == [i * 2 for i in range(10_000)]
        # The work really was spread: every peer ran some of it.
        assert {o.peer for o in outcomes} == {str(p.address) for p in peers}


async def test_round_robin_spreads_evenly(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    async with client_for(peers, home) as client:
        replaced = peers[0].jobs.stats.tasks_replaced
        outcomes = await client.outcomes(
            DOUBLE, list(range(30)), policy="round-robin", chunk_size=1
        )
        assert sorted(Counter(o.peer for o in outcomes).values()) == [10, 10, 10]
        assert [o.value for o in outcomes] == [2 * i for i in range(30)]
        assert peers[0].jobs.stats.tasks_replaced == replaced, "every attempt ran where placed"


async def test_broadcast_reaches_every_peer_once(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    async with client_for(peers, home) as client:
        results = await client.map(DOUBLE, [1, 2], policy="broadcast")
        assert sorted(r["peer"] for r in results) == sorted(str(p.address) for p in peers)
        assert all(r["values"] == [2, 4] and r["errors"] == [] for r in results)


async def test_weighted_follows_weights(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    directory = peers[0].jobs.directory
    ordered = sorted(str(p.address) for p in peers)
    # Weights name peers by address, known only once they are bound: set them now.
    saved = directory.weights
    directory.weights = {ordered[0]: 4.0, ordered[1]: 2.0, ordered[2]: 1.0}
    try:
        async with client_for(peers[:1], home) as client:
            outcomes = await client.outcomes(
                DOUBLE, list(range(70)), policy="weighted", chunk_size=1
            )
    finally:
        directory.weights = saved
    counts = Counter(o.peer for o in outcomes)
    assert [counts[a] for a in ordered] == [40, 20, 10]


async def test_least_connections_and_least_loaded_use_every_peer(
    shared: tuple[list[Peer], Home],
) -> None:
    peers, home = shared
    async with client_for(peers[:1], home) as client:
        for policy in ("least-connections", "least-loaded"):
            outcomes = await client.outcomes(DOUBLE, list(range(60)), policy=policy, chunk_size=1)
            assert [o.value for o in outcomes] == [i * 2 for i in range(60)]
            assert len({o.peer for o in outcomes}) == 3, policy


async def test_target_peer_count(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    async with client_for(peers[:1], home) as client:
        outcomes = await client.outcomes(DOUBLE, list(range(40)), peers=2, chunk_size=1)
        used = {o.peer for o in outcomes}
        assert len(used) == 2 and str(peers[0].address) in used


async def test_reduce_folds_at_the_coordinator(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    reduce = "def reduce(results):\n    return sum(results)\n"
    combine = "def combine(acc, item):\n    return acc + item\n"
    async with client_for(peers, home) as client:
        assert await client.map(DOUBLE, list(range(100)), reduce=reduce) == 9900
        assert await client.map(DOUBLE, list(range(10)), reduce=combine) == 90


async def test_item_errors_are_the_peers_exception_and_spare_the_rest(
    shared: tuple[list[Peer], Home],
) -> None:
    peers, home = shared
    async with client_for(peers, home) as client:
        source = "def handle(item):\n    return 10 // item\n"
        outcomes = await client.outcomes(source, [1, 0, 5], chunk_size=1)
        assert [o.value for o in outcomes] == [10, None, 2]
        assert outcomes[1].error is not None and outcomes[1].error.type == "ZeroDivisionError"
        with pytest.raises(TaskFailed, match="ZeroDivisionError"):
            await client.map(source, [1, 0, 5])


async def test_bundle_pushed_to_one_peer_runs_on_all(home: Home, tmp_path: Path) -> None:
    async with open_cluster(home) as peers:
        async with client_for(peers[:1], home) as client:
            pushed = await client.push_bundle(write_slow_bundle(tmp_path), home=home)
            items = [{"x": i} for i in range(12)]
            outcomes = await client.outcomes(pushed.sha1, items, policy="round-robin", chunk_size=1)
        assert [o.value["x"] for o in outcomes] == [i * 2 for i in range(12)]
        assert {o.peer for o in outcomes} == {str(p.address) for p in peers}
        # The others fetched it from a peer, verified, and hold it now.
        assert all(p.store is not None and p.store.has(pushed.sha1) for p in peers)


async def test_unknown_bundle_is_not_found(shared: tuple[list[Peer], Home]) -> None:
    peers, home = shared
    async with client_for(peers, home) as client:
        with pytest.raises(NotFound):
            await client.map("0" * 40, [1])


async def test_cancel_stops_the_work_on_every_peer(home: Home, tmp_path: Path) -> None:
    async with open_cluster(home) as peers, client_for(peers[:1], home) as client:
        pushed = await client.push_bundle(write_slow_bundle(tmp_path), home=home)
        started = await client.request_json(
            "POST", "/workers", json_body={"bundle": pushed.sha1, "peers": "all"}
        )
        assert sorted(started["peers"]) == sorted(str(p.address) for p in peers)
        counts = [len(answer.get("workers", ())) for answer in started["peers"].values()]
        assert counts == [2, 2, 2], started
        items = [{"x": i, "sleep": 0.2} for i in range(300)]
        job_id = await client.start_job(pushed.sha1, items, chunk_size=1, policy="round-robin")

        def started_everywhere() -> bool:
            return all(p.jobs.stats.tasks_served > 0 for p in peers[1:])

        await eventually(started_everywhere, "every peer to run part of the job", timeout_s=30)
        answer = await client.cancel(job_id)
        assert answer["state"] == "cancelled"

        def idle_everywhere() -> bool:
            return all(
                not p.tasks.serving() and p.pool.tasks_running == 0 and p.pool.queue_items == 0
                for p in peers
            )

        await eventually(idle_everywhere, "every peer to stop the job's work", timeout_s=15)
        served = [p.jobs.stats.tasks_served for p in peers]
        job = await client.job(job_id)
        assert job["state"] == "cancelled"
        assert job["progress"]["done"] < len(items) / 2
        # Nothing new starts anywhere after the cancel.
        after = await client.outcomes(DOUBLE, [1])
        assert after[0].value == 2
        now = [p.jobs.stats.tasks_served for p in peers if p.jobs is not None]
        assert all(b - a <= 1 for a, b in zip(served, now, strict=True))


async def test_request_id_is_carried_to_every_peer(shared: tuple[list[Peer], Home]) -> None:
    import logging

    import aiohttp

    from disruptor.logs import request_id_var

    peers, home = shared
    seen: list[tuple[str, str | None]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Emitted in the handling request's context, so the id is the one it runs under.
            seen.append((record.getMessage(), request_id_var.get()))

    capture = Capture(level=logging.INFO)
    http_log = logging.getLogger("disruptor.tasks")
    old_level = http_log.level
    http_log.setLevel(logging.INFO)
    http_log.addHandler(capture)
    try:
        body = {"snippet": DOUBLE, "items": list(range(6)), "policy": "round-robin"}
        body["chunk_size"] = 1
        headers = {
            "Authorization": f"Bearer {home.api_token()}",
            "X-Request-Id": "trace-carried-1",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(peers[0].url + "/jobs", json=body, headers=headers) as response,
        ):
            assert response.status == 200
            assert response.headers["X-Request-Id"] == "trace-carried-1"
    finally:
        http_log.removeHandler(capture)
        http_log.setLevel(old_level)
    task_calls = [rid for message, rid in seen if message.startswith("task ")]
    # Round-robin over three peers sends tasks to the two others; each call carries the id.
    assert len(task_calls) >= 2
    assert set(task_calls) == {"trace-carried-1"}
