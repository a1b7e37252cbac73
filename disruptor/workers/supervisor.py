"""What the pool does when a worker dies: retry its lost calls, restart it, or give up on it.

Rule: however a worker dies, each call it held ends once. A call lost with a crashed worker is
sent once more to another (``ATTEMPTS_MAX``), then fails with that worker's last stderr lines (a
call lost to a full scratch fails at once with ``scratch-full``). A
worker that dies unexpectedly is restarted after the backoff ``CrashHistory`` gives (at once
after a timeout, which is the task's fault, not the worker's), unless its bundle is
crash-looping: then the bundle is marked failed with the reason, its other workers are stopped
and its waiting items fail, rather than restarting for ever. A worker that is stopping, or whose
pool is closing, is forgotten instead. Starting a worker goes through here too, because a worker
that cannot start counts as one that crashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any

from ..chunks import ChunkResult
from ..errors import DisruptorError, WorkerCrashed
from ..outcome import ErrorInfo
from . import batching
from .launch import Launcher, discard_scratch, release
from .messages import V2
from .model import BundleGroup, PoolStats, Task, WorkerSlot
from .session import Death, DeathKind, Gone, State
from .settings import WorkerSettings

log = logging.getLogger("disruptor.workers")

# A lost call is sent once more to a fresh worker; a second loss fails its items.
ATTEMPTS_MAX = 2


class Supervisor:
    """Keeps the workers of ``groups`` (the pool's own dict, read here) running, or gives up."""

    def __init__(
        self,
        groups: Mapping[str, BundleGroup],
        stats: PoolStats,
        settings: WorkerSettings,
        launcher: Launcher,
    ) -> None:
        self._groups = groups
        self.stats = stats
        self.settings = settings
        self.launcher = launcher
        # Set when the pool stops: no worker is restarted after that.
        self.closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def spawn(self, worker: WorkerSlot) -> None:
        """Start (or restart) the worker's process; a failure to start counts as a crash."""
        try:
            proc = await self.launcher.launch(worker)
        except (OSError, DisruptorError) as exc:
            log.warning("worker %s failed to start: %s", worker.id, exc)
            self.after_death(worker, Death(DeathKind.CRASHED, f"could not start: {exc}"), [])
            return
        self.stats.workers_started += 1
        self.refresh_gauges()
        name = worker.group.manifest.name
        log.info("worker %s of %s started (pid %s)", worker.id, name, proc.pid)

    def reap(self, worker: WorkerSlot, gone: Gone, lost: list[tuple[Task, Death]]) -> None:
        """Collect the dead worker's last words off the loop's hot path, then decide."""

        async def reap() -> None:
            if worker.proc is not None:
                await worker.proc.wait_closed()
            release(worker)
            if gone.clean or worker.stopping:
                self._fail_lost(worker, lost)
                self.forget(worker)
            else:
                self.after_death(worker, gone.death, lost)

        self._background(reap(), f"reap-{worker.id}")

    def after_death(self, worker: WorkerSlot, death: Death, lost: list[tuple[Task, Death]]) -> None:
        group = worker.group
        if death.kind is DeathKind.PROTOCOL:
            self.stats.protocol_errors += 1
        if death.kind is not DeathKind.TIMEOUT:
            self.stats.crashes += 1
        # A call lost because the worker filled its scratch would fill the next one too.
        retry = [
            t
            for t, d in lost
            if t.attempts + 1 < ATTEMPTS_MAX
            and not worker.stopping
            and d.kind is not DeathKind.SCRATCH_FULL
        ]
        for task in retry:
            task.attempts += 1
            batching.enqueue(group, task, self.stats, front=True)
        # Another worker may take them now.
        batching.pump(group, self.stats, self.settings.batch_items_max)
        self._fail_lost(worker, [(t, d) for t, d in lost if t not in retry])
        words = last_words(worker, death)
        worker.last_words = words
        worker.died.set()
        worker.proc = None
        if worker.stopping or self.closing:
            self.forget(worker)
            return
        # A timeout is the task's fault, not the worker's: replace it at once.
        delay = 0.0 if death.kind is DeathKind.TIMEOUT else group.crashes.record(time.monotonic())
        if delay is None:
            self._give_up(group, words)
            return
        worker.restarts += 1
        self.stats.restarts += 1
        loop = asyncio.get_running_loop()
        worker.restart_timer = loop.call_later(delay, self._restart, worker)
        self.refresh_gauges()

    def forget(self, worker: WorkerSlot) -> None:
        """The worker leaves its bundle for good: its scratch and uid go, waiters are told."""
        group = worker.group
        if worker in group.workers:
            group.workers.remove(worker)
        discard_scratch(worker)
        release(worker)
        worker.gone.set()
        self.refresh_gauges()

    def refresh_gauges(self) -> None:
        sessions = [
            w.proc.session
            for g in self._groups.values()
            for w in g.workers
            if w.proc is not None and w.proc.session.state is not State.DEAD
        ]
        self.stats.workers_running = len(sessions)
        self.stats.workers_v2 = sum(1 for s in sessions if s.version == V2)
        self.stats.bundles_failed = sum(1 for g in self._groups.values() if g.failed)

    async def wait_background(self) -> None:
        """Wait for the reaps, restarts and stops under way (the pool is stopping)."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _give_up(self, group: BundleGroup, words: str) -> None:
        """The bundle is crash-looping: mark it failed, stop its workers, fail what waits."""
        group.failed = (
            f"bundle {group.manifest.name} ({group.sha1}) is failing: its workers crashed "
            f"{group.crashes.crashes_max} times within {group.crashes.window_s:g}s; "
            f"last: {words}. Start its workers again to retry."
        )
        log.warning("%s", group.failed)
        for other in list(group.workers):
            other.stopping = True
            if other.restart_timer is not None:
                other.restart_timer.cancel()
            if other.proc is not None:
                self._background(other.proc.stop(), f"stop-{other.id}")
            else:
                self.forget(other)
        batching.fail_queue(group, self.stats, WorkerCrashed.slug, "WorkerCrashed", group.failed)
        self.refresh_gauges()

    def _restart(self, worker: WorkerSlot) -> None:
        worker.restart_timer = None
        if worker.stopping or self.closing:
            self.forget(worker)
            return
        self._background(self.spawn(worker), f"restart-{worker.id}")

    def _fail_lost(self, worker: WorkerSlot, lost: list[tuple[Task, Death]]) -> None:
        for task, death in lost:
            info = ErrorInfo(death.kind.value, _type_name(death.kind), last_words(worker, death))
            batching.finish(task, ChunkResult.failed(task.count, info), self.stats)

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task kept here (and awaited when the pool stops)."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def last_words(worker: WorkerSlot, death: Death | None = None) -> str:
    """Why the worker died, with its last stderr lines: what its lost items fail with."""
    proc = worker.proc
    death = death or (proc.session.death if proc is not None else None)
    detail = death.detail if death is not None else "worker died"
    tail = list(proc.stderr_tail) if proc is not None else []
    if tail:
        return f"{detail}; its last stderr lines: " + " | ".join(tail[-5:])
    return f"{detail} (no stderr output)"


def _type_name(kind: DeathKind) -> str:
    return {
        DeathKind.CRASHED: "WorkerCrashed",
        DeathKind.PROTOCOL: "ProtocolError",
        DeathKind.TIMEOUT: "TaskTimeout",
        DeathKind.STOPPED: "Unavailable",
        DeathKind.SCRATCH_FULL: "ScratchFull",
    }[kind]
