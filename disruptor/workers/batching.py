"""The pool's queues: a bundle's waiting chunks, and chunks batched into calls.

Rule: every task (one chunk and its future) that enters a bundle's queue leaves it exactly once,
ended with one result for its chunk (``finish``) or sent in a call to a worker with spare
concurrency (``pump``); ``stats`` counts the items waiting as they come and go. A task whose
caller gave up is dropped when it reaches the front of the queue, never run. Chunks are moved as
bytes: several waiting chunks travel as the parts of one call and their results come back per
part, so nothing here decodes an item, except on two rare paths: a chunk cut to spread over
workers that would otherwise stay idle (``spread``), and a call too large for one frame, cut in
halves until it fits (a single item too large, or one a version 1 worker's JSON cannot hold, fails
alone with ``InvalidPayload``). The functions
take the bundle group, the pool's stats and limits as arguments and keep no state of their own:
the pool owns the records (``model.py``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from ..chunks import Chunk, ChunkResult, join_arrays
from ..errors import InvalidPayload
from ..outcome import ErrorInfo
from .framing import Unsendable
from .model import BundleGroup, PoolStats, Task


def spread(group: BundleGroup, chunk: Chunk) -> list[Chunk]:
    """``chunk`` cut over the worker slots that have nothing to do, or whole when none wait.

    Cutting decodes the chunk, so it happens only when it buys parallelism: when more than one
    slot (counting workers still starting) has neither a call in flight nor a queued task to take.
    """
    live = [w for w in group.workers if not w.stopping]
    capacity = group.manifest.worker.concurrency * len(live)
    idle = capacity - sum(len(w.calls) for w in live) - len(group.queue)
    if idle <= 1 or chunk.count <= 1:
        return [chunk]
    return chunk.split(math.ceil(chunk.count / min(idle, chunk.count)))


def starting_slots(group: BundleGroup) -> int:
    starting = [w for w in group.workers if w.starting and not w.stopping]
    return group.manifest.worker.concurrency * len(starting)


def enqueue(group: BundleGroup, task: Task, stats: PoolStats, *, front: bool = False) -> None:
    if front:
        group.queue.appendleft(task)
    else:
        group.queue.append(task)
    group.queued_items += task.count
    stats.queue_items += task.count


def dequeue(group: BundleGroup, stats: PoolStats) -> Task:
    task = group.queue.popleft()
    group.queued_items -= task.count
    stats.queue_items -= task.count
    return task


def drop_abandoned(group: BundleGroup, stats: PoolStats) -> None:
    """Forget the tasks at the front of the queue whose caller gave up (a cancelled job): they
    must not run. Checked as tasks reach the front, so a pump costs no scan of the queue."""
    while group.queue and group.queue[0].future.done():
        dequeue(group, stats)


def pump(group: BundleGroup, stats: PoolStats, batch_items_max: int) -> None:
    """Hand waiting tasks to workers with spare concurrency, most spare first."""
    while True:
        drop_abandoned(group, stats)
        if not group.queue:
            return
        candidates = [w for w in group.workers if w.spare > 0 and not w.stopping]
        if not candidates:
            return
        worker = max(candidates, key=lambda w: w.spare)
        # Slots of workers still starting count: they take work within moments.
        other_slots = sum(w.spare for w in candidates) - 1 + starting_slots(group)
        tasks = [dequeue(group, stats)]
        # Tasks that would wait anyway (more of them than free slots) travel together in one
        # call, up to a batch, so that many concurrent small jobs cost one round trip each batch
        # rather than each; tasks that can run in parallel still do. A task that is being retried
        # travels alone, so that a chunk that kills its worker takes no other chunk down twice.
        size = tasks[0].count
        while True:
            drop_abandoned(group, stats)
            if not (
                len(group.queue) > other_slots
                and tasks[0].attempts == 0
                and group.queue[0].attempts == 0
                and group.queue[0].timeout_s == tasks[0].timeout_s
                and size + group.queue[0].count <= batch_items_max
            ):
                break
            tasks.append(dequeue(group, stats))
            size += tasks[-1].count
        assert worker.proc is not None
        try:
            call_id = worker.proc.call([t.chunk for t in tasks], tasks[0].timeout_s)
        except Unsendable as exc:
            if len(tasks) > 1:
                for task in reversed(tasks):
                    enqueue(group, task, stats, front=True)
                # Send the first alone; the others follow in later rounds.
                tasks = [dequeue(group, stats)]
                try:
                    call_id = worker.proc.call([tasks[0].chunk], tasks[0].timeout_s)
                except Unsendable as again:
                    split_oversized(group, tasks[0], str(again), stats)
                    continue
            else:
                split_oversized(group, tasks[0], str(exc), stats)
                continue
        stats.chunks_batched += len(tasks) - 1
        worker.calls[call_id] = tasks


def split_oversized(group: BundleGroup, task: Task, reason: str, stats: PoolStats) -> None:
    """Queue ``task``'s chunk in halves at the front; its future ends when both halves do."""
    if task.count <= 1:
        error = InvalidPayload(f"item cannot be sent to its worker: {reason}")
        info = ErrorInfo(error.slug, "InvalidPayload", error.detail)
        finish(task, ChunkResult.failed(task.count, info), stats)
        return
    stats.chunks_split += 1
    halves = task.chunk.split(math.ceil(task.count / 2))
    loop = asyncio.get_running_loop()
    subtasks = [Task(h, task.timeout_s, loop.create_future(), task.attempts) for h in halves]
    for sub in reversed(subtasks):
        enqueue(group, sub, stats, front=True)
    gather(task.future, subtasks)


def gather(future: asyncio.Future[ChunkResult], parts: Sequence[Task]) -> None:
    """End ``future`` with the parts' results joined once every part has one; a caller that
    gives up on ``future`` gives up on the parts too (queued ones are then dropped)."""

    def collect(_: Any) -> None:
        if future.done() or not all(p.future.done() for p in parts):
            return
        if any(p.future.cancelled() for p in parts):
            future.cancel()
        else:
            future.set_result(join([p.future.result() for p in parts]))

    def abandon(_: Any) -> None:
        if future.cancelled():
            for part in parts:
                part.future.cancel()

    for part in parts:
        part.future.add_done_callback(collect)
    future.add_done_callback(abandon)


def join(results: Sequence[ChunkResult]) -> ChunkResult:
    """The results of consecutive chunks as the result of the one chunk they were cut from."""
    if len(results) == 1:
        return results[0]
    errors: list[tuple[int, ErrorInfo]] = []
    start = 0
    for result in results:
        errors += [(start + offset, error) for offset, error in result.errors]
        start += result.count
    values = join_arrays([r.values for r in results])
    return ChunkResult(start, values, tuple(errors), results[0].peer)


def fail_queue(
    group: BundleGroup, stats: PoolStats, kind: str, type_name: str, message: str
) -> None:
    """End every waiting task of the bundle with the same failure."""
    info = ErrorInfo(kind, type_name, message)
    while group.queue:
        task = dequeue(group, stats)
        finish(task, ChunkResult.failed(task.count, info), stats)


def finish(task: Task, result: ChunkResult, stats: PoolStats) -> None:
    """End ``task`` with ``result``, once: a task already ended keeps its first result."""
    if task.future.done():
        return
    stats.tasks_failed += result.failures
    task.future.set_result(result)
