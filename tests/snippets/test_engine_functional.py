"""``SnippetEngine`` with real hosts: the executor contract, folds, store, whole-request errors."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from disruptor.chunks import Chunk
from disruptor.errors import (
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    SnippetBudgetExceeded,
    SnippetRejected,
    TaskFailed,
)
from disruptor.snippets import SnippetEngine, SnippetSettings
from disruptor.snippets.names import snippet_sha1

SETTINGS = SnippetSettings(item_timeout_s=1.0, hosts_max=1, hosts_prestart=0, store_count_max=5)


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[SnippetEngine]:
    running = SnippetEngine(SETTINGS, tmp_path)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_run_batch_keeps_order_and_failures_are_data(runner: SnippetEngine) -> None:
    source = "def handle(item):\n    return 100 // item\n"
    outcomes = await runner.run_batch([1, 0, 50], source=source)
    assert [o.value for o in outcomes] == [100, None, 2]
    assert outcomes[1].error is not None and outcomes[1].error.type == "ZeroDivisionError"
    assert isinstance(outcomes[1].error.to_exception(), TaskFailed)
    assert runner.stats.items == 3 and runner.stats.items_failed == 1
    # A snippet sent by source is kept: later runs may name it by SHA-1 alone.
    again = await runner.run_batch([4], sha1=snippet_sha1(source))
    assert again[0].value == 25
    assert runner.stats.compile_cache_hits >= 1


async def test_reduce_combine_and_the_coordinators_fold(runner: SnippetEngine) -> None:
    reduce_source = "def reduce(results):\n    return sorted(results)[-1]\n"
    combine_source = "def combine(acc, item):\n    return acc + [item * 10]\n"
    assert (await runner.run_reduce([3, 9, 1], source=reduce_source)).value == 9
    combined = await runner.run_combine([1, 2], initial=[], has_initial=True, source=combine_source)
    assert combined.value == [10, 20]
    assert await runner.reduce([3, 9, 1], source=reduce_source) == 9
    with pytest.raises(SnippetBudgetExceeded):
        await runner.reduce([1], source="def reduce(results):\n    while True:\n        pass\n")


async def test_whole_request_problems_raise(runner: SnippetEngine) -> None:
    with pytest.raises(SnippetRejected, match="defines no handle"):
        await runner.run_batch([1], source="x = 1\n")
    with pytest.raises(SnippetRejected):
        await runner.run_batch([1], source="def handle(item):\n    return item.__class__\n")
    with pytest.raises(PayloadTooLarge):
        await runner.run_batch([1], source="#" * (SETTINGS.source_bytes_max + 1))
    with pytest.raises(NotFound):
        await runner.run_batch([1], sha1="0" * 40)
    with pytest.raises(InvalidPayload):
        await runner.run_batch([1], source="def handle(item):\n    return 1\n", sha1="0" * 40)
    assert runner.stats.rejected >= 2


async def test_store_put_get_checks_compilation(runner: SnippetEngine) -> None:
    source = "def handle(item):\n    return item\n"
    assert await runner.put(source) == (snippet_sha1(source), True)
    assert await runner.put(source, snippet_sha1(source)) == (snippet_sha1(source), False)
    assert await runner.get(snippet_sha1(source)) == source
    with pytest.raises(SnippetRejected):
        await runner.put("def handle(:\n")
    assert not runner.store.has(snippet_sha1("def handle(:\n"))


async def test_fresh_globals_between_runs_on_the_same_host(runner: SnippetEngine) -> None:
    await runner.run_batch(
        [1], source="sum = lambda x: 'hijacked'\ndef handle(item):\n    return 1\n"
    )
    outcome = await runner.run_batch([[1, 2]], source="def handle(item):\n    return sum(item)\n")
    assert outcome[0].value == 3
    assert runner.stats.hosts_started == 1


async def test_run_chunk_keeps_order_over_many_chunks_at_once(tmp_path: Path) -> None:
    engine = SnippetEngine(dataclasses.replace(SETTINGS, hosts_max=2), tmp_path)
    await engine.start()
    source = "def handle(item):\n    return 1000 // (item % 97)\n"
    chunks = [Chunk.of(list(range(start, start + 250))) for start in range(0, 10_000, 250)]
    try:
        results = await asyncio.gather(*(engine.run_chunk(c, source=source) for c in chunks))
    finally:
        await engine.stop()
    for chunk, result in zip(chunks, results, strict=True):
        items = chunk.items()
        assert result.count == chunk.count
        values = result.values_list()
        failed = {offset for offset, _ in result.errors}
        assert failed == {i for i, item in enumerate(items) if item % 97 == 0}
        for offset, (item, value) in enumerate(zip(items, values, strict=True)):
            assert value == (None if offset in failed else 1000 // (item % 97))
        assert all(
            e.type == "ZeroDivisionError" and "(line 2)" in e.message for _, e in result.errors
        )
    assert engine.stats.items == 10_000 and engine.stats.items_failed == len(
        [i for i in range(10_000) if i % 97 == 0]
    )
    assert engine.stats.hosts_started <= 2


async def test_run_chunk_stops_a_runaway_item_alone(runner: SnippetEngine) -> None:
    source = "def handle(item):\n    while item:\n        pass\n    return 'done'\n"
    result = await runner.run_chunk(Chunk.of([0, 1, 0, 0]), source=source, timeout_s=0.3)
    assert result.values_list() == ["done", None, "done", "done"]
    ((offset, error),) = result.errors
    assert offset == 1 and error.kind == "snippet-budget" and "time budget" in error.message
    assert runner.stats.budget_stops == 1


async def test_run_chunk_refuses_a_chunk_that_is_not_what_it_says(runner: SnippetEngine) -> None:
    source = "def handle(item):\n    return item\n"
    with pytest.raises(InvalidPayload):
        await runner.run_chunk(Chunk(3, Chunk.of([1, 2]).data), source=source)
    with pytest.raises(InvalidPayload):
        # The header promises two items; what follows is not MessagePack. Only the host decodes.
        await runner.run_chunk(Chunk(2, b"\x92\xc1\xc1"), source=source)
    empty = await runner.run_chunk(Chunk.of([]), source=source)
    assert empty.count == 0 and empty.values_list() == []
    assert (await runner.run_chunk(Chunk.of(["still fine"]), source=source)).values_list() == [
        "still fine"
    ]


async def test_run_batch_refuses_items_messagepack_cannot_hold(runner: SnippetEngine) -> None:
    with pytest.raises(InvalidPayload, match="item 1"):
        await runner.run_batch([1, 2**70], source="def handle(item):\n    return item\n")
