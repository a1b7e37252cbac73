"""The pool running chunks on real workers, in both protocol versions: results in order and per
item, chunks batched into calls and split back, chunks too large for a frame, crashes, timeouts,
values a worker cannot encode; a Python worker on version 2 beside the Perl one on version 1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from disruptor.chunks import Chunk, ChunkResult

from ..cluster import eventually
from .test_pool_functional import REPO_BUNDLES

PROTOCOLS = [1, 2]
DOUBLE = {"app.py": "def handle(item):\n    return item * 2\n"}
# The Perl example's computation, in Python: the same items must give the same results.
STATS_PY = """\
    def handle(item):
        if not isinstance(item, list):
            raise ValueError("an item is an array of numbers")
        if not item:
            raise ValueError("the array is empty")
        for x in item:
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ValueError(f"not a number: {x}")
        total = sum(item)
        return {"count": len(item), "sum": total, "mean": total / len(item),
                "min": min(item), "max": max(item)}
"""


def values_of(result: ChunkResult) -> list[Any]:
    assert result.errors == (), result.errors
    return result.values_list()


def errors_of(result: ChunkResult) -> dict[int, tuple[str, str, str]]:
    return {offset: (e.kind, e.type, e.message) for offset, e in result.errors}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_many_chunks_keep_their_order_over_two_workers(make_pool: Any, protocol: int) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    sha1 = bundles.add("double", DOUBLE, worker="count = 2")
    await pool.start_workers(sha1)
    assert {w.protocol for w in pool.workers()} == {protocol}
    chunks = [Chunk.of(list(range(i * 50, i * 50 + 50))) for i in range(120)]
    results = await asyncio.gather(*(pool.run_chunk(sha1, c) for c in chunks))
    assert [v for r in results for v in values_of(r)] == [i * 2 for i in range(6000)]
    assert pool.stats.tasks_done == 6000 and pool.stats.tasks_failed == 0
    assert pool.stats.chunks_done >= 120 and sum(w.tasks_done for w in pool.workers()) == 6000
    assert pool.stats.workers_v2 == (2 if protocol == 2 else 0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_per_item_errors_and_values_that_cannot_be_sent_back(
    make_pool: Any, protocol: int
) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    code = """\
        def handle(item):
            if item == "object":
                return object()
            if item == "huge":
                return 2**70
            return 10 // item
    """
    sha1 = bundles.add("div", {"app.py": code})
    result = await pool.run_chunk(sha1, Chunk.of([5, 0, "object", 2, "huge", 1]))
    assert result.count == 6 and result.values_list() == [2, None, None, 5, None, 10]
    errors = errors_of(result)
    assert sorted(errors) == [1, 2, 4]
    assert errors[1][:2] == ("task-failed", "ZeroDivisionError")
    assert errors[2][:2] == errors[4][:2] == ("task-failed", "TypeError")
    assert pool.stats.tasks_failed == 3


async def test_a_python_worker_on_version_2_and_the_perl_worker_on_version_1_agree(
    make_pool: Any,
) -> None:
    pool, bundles = await make_pool()
    perl = "3" * 40
    bundles.source.directories[perl] = REPO_BUNDLES / "stats-perl"
    python = bundles.add("stats-py", {"app.py": STATS_PY})
    items = [[1, 2, 3, 4], [], [5], [2.5, -1], [7, "x"], "not a list", [10**6, 3]]
    chunk = Chunk.of(items)
    from_perl, from_python = await asyncio.gather(
        pool.run_chunk(perl, chunk), pool.run_chunk(python, chunk)
    )
    protocols = {w.name: w.protocol for w in pool.workers()}
    assert protocols == {"stats-perl": 1, "stats-py": 2}
    assert from_perl.values_list() == from_python.values_list()
    assert from_perl.values_list()[0] == {"count": 4, "sum": 10, "mean": 2.5, "min": 1, "max": 4}
    assert sorted(errors_of(from_perl)) == sorted(errors_of(from_python)) == [1, 4, 5]
    assert errors_of(from_perl)[1][2] == errors_of(from_python)[1][2] == "the array is empty"


async def test_a_python_worker_told_to_stay_on_version_1(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    sha1 = bundles.add("v1only", DOUBLE, worker='env = { WORKER_PROTOCOL_MAX = "1" }')
    assert values_of(await pool.run_chunk(sha1, Chunk.of([1, 2, 3]))) == [2, 4, 6]
    (info,) = pool.workers()
    assert info.protocol == 1 and pool.stats.workers_v2 == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_waiting_chunks_travel_in_one_call_and_come_back_each_to_its_caller(
    make_pool: Any, protocol: int
) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    code = """\
        import time
        def handle(item):
            if item == "block":
                time.sleep(0.5)
            return [item, "ok"]
    """
    sha1 = bundles.add("queue", {"app.py": code})
    await pool.start_workers(sha1)
    blocking = asyncio.ensure_future(pool.run_chunk(sha1, Chunk.of(["block"])))
    await eventually(lambda: pool.tasks_running == 1, "pool.tasks_running == 1")
    waiting = [asyncio.ensure_future(pool.run_chunk(sha1, Chunk.of([i, -i]))) for i in range(5)]
    await eventually(lambda: pool.stats.queue_items == 10, "pool.stats.queue_items == 10")
    assert values_of(await blocking) == [["block", "ok"]]
    results = await asyncio.gather(*waiting)
    assert [values_of(r) for r in results] == [[[i, "ok"], [-i, "ok"]] for i in range(5)]
    assert pool.stats.calls_done == 2, "the five waiting chunks took one round trip"
    assert pool.stats.chunks_batched == 4


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_chunk_too_large_for_a_frame_is_split_and_an_item_too_large_fails_alone(
    make_pool: Any, protocol: int
) -> None:
    limit = 64 * 1024
    pool, bundles = await make_pool(
        line_bytes_max=limit, frame_bytes_max=limit, protocol_max=protocol
    )
    sha1 = bundles.add("size", {"app.py": "def handle(item):\n    return len(item)\n"})
    items = [f"{i:04d}" + "x" * 2000 for i in range(100)]  # about 200 KB: several frames
    result = await pool.run_chunk(sha1, Chunk.of(items))
    assert values_of(result) == [2004] * 100
    assert pool.stats.chunks_split >= 2
    mixed = await pool.run_chunk(sha1, Chunk.of(["small", "y" * (limit + 1), "also small"]))
    assert mixed.values_list() == [5, None, 10]
    ((offset, error),) = mixed.errors
    assert offset == 1 and error.kind == "invalid-payload" and "exceeds" in error.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_an_item_json_cannot_hold_fails_alone_on_version_1_only(
    make_pool: Any, protocol: int
) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    code = "def handle(item):\n    return item if isinstance(item, bytes) else item * 2\n"
    sha1 = bundles.add("double", {"app.py": code})
    result = await pool.run_chunk(sha1, Chunk.of([1, b"raw", 3]))
    if protocol == 2:
        assert values_of(result) == [2, b"raw", 6]
        return
    assert result.values_list() == [2, None, 6]
    ((offset, error),) = result.errors
    assert offset == 1 and error.kind == "invalid-payload" and "as JSON" in error.message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_worker_killed_mid_chunk_is_retried_once_then_its_chunk_fails(
    make_pool: Any, protocol: int
) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    code = """\
        import os, signal, sys, time
        def handle(item):
            if item == "block":
                time.sleep(0.3)
            if item == "die":
                print("killing myself on", item, file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return item
    """
    sha1 = bundles.add("killed", {"app.py": code})
    await pool.start_workers(sha1)
    assert values_of(await pool.run_chunk(sha1, Chunk.of(["warm"]))) == ["warm"]
    first = asyncio.ensure_future(pool.run_chunk(sha1, Chunk.of(["block"])))
    await eventually(lambda: pool.tasks_running == 1, "pool.tasks_running == 1")
    # These two wait, so they travel together in one call, which the poisoned one kills.
    blocker = asyncio.ensure_future(pool.run_chunk(sha1, Chunk.of([1, "die", 3])))
    bystander = asyncio.ensure_future(pool.run_chunk(sha1, Chunk.of(["fine"])))
    await eventually(lambda: pool.stats.queue_items == 4, "pool.stats.queue_items == 4")
    assert values_of(await first) == ["block"]
    result = await blocker
    assert result.values_list() == [None, None, None]
    for offset, error in result.errors:
        assert error.kind == "worker-crashed"
        # Killed by SIGKILL, or exited with 128 + 9 where a sandbox process reports its child.
        assert "SIGKILL" in error.message or "status 137" in error.message
        assert "killing myself on die" in error.message, offset
    assert values_of(await bystander) == ["fine"], "retried in a call of its own, it ran"
    assert pool.stats.chunks_batched == 1
    assert pool.stats.crashes == 2, "the lost chunk ran once more, then failed"
    assert values_of(await pool.run_chunk(sha1, Chunk.of(["after"]))) == ["after"]
    (info,) = pool.workers()
    assert info.protocol == protocol and info.restarts == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_chunk_past_its_timeout_fails_and_the_worker_is_replaced(
    make_pool: Any, protocol: int
) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    code = """\
        import time
        def handle(item):
            if item == "hang":
                time.sleep(3600)
            return item
    """
    sha1 = bundles.add("hangs", {"app.py": code}, worker="timeout_s = 60")
    result = await pool.run_chunk(sha1, Chunk.of(["a", "hang"]), timeout_s=1.0)
    assert [e.kind for _, e in result.errors] == ["task-timeout", "task-timeout"]
    assert "timeout of 1s" in result.errors[0][1].message
    assert pool.stats.timeouts == 1 and pool.stats.crashes == 0
    assert values_of(await pool.run_chunk(sha1, Chunk.of(["quick"]))) == ["quick"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_batch_handlers_and_concurrency_on_chunks(make_pool: Any, protocol: int) -> None:
    pool, bundles = await make_pool(protocol_max=protocol)
    batch_code = """\
        def handle(items):
            if "bad" in items:
                raise ValueError("bad batch")
            return [i.upper() for i in items]
        handle.batch = True
    """
    thread_code = """\
        import threading
        BARRIER = threading.Barrier(3, timeout=30)
        def handle(item):
            BARRIER.wait()
            return item
    """
    batchy = bundles.add("batchy", {"app.py": batch_code})
    assert values_of(await pool.run_chunk(batchy, Chunk.of(["a", "b"]))) == ["A", "B"]
    bad = await pool.run_chunk(batchy, Chunk.of(["x", "bad"]))
    assert [e.message for _, e in bad.errors] == ["bad batch", "bad batch"]
    threads = bundles.add("threads3", {"app.py": thread_code}, worker="concurrency = 3")
    # Three items run at once in one worker only if the chunk is spread over its three slots.
    await pool.start_workers(threads)
    assert values_of(await pool.run_chunk(threads, Chunk.of([1, 2, 3]))) == [1, 2, 3]


async def test_an_empty_chunk_and_run_batch_on_top_of_run_chunk(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    sha1 = bundles.add("double", DOUBLE)
    empty = await pool.run_chunk(sha1, Chunk.of([]))
    assert empty.count == 0 and empty.values_list() == []
    outcomes = await pool.run_batch(sha1, [1, "ab"])
    assert [o.value for o in outcomes] == [2, "abab"]
    # Too large for one chunk: encoded as two, and the item too large alone fails alone.
    size = bundles.add("size", {"app.py": "def handle(item):\n    return len(item)\n"})
    mib = 1024 * 1024
    big = await pool.run_batch(size, ["z" * (9 * mib), "a", "y" * (17 * mib)])
    assert [o.value for o in big[:2]] == [9 * mib, 1]
    assert big[2].error is not None and big[2].error.type == "InvalidPayload"
