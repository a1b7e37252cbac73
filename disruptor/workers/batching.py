"""The pool's queues: a bundle's waiting items cut into tasks, and tasks batched into calls.

Rule: every task that enters a bundle's queue leaves it exactly once, ended with one outcome per
item (``finish``) or sent in a call to a worker with spare concurrency (``pump``); ``stats``
counts the items waiting as they come and go. A task whose caller gave up is dropped, never run.
A task too large for one protocol line is split into single items; a single item too large fails
alone with ``InvalidPayload``. The functions take the bundle group, the pool's stats and limits
as arguments and keep no state of their own: the pool owns the records (``model.py``).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from ..errors import DisruptorError, InvalidPayload
from ..outcome import ItemOutcome
from .framing import LineTooLong
from .model import BundleGroup, PoolStats, Task


def chunks(group: BundleGroup, items: list[Any], batch_items_max: int) -> list[list[Any]]:
    """``items`` cut into tasks' worth: enough to spread over every slot, none past a batch."""
    slots = max(1, sum(group.manifest.worker.concurrency for _ in group.workers))
    size = max(1, min(batch_items_max, math.ceil(len(items) / slots)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def enqueue(group: BundleGroup, task: Task, stats: PoolStats, *, front: bool = False) -> None:
    if front:
        group.queue.appendleft(task)
    else:
        group.queue.append(task)
    group.queued_items += len(task.items)
    stats.queue_items += len(task.items)


def dequeue(group: BundleGroup, stats: PoolStats) -> Task:
    task = group.queue.popleft()
    group.queued_items -= len(task.items)
    stats.queue_items -= len(task.items)
    return task


def drop_abandoned(group: BundleGroup, stats: PoolStats) -> None:
    """Forget queued tasks whose caller gave up (a cancelled job): they must not run."""
    if not any(task.future.done() for task in group.queue):
        return
    for task in [t for t in group.queue if t.future.done()]:
        group.queue.remove(task)
        group.queued_items -= len(task.items)
        stats.queue_items -= len(task.items)


def pump(group: BundleGroup, stats: PoolStats, batch_items_max: int) -> None:
    """Hand waiting tasks to workers with spare concurrency, most spare first."""
    drop_abandoned(group, stats)
    while group.queue:
        candidates = [w for w in group.workers if w.spare > 0 and not w.stopping]
        if not candidates:
            return
        worker = max(candidates, key=lambda w: w.spare)
        other_slots = sum(w.spare for w in candidates) - 1
        tasks = [dequeue(group, stats)]
        # Requests that would wait anyway (more of them than free slots) travel together in
        # one call, up to a batch, so that many concurrent small jobs cost one round trip
        # each batch rather than each; requests that can run in parallel still do.
        size = len(tasks[0].items)
        while (
            len(group.queue) > other_slots
            and group.queue[0].timeout_s == tasks[0].timeout_s
            and size + len(group.queue[0].items) <= batch_items_max
        ):
            tasks.append(dequeue(group, stats))
            size += len(tasks[-1].items)
        assert worker.proc is not None
        items = [item for task in tasks for item in task.items]
        try:
            call_id = worker.proc.call(items, tasks[0].timeout_s)
        except LineTooLong as exc:
            if len(tasks) > 1:
                for task in reversed(tasks):
                    enqueue(group, task, stats, front=True)
                # Send the first alone; the others follow in later rounds.
                tasks = [dequeue(group, stats)]
                try:
                    call_id = worker.proc.call(tasks[0].items, tasks[0].timeout_s)
                except LineTooLong as again:
                    split_oversized(group, tasks[0], str(again), stats)
                    continue
            else:
                split_oversized(group, tasks[0], str(exc), stats)
                continue
        worker.calls[call_id] = tasks


def split_oversized(group: BundleGroup, task: Task, reason: str, stats: PoolStats) -> None:
    """Queue ``task``'s items one by one at the front; its future ends when all of theirs do."""
    if len(task.items) == 1:
        error = InvalidPayload(f"item too large for one protocol line: {reason}")
        finish(task, [_failure(error, "InvalidPayload")], stats)
        return
    loop = asyncio.get_running_loop()
    parts = [task.items[i : i + 1] for i in range(len(task.items))]
    subtasks = [Task(p, task.timeout_s, loop.create_future()) for p in parts]
    for sub in reversed(subtasks):
        enqueue(group, sub, stats, front=True)

    def collect(_: Any) -> None:
        if all(s.future.done() for s in subtasks) and not task.future.done():
            task.future.set_result([s.future.result()[0] for s in subtasks])

    for sub in subtasks:
        sub.future.add_done_callback(collect)


def fail_queue(
    group: BundleGroup, stats: PoolStats, kind: str, type_name: str, message: str
) -> None:
    """End every waiting task of the bundle with the same failure."""
    while group.queue:
        task = dequeue(group, stats)
        failure = ItemOutcome.failure(kind, type_name, message)
        finish(task, [failure] * len(task.items), stats)


def finish(task: Task, outcomes: list[ItemOutcome], stats: PoolStats) -> None:
    """End ``task`` with ``outcomes``, once: a task already ended keeps its first outcomes."""
    if task.future.done():
        return
    stats.tasks_failed += sum(1 for o in outcomes if not o.ok)
    task.future.set_result(outcomes)


def _failure(error: DisruptorError, type_name: str) -> ItemOutcome:
    return ItemOutcome.failure(error.slug, type_name, error.detail)
