"""The pool's queues and call batching, on fake workers: no process is started."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from disruptor.bundles.unpack import load_app_manifest
from disruptor.chunks import Chunk, ChunkResult
from disruptor.outcome import ErrorInfo
from disruptor.workers import batching
from disruptor.workers.framing import FrameTooLarge
from disruptor.workers.model import BundleGroup, PoolStats, Task, WorkerSlot
from disruptor.workers.restarts import CrashHistory
from disruptor.workers.session import State

from .conftest import fake_sha1, write_bundle


@dataclass
class FakeSession:
    concurrency: int
    in_flight: int = 0
    state: State = State.READY

    @property
    def spare(self) -> int:
        return self.concurrency - self.in_flight if self.state is State.READY else 0


@dataclass
class FakeProc:
    """Takes calls while it has spare concurrency; refuses calls of more than ``items_max``."""

    session: FakeSession
    items_max: int = 1_000
    calls: list[list[Any]] = field(default_factory=list)
    parts: list[list[Chunk]] = field(default_factory=list)

    def call(self, parts: list[Chunk], timeout_s: float | None) -> int:
        items = [item for part in parts for item in part.items()]
        if len(items) > self.items_max:
            raise FrameTooLarge(f"{len(items)} items")
        self.calls.append(items)
        self.parts.append(parts)
        self.session.in_flight += 1
        return len(self.calls)


def make_group(tmp_path: Path, concurrency: int = 1) -> BundleGroup:
    root = write_bundle(tmp_path, "app", {"app.py": ""}, worker=f"concurrency = {concurrency}")
    return BundleGroup(fake_sha1("app"), load_app_manifest(root), root, CrashHistory())


def add_worker(group: BundleGroup, proc: FakeProc | None) -> WorkerSlot:
    worker = WorkerSlot(id=f"w{len(group.workers)}", group=group, proc=proc)  # type: ignore[arg-type]
    group.workers.append(worker)
    return worker


def task(items: list[Any], timeout_s: float = 5.0) -> Task:
    return Task(Chunk.of(items), timeout_s, asyncio.get_running_loop().create_future())


def answer(proc: FakeProc, tasks: list[Task], call: int) -> None:
    """What the pool does with a reply: one result per part, to its task."""
    for part, result_task in zip(proc.parts[call], tasks, strict=True):
        values = [f"v{item}" for item in part.items()]
        batching.finish(result_task, ChunkResult.of(values), PoolStats())


async def test_a_chunk_is_cut_only_over_slots_that_would_stay_idle(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path, concurrency=2), PoolStats()
    whole = Chunk.of(list(range(10)))
    assert batching.spread(group, whole) == [whole], "no worker: nothing to spread over"
    add_worker(group, None)
    add_worker(group, None)
    parts = batching.spread(group, whole)
    assert [p.items() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    for i in range(3):
        batching.enqueue(group, task([i]), stats)
    assert batching.spread(group, whole) == [whole], "one idle slot left: it takes it whole"
    assert batching.spread(group, Chunk.of([1])) == [Chunk.of([1])]


async def test_the_queue_counts_items_as_they_come_and_go(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    first, second, urgent = task([1, 2]), task([3]), task([4, 5, 6])
    batching.enqueue(group, first, stats)
    batching.enqueue(group, second, stats)
    batching.enqueue(group, urgent, stats, front=True)
    assert group.queued_items == stats.queue_items == 6
    assert batching.dequeue(group, stats) is urgent
    assert group.queued_items == stats.queue_items == 3


async def test_tasks_whose_caller_gave_up_are_dropped_not_run(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    abandoned, wanted = task([1, 2]), task([3])
    batching.enqueue(group, abandoned, stats)
    batching.enqueue(group, wanted, stats)
    abandoned.future.cancel()
    proc = FakeProc(FakeSession(concurrency=4))
    add_worker(group, proc)
    batching.pump(group, stats, 256)
    assert proc.calls == [[3]]
    assert group.queued_items == stats.queue_items == 0


async def test_waiting_tasks_travel_together_up_to_a_batch(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    for i in range(5):
        batching.enqueue(group, task([i, i]), stats)
    proc = FakeProc(FakeSession(concurrency=1))
    add_worker(group, proc)
    batching.pump(group, stats, 6)
    assert proc.calls == [[0, 0, 1, 1, 2, 2]], "one call, as many tasks as fit in a batch"
    assert [len(parts) for parts in proc.parts] == [3], "each task one part of the call"
    assert len(group.queue) == 2 and stats.queue_items == 4 and stats.chunks_batched == 2


async def test_chunks_batched_into_one_call_are_answered_each_with_its_own_part(
    tmp_path: Path,
) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    tasks = [task([i, i + 10]) for i in range(3)]
    for t in tasks:
        batching.enqueue(group, t, stats)
    proc = FakeProc(FakeSession(concurrency=1))
    add_worker(group, proc)
    batching.pump(group, stats, 100)
    answer(proc, tasks, 0)
    assert [t.future.result().values_list() for t in tasks] == [
        ["v0", "v10"],
        ["v1", "v11"],
        ["v2", "v12"],
    ]


async def test_a_retried_task_travels_alone(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    retried, waiting = task([1]), task([2])
    retried.attempts = 1
    batching.enqueue(group, retried, stats)
    batching.enqueue(group, waiting, stats)
    batching.enqueue(group, task([3]), stats)
    proc = FakeProc(FakeSession(concurrency=1))
    add_worker(group, proc)
    batching.pump(group, stats, 100)
    assert proc.calls == [[1]]


async def test_workers_still_starting_count_as_slots_about_to_take_work(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    batching.enqueue(group, task([1]), stats)
    batching.enqueue(group, task([2]), stats)
    ready = FakeProc(FakeSession(concurrency=1))
    add_worker(group, ready)
    add_worker(group, FakeProc(FakeSession(concurrency=1, state=State.STARTING)))
    batching.pump(group, stats, 100)
    assert ready.calls == [[1]], "the second waits for the worker that is starting"
    assert len(group.queue) == 1


async def test_tasks_that_can_run_in_parallel_are_not_batched(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    for i in range(3):
        batching.enqueue(group, task([i]), stats)
    proc = FakeProc(FakeSession(concurrency=3))
    add_worker(group, proc)
    batching.pump(group, stats, 256)
    assert proc.calls == [[0], [1], [2]]


async def test_a_chunk_too_large_for_a_frame_is_halved_and_one_oversized_item_fails(
    tmp_path: Path,
) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    big = task([1, 2, 3, 4, 5])
    batching.enqueue(group, big, stats)
    proc = FakeProc(FakeSession(concurrency=10), items_max=2)
    add_worker(group, proc)
    batching.pump(group, stats, 256)
    assert proc.calls == [[1, 2], [3], [4, 5]], "halves, and halves of halves, in order"
    assert stats.chunks_split == 2
    assert not big.future.done(), "it ends when every part is answered"
    calls = group.workers[0].calls
    for call_id, values in zip(sorted(calls), ([1, 2], [3], [4, 5]), strict=True):
        (sub,) = calls[call_id]
        assert sub.chunk.items() == values
        error = [(0, ErrorInfo("task-failed", "E", "m"))] if values == [3] else []
        batching.finish(sub, ChunkResult.of([v * 10 for v in values], error), stats)
    await asyncio.sleep(0)  # the halves' done callbacks run on the next turn of the loop
    joined = big.future.result()
    assert joined.values_list() == [10, 20, 30, 40, 50]
    assert [offset for offset, _ in joined.errors] == [2], "offsets moved to the whole chunk"

    lone = task(["huge"])
    batching.enqueue(group, lone, stats)
    proc.items_max = 0
    batching.pump(group, stats, 256)
    ((offset, error),) = lone.future.result().errors
    assert offset == 0 and error.type == "InvalidPayload" and error.kind == "invalid-payload"
    assert stats.queue_items == 0


async def test_a_caller_that_gives_up_on_a_split_chunk_gives_up_its_parts() -> None:
    whole = task([1, 2, 3, 4])
    parts = [task([1, 2]), task([3, 4])]
    batching.gather(whole.future, parts)
    parts[0].future.set_result(ChunkResult.of([1, 2]))
    whole.future.cancel()
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    assert parts[1].future.cancelled()
    with pytest.raises(asyncio.CancelledError):
        whole.future.result()


async def test_finish_ends_a_task_once_and_counts_failures(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    waiting = [task([1, 2]), task([3])]
    for t in waiting:
        batching.enqueue(group, t, stats)
    batching.fail_queue(group, stats, "unavailable", "Unavailable", "stopped")
    assert [t.future.result().failures for t in waiting] == [2, 1]
    assert waiting[0].future.result().errors[1][1].kind == "unavailable"
    assert stats.tasks_failed == 3 and stats.queue_items == 0 and not group.queue
    batching.finish(waiting[0], ChunkResult.of([1, 2]), stats)
    assert waiting[0].future.result().failures == 2 and stats.tasks_failed == 3
