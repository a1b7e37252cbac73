"""The worker pool: warm workers per bundle, chunks of items batched onto them, crashes contained.

Rule: every chunk handed to ``run_chunk`` ends as exactly one ``ChunkResult`` with one value slot
per item, in order, whatever the workers do: answered, failed in the handler, timed out (its
worker is killed and replaced), or lost with a crashed worker (retried once on another, then
failed with that worker's last stderr lines). A bundle whose workers crash-loop is marked failed
with the reason instead of being restarted for ever; starting its workers again clears the mark.
Queues are bounded: a request that would overfill one is refused with ``Overloaded``. A chunk's
items and values stay encoded from the caller to a version 2 worker and back; ``run_batch`` is
the same contract for a list of items (one ``ItemOutcome`` each), for callers that hold lists.

This module is the pool's public surface and its bookkeeping of bundles and workers; it routes
what workers say to the callers waiting for it. The rest is delegated, one concern each:
``batching`` (queues, and tasks batched into calls), ``launch`` (starting a worker's process
from its isolation plan) and ``supervisor`` (what happens when a worker dies).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..bundles.unpack import load_app_manifest
from ..chunks import CHUNK_BYTES_MAX, Chunk, ChunkResult, array_header, encode
from ..errors import (
    InvalidName,
    InvalidPayload,
    NotFound,
    Overloaded,
    ScratchFull,
    TaskFailed,
    TaskTimeout,
    Unavailable,
    Unprocessable,
    WorkerCrashed,
)
from ..outcome import ErrorInfo, ItemOutcome
from . import batching
from .launch import Launcher
from .model import (
    BundleGroup,
    BundleSource,
    DirectorySource,
    PoolStats,
    Task,
    WorkerInfo,
    WorkerSlot,
)
from .process import WorkerProcess
from .restarts import CrashHistory
from .session import BecameReady, Completed, Failed, Gone, Lost, Output, TimedOut
from .settings import WorkerSettings
from .supervisor import Supervisor, last_words

SHA1_RE = re.compile(r"[0-9a-f]{40}")


class WorkerPool:
    def __init__(
        self,
        source: BundleSource,
        state_dir: Path,
        settings: WorkerSettings | None = None,
        *,
        data_root: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.source = source
        self.settings = settings or WorkerSettings()
        self.stats = PoolStats()
        self.state_dir = Path(state_dir)
        self.work_dir = self.state_dir / "workers"
        # The data directory (secrets) workers must never read; kept for the isolation checks.
        self.data_root = Path(data_root) if data_root is not None else self.state_dir
        self._rng = rng or random.Random()  # noqa: S311 - jitter and uid picks, not secrets
        self._groups: dict[str, BundleGroup] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Shared, not copied: uid picks and crash-history seeds come from the one seeded source.
        self._launcher = Launcher(self.settings, self.work_dir, self._rng, self._on_output)
        self._supervisor = Supervisor(self._groups, self.stats, self.settings, self._launcher)

    # --- lifecycle ---

    @property
    def mode(self) -> str:
        return self._launcher.mode

    async def start(self) -> None:
        self._launcher.install()

    async def stop(self) -> None:
        """Stop every worker (drain first, bounded by the drain timeout)."""
        self._supervisor.closing = True
        await asyncio.gather(*(self.stop_workers(sha1) for sha1 in list(self._groups)))
        await self._supervisor.wait_background()

    # --- the public surface ---

    def workers(self) -> list[WorkerInfo]:
        now = time.monotonic()
        infos: list[WorkerInfo] = []
        for group in self._groups.values():
            for worker in group.workers:
                proc = worker.proc
                state = proc.session.state.value if proc is not None else "restarting"
                infos.append(
                    WorkerInfo(
                        id=worker.id,
                        bundle=group.sha1,
                        name=group.manifest.name,
                        pid=proc.pid if proc is not None else None,
                        state=state,
                        tasks_done=worker.tasks_done,
                        restarts=worker.restarts,
                        uptime_s=round(now - worker.started_at, 3) if proc is not None else 0.0,
                        isolation=proc.plan.mode if proc is not None else self.mode,
                        uid=proc.plan.uid if proc is not None else None,
                        protocol=proc.session.version if proc is not None else 1,
                    )
                )
        return infos

    def failed_bundles(self) -> dict[str, str]:
        return {sha1: g.failed for sha1, g in self._groups.items() if g.failed is not None}

    @property
    def slots_free(self) -> int:
        return sum(w.spare for g in self._groups.values() for w in g.workers)

    @property
    def queue_items(self) -> int:
        """Items queued here, waiting for a worker."""
        return self.stats.queue_items

    @property
    def tasks_running(self) -> int:
        """Items being worked on now (sent to a worker, not yet answered)."""
        workers = (w for g in self._groups.values() for w in g.workers)
        calls = (tasks for w in workers for tasks in w.calls.values())
        return sum(task.count for tasks in calls for task in tasks)

    async def start_workers(self, sha1: str, count: int | None = None) -> list[WorkerInfo]:
        """Start ``count`` more workers (default: the manifest's ``count``) and wait for ready."""
        self._check_open()
        group = await self._group(sha1)
        async with self._lock(sha1):
            wanted = group.manifest.worker.count if count is None else count
            if wanted < 1:
                raise InvalidPayload("count must be at least 1")
            if len(group.workers) + wanted > self.settings.workers_per_bundle_max:
                raise InvalidPayload(
                    f"at most {self.settings.workers_per_bundle_max} workers per bundle "
                    f"({len(group.workers)} running)"
                )
            if group.failed is not None:
                group.failed = None
                group.crashes.reset()
                self._supervisor.refresh_gauges()
            new = [self._new_worker(group) for _ in range(wanted)]
            await asyncio.shield(asyncio.gather(*(self._supervisor.spawn(w) for w in new)))
            await self._await_ready(group, new)
        return [info for info in self.workers() if info.id in {w.id for w in new}]

    async def stop_workers(self, sha1: str) -> None:
        """Drain then stop every worker of the bundle; waiting items fail as unavailable."""
        group = self._groups.get(sha1)
        if group is None:
            raise NotFound(f"no workers for bundle {sha1} on this peer")
        async with self._lock(sha1):
            stopped = "the bundle's workers were stopped"
            batching.fail_queue(group, self.stats, "unavailable", "Unavailable", stopped)
            for worker in group.workers:
                worker.stopping = True
                if worker.restart_timer is not None:
                    worker.restart_timer.cancel()
                    worker.gone.set()
                if worker.proc is not None:
                    worker.proc.shutdown()
            for worker in list(group.workers):
                await worker.gone.wait()
                if worker.proc is not None:
                    await worker.proc.wait_closed()
            self._groups.pop(sha1, None)
            self._supervisor.refresh_gauges()

    async def run_chunk(
        self, bundle_sha1: str, chunk: Chunk, *, timeout_s: float | None = None
    ) -> ChunkResult:
        """Run ``chunk`` on the bundle's workers: one value slot per item, in order; an item's
        failure is its error in the result, never an exception (the request as a whole may be
        refused: ``Overloaded``, an unknown or misnamed bundle, a pool that is stopping)."""
        self._check_open()
        group = await self._group(bundle_sha1)
        if not chunk.count:
            return ChunkResult(0, array_header(0))
        await self._ensure_workers(group)
        if group.failed is not None:
            self.stats.tasks_failed += chunk.count
            error = ErrorInfo(WorkerCrashed.slug, "WorkerCrashed", group.failed)
            return ChunkResult.failed(chunk.count, error)
        self._admit(group, chunk.count)
        call_timeout = timeout_s if timeout_s is not None else group.manifest.worker.timeout_s
        loop = asyncio.get_running_loop()
        parts = batching.spread(group, chunk)
        if len(parts) > 1:
            self.stats.chunks_split += 1
        tasks = [Task(part, call_timeout, loop.create_future()) for part in parts]
        for task in tasks:
            batching.enqueue(group, task, self.stats)
        self._pump(group)
        if len(tasks) == 1:
            return await tasks[0].future
        whole: asyncio.Future[ChunkResult] = loop.create_future()
        batching.gather(whole, tasks)
        return await whole

    async def run_batch(
        self, bundle_sha1: str, items: Sequence[Any], *, timeout_s: float | None = None
    ) -> list[ItemOutcome]:
        """Run ``items`` on the bundle's workers; one outcome per item, in order.

        The list is encoded as one chunk (as several when it is too large for one; an item too
        large alone fails with ``InvalidPayload``) and run with ``run_chunk``.
        """
        self._check_open()
        group = await self._group(bundle_sha1)
        if not items:
            return []
        self._admit(group, len(items))
        chunks = _encode(list(items))
        results = await asyncio.gather(
            *(
                self.run_chunk(bundle_sha1, c, timeout_s=timeout_s)
                if isinstance(c, Chunk)
                else _done(c)
                for c in chunks
            )
        )
        return [outcome for result in results for outcome in result.outcomes()]

    # --- groups, workers ---

    async def _group(self, sha1: str) -> BundleGroup:
        if not SHA1_RE.fullmatch(sha1):
            raise InvalidName(f"{sha1!r} is not a bundle name (40 lowercase hex digits)")
        group = self._groups.get(sha1)
        if group is not None:
            return group
        async with self._lock(sha1):
            group = self._groups.get(sha1)
            if group is None:
                root = await self.source.unpack(sha1)
                manifest = load_app_manifest(root)
                s = self.settings
                history = CrashHistory(
                    s.crash_loop_crashes,
                    s.crash_loop_window_s,
                    s.restart_backoff_initial_s,
                    s.restart_backoff_max_s,
                    random.Random(self._rng.random()),  # noqa: S311
                )
                group = BundleGroup(sha1, manifest, Path(root), history)
                self._groups[sha1] = group
        return group

    async def _ensure_workers(self, group: BundleGroup) -> None:
        """Start the manifest's workers for a bundle that has none (and has not failed)."""
        if group.workers or group.failed is not None:
            return
        async with self._lock(group.sha1):
            if not group.workers and group.failed is None:
                count = max(1, group.manifest.worker.count)
                new = [self._new_worker(group) for _ in range(count)]
                # Shielded: a caller that gives up must not leave a half-spawned worker that
                # never reports gone (stop_workers would wait on it for ever).
                await asyncio.shield(asyncio.gather(*(self._supervisor.spawn(w) for w in new)))

    def _admit(self, group: BundleGroup, count: int) -> None:
        if group.queued_items + count > self.settings.queue_items_max:
            self.stats.overloaded_refusals += 1
            raise Overloaded(
                f"bundle {group.sha1} has {group.queued_items} items waiting "
                f"(limit {self.settings.queue_items_max})",
                retry_after_s=1.0,
            )

    def _lock(self, sha1: str) -> asyncio.Lock:
        return self._locks.setdefault(sha1, asyncio.Lock())

    def _check_open(self) -> None:
        if self._supervisor.closing:
            raise Unavailable("the worker pool is stopping")

    def _new_worker(self, group: BundleGroup) -> WorkerSlot:
        worker = WorkerSlot(id=f"{group.sha1[:12]}-{group.next_index}", group=group)
        group.next_index += 1
        group.workers.append(worker)
        return worker

    async def _await_ready(self, group: BundleGroup, workers: list[WorkerSlot]) -> None:
        """Wait until each new worker is ready; if one dies first, stop them and say why."""
        for worker in workers:
            waits = [
                asyncio.ensure_future(event.wait())
                for event in (worker.ready, worker.died, worker.gone)
            ]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            if not worker.ready.is_set():
                break
        else:
            return
        # A worker that cannot start once will not start on retry either: say why at once
        # rather than after the crash-loop limit.
        reason = group.failed or worker.last_words or last_words(worker)
        for other in workers:
            other.stopping = True
            if other.restart_timer is not None:
                other.restart_timer.cancel()
            if other.proc is not None:
                await other.proc.stop()
            self._supervisor.forget(other)
        raise Unprocessable(f"the worker of bundle {group.sha1} failed to start: {reason}")

    # --- what workers say ---

    def _on_output(self, proc: WorkerProcess, outputs: list[Output]) -> None:
        worker = self._worker_of(proc)
        if worker is None:
            return
        group = worker.group
        for output in outputs:
            if isinstance(output, BecameReady):
                worker.ready.set()
                self._supervisor.refresh_gauges()
            elif isinstance(output, Completed):
                tasks = worker.calls.pop(output.id)
                results = list(output.results)
                if any(r.errors for r in results) and _scratch_full(worker):
                    results = [_as_scratch_full(worker, r) for r in results]
                self._answered(worker, tasks, results)
            elif isinstance(output, Failed):
                tasks = worker.calls.pop(output.id)
                e = output.error
                info = ErrorInfo(TaskFailed.slug, e.type, e.message, e.traceback)
                if _scratch_full(worker):
                    info = _scratch_error(worker, info)
                self._answered(worker, tasks, [ChunkResult.failed(t.count, info) for t in tasks])
            elif isinstance(output, TimedOut):
                self.stats.timeouts += 1
                message = f"ran past its timeout of {output.timeout_s:g}s; its worker was replaced"
                timeout = ErrorInfo(TaskTimeout.slug, "TaskTimeout", message)
                for task in worker.calls.pop(output.id):
                    batching.finish(task, ChunkResult.failed(task.count, timeout), self.stats)
            elif isinstance(output, Lost):
                worker.lost += [(task, output.death) for task in worker.calls.pop(output.id)]
            elif isinstance(output, Gone):
                lost, worker.lost = worker.lost, []
                self._supervisor.reap(worker, output, lost)
        self._pump(group)

    def _answered(
        self, worker: WorkerSlot, tasks: list[Task], results: Sequence[ChunkResult]
    ) -> None:
        items = sum(task.count for task in tasks)
        worker.tasks_done += items
        self.stats.calls_done += 1
        self.stats.tasks_done += items
        self.stats.chunks_done += len(tasks)
        worker.group.crashes.recovered()
        for task, result in zip(tasks, results, strict=True):
            batching.finish(task, result, self.stats)

    def _worker_of(self, proc: WorkerProcess) -> WorkerSlot | None:
        for group in self._groups.values():
            for worker in group.workers:
                if worker.proc is proc:
                    return worker
        return None

    def _pump(self, group: BundleGroup) -> None:
        batching.pump(group, self.stats, self.settings.batch_items_max)


def _encode(items: list[Any]) -> list[Chunk | ChunkResult]:
    """``items`` as chunks, halved until each fits; an item too large alone is its own failure."""
    try:
        data = encode(items)
    except (TypeError, OverflowError, ValueError):
        Chunk.of(items)  # raises InvalidPayload naming the item that cannot be encoded
        raise
    if len(data) <= CHUNK_BYTES_MAX:
        return [Chunk(len(items), data)]
    if len(items) == 1:
        error = InvalidPayload(f"item too large: it exceeds {CHUNK_BYTES_MAX} bytes encoded")
        return [ChunkResult.failed(1, ErrorInfo(error.slug, "InvalidPayload", error.detail))]
    half = (len(items) + 1) // 2
    return _encode(items[:half]) + _encode(items[half:])


async def _done(result: ChunkResult) -> ChunkResult:
    return result


def _scratch_full(worker: WorkerSlot) -> bool:
    return worker.scratch_watch is not None and worker.scratch_watch.full_now()


def _scratch_error(worker: WorkerSlot, error: ErrorInfo) -> ErrorInfo:
    """An item's failure as ``scratch-full``, its worker's scratch being full: the worker is
    stopped (once these results are delivered) to start again with an empty scratch."""
    watch = worker.scratch_watch
    assert watch is not None
    asyncio.get_running_loop().call_soon(watch.trip, f"an item failed with {error.type}")
    limit_mb = watch.quota.limit_bytes / (1024 * 1024)
    message = (
        f"the worker's scratch is full (limit {limit_mb:g} MiB); the item failed with "
        f"{error.type}: {error.message}"
    )
    return ErrorInfo(ScratchFull.slug, "ScratchFull", message, error.traceback)


def _as_scratch_full(worker: WorkerSlot, result: ChunkResult) -> ChunkResult:
    if not result.errors:
        return result
    errors = tuple((offset, _scratch_error(worker, e)) for offset, e in result.errors)
    return ChunkResult(result.count, result.values, errors, result.peer)


__all__ = ["BundleSource", "DirectorySource", "PoolStats", "WorkerInfo", "WorkerPool"]
