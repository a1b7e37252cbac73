"""``SnippetEngine`` with real hosts: the executor contract, folds, store, whole-request errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from disruptor.errors import (
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    SnippetBudgetExceeded,
    SnippetRejected,
    TaskFailed,
)
from disruptor.snippets import SnippetEngine, SnippetSettings
from disruptor.snippets.compile import snippet_sha1

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
