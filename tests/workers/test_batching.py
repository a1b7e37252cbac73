"""The pool's queues and call batching, on fake workers: no process is started."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from disruptor.bundles.unpack import load_app_manifest
from disruptor.workers import batching
from disruptor.workers.framing import LineTooLong
from disruptor.workers.model import BundleGroup, PoolStats, Task, WorkerSlot
from disruptor.workers.restarts import CrashHistory

from .conftest import fake_sha1, write_bundle


@dataclass
class FakeSession:
    concurrency: int
    in_flight: int = 0

    @property
    def spare(self) -> int:
        return self.concurrency - self.in_flight


@dataclass
class FakeProc:
    """Takes calls while it has spare concurrency; refuses lines of more than ``items_max``."""

    session: FakeSession
    items_max: int = 1_000
    calls: list[list[Any]] = field(default_factory=list)

    def call(self, items: list[Any], timeout_s: float | None) -> int:
        if len(items) > self.items_max:
            raise LineTooLong(f"{len(items)} items")
        self.calls.append(items)
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
    return Task(items, timeout_s, asyncio.get_running_loop().create_future())


async def test_chunks_spread_items_over_the_slots_and_stay_within_a_batch(
    tmp_path: Path,
) -> None:
    group = make_group(tmp_path, concurrency=2)
    assert batching.chunks(group, list(range(10)), 256) == [list(range(10))]
    add_worker(group, None)
    add_worker(group, None)
    assert [len(c) for c in batching.chunks(group, list(range(10)), 256)] == [3, 3, 3, 1]
    assert [len(c) for c in batching.chunks(group, list(range(10)), 2)] == [2] * 5


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
    assert len(group.queue) == 2 and stats.queue_items == 4


async def test_tasks_that_can_run_in_parallel_are_not_batched(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    for i in range(3):
        batching.enqueue(group, task([i]), stats)
    proc = FakeProc(FakeSession(concurrency=3))
    add_worker(group, proc)
    batching.pump(group, stats, 256)
    assert proc.calls == [[0], [1], [2]]


async def test_a_call_too_large_for_a_line_is_split_and_one_oversized_item_fails(
    tmp_path: Path,
) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    big = task([1, 2, 3])
    batching.enqueue(group, big, stats)
    proc = FakeProc(FakeSession(concurrency=10), items_max=1)
    add_worker(group, proc)
    batching.pump(group, stats, 256)
    assert proc.calls == [[1], [2], [3]]
    assert not big.future.done(), "it ends when every part is answered"

    lone = task(["huge"])
    batching.enqueue(group, lone, stats)
    proc.items_max = 0
    batching.pump(group, stats, 256)
    (outcome,) = lone.future.result()
    assert outcome.error is not None and outcome.error.type == "InvalidPayload"
    assert stats.tasks_failed == 1 and stats.queue_items == 0


async def test_finish_ends_a_task_once_and_counts_failures(tmp_path: Path) -> None:
    group, stats = make_group(tmp_path), PoolStats()
    waiting = [task([1, 2]), task([3])]
    for t in waiting:
        batching.enqueue(group, t, stats)
    batching.fail_queue(group, stats, "unavailable", "Unavailable", "stopped")
    assert [len(t.future.result()) for t in waiting] == [2, 1]
    assert stats.tasks_failed == 3 and stats.queue_items == 0 and not group.queue
    batching.finish(waiting[0], [], stats)
    assert len(waiting[0].future.result()) == 2 and stats.tasks_failed == 3
