"""The worker pool: warm workers per bundle, items batched onto them, crashes contained.

Rule: every item handed to ``run_batch`` ends as exactly one ``ItemOutcome``, in order, whatever
the workers do: answered, failed in the handler, timed out (its worker is killed and replaced),
or lost with a crashed worker (retried once on another, then failed with that worker's last
stderr lines). A bundle whose workers crash-loop is marked failed with the reason instead of being
restarted for ever; starting its workers again clears the mark. Queues are bounded: a request
that would overfill one is refused with ``Overloaded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import shutil
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from ..bundles.manifest import load_app_manifest
from ..errors import (
    DisruptorError,
    InvalidName,
    InvalidPayload,
    NotFound,
    Overloaded,
    TaskFailed,
    TaskTimeout,
    Unavailable,
    Unprocessable,
    WorkerCrashed,
)
from ..outcome import ItemOutcome
from . import isolation
from .framing import LineTooLong
from .isolation import UidClaim
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
from .session import (
    BecameReady,
    Completed,
    Death,
    DeathKind,
    Failed,
    Gone,
    Lost,
    Output,
    Session,
    SessionTimeouts,
    State,
    TimedOut,
)
from .settings import WorkerSettings

log = logging.getLogger("disruptor.workers")

SHA1_RE = re.compile(r"[0-9a-f]{40}")
# A lost call is sent once more to a fresh worker; a second loss fails its items.
ATTEMPTS_MAX = 2


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
        self._reapers: set[asyncio.Task[None]] = set()
        self._runtime: Path | None = None
        self._mode: str | None = None
        self._closed = False

    # --- lifecycle ---

    @property
    def mode(self) -> str:
        if self._mode is None:
            self._mode = isolation.choose_mode(self.settings)
        return self._mode

    async def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Each worker's scratch is its own 0700 directory in here; the parent only lets them in.
        (self.work_dir / "scratch").mkdir(exist_ok=True, mode=0o711)
        self._runtime = isolation.install_runtime(self.work_dir / "runtime")

    async def stop(self) -> None:
        """Stop every worker (drain first, bounded by the drain timeout)."""
        self._closed = True
        await asyncio.gather(*(self.stop_workers(sha1) for sha1 in list(self._groups)))
        for task in list(self._reapers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
                    )
                )
        return infos

    def failed_bundles(self) -> dict[str, str]:
        return {sha1: g.failed for sha1, g in self._groups.items() if g.failed is not None}

    @property
    def slots_free(self) -> int:
        return sum(w.spare for g in self._groups.values() for w in g.workers)

    @property
    def tasks_running(self) -> int:
        """Items being worked on now (sent to a worker, not yet answered)."""
        workers = (w for g in self._groups.values() for w in g.workers)
        calls = (tasks for w in workers for tasks in w.calls.values())
        return sum(len(task.items) for tasks in calls for task in tasks)

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
                self._refresh_gauges()
            new = [self._new_worker(group) for _ in range(wanted)]
            await asyncio.shield(asyncio.gather(*(self._spawn(w) for w in new)))
            await self._await_ready(group, new)
        return [info for info in self.workers() if info.id in {w.id for w in new}]

    async def stop_workers(self, sha1: str) -> None:
        """Drain then stop every worker of the bundle; waiting items fail as unavailable."""
        group = self._groups.get(sha1)
        if group is None:
            raise NotFound(f"no workers for bundle {sha1} on this peer")
        async with self._lock(sha1):
            stopped = "the bundle's workers were stopped"
            self._fail_queue(group, "unavailable", "Unavailable", stopped)
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
            self._refresh_gauges()

    async def run_batch(
        self, bundle_sha1: str, items: Sequence[Any], *, timeout_s: float | None = None
    ) -> list[ItemOutcome]:
        """Run ``items`` on the bundle's workers; one outcome per item, in order."""
        self._check_open()
        group = await self._group(bundle_sha1)
        if not items:
            return []
        if not group.workers and group.failed is None:
            async with self._lock(bundle_sha1):
                if not group.workers and group.failed is None:
                    count = max(1, group.manifest.worker.count)
                    new = [self._new_worker(group) for _ in range(count)]
                    # Shielded: a caller that gives up must not leave a half-spawned worker
                    # that never reports gone (stop_workers would wait on it for ever).
                    await asyncio.shield(asyncio.gather(*(self._spawn(w) for w in new)))
        if group.failed is not None:
            error = WorkerCrashed(group.failed)
            self.stats.tasks_failed += len(items)
            return [ItemOutcome.failure(error.slug, "WorkerCrashed", group.failed)] * len(items)
        if group.queued_items + len(items) > self.settings.queue_items_max:
            self.stats.overloaded_refusals += 1
            raise Overloaded(
                f"bundle {bundle_sha1} has {group.queued_items} items waiting "
                f"(limit {self.settings.queue_items_max})",
                retry_after_s=1.0,
            )
        call_timeout = timeout_s if timeout_s is not None else group.manifest.worker.timeout_s
        loop = asyncio.get_running_loop()
        tasks = []
        for chunk in self._chunks(group, list(items)):
            task = Task(chunk, call_timeout, loop.create_future())
            tasks.append(task)
            self._enqueue(group, task)
        self._pump(group)
        results = await asyncio.gather(*(t.future for t in tasks))
        return [outcome for chunk in results for outcome in chunk]

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

    def _lock(self, sha1: str) -> asyncio.Lock:
        return self._locks.setdefault(sha1, asyncio.Lock())

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the worker pool is stopping")

    def _new_worker(self, group: BundleGroup) -> WorkerSlot:
        worker = WorkerSlot(id=f"{group.sha1[:12]}-{group.next_index}", group=group)
        group.next_index += 1
        group.workers.append(worker)
        return worker

    async def _spawn(self, worker: WorkerSlot) -> None:
        """Start (or restart) the worker's process; a failure to start counts as a crash."""
        group = worker.group
        worker.ready = asyncio.Event()
        handles: isolation.DirectoryHandles | None = None
        try:
            proc, handles = self._make_process(worker)
            # Known before it runs: its first words (the ready line) may arrive before spawn()
            # returns, and must find their worker.
            worker.proc = proc
            worker.started_at = time.monotonic()
            await proc.spawn()
        except (OSError, DisruptorError) as exc:
            log.warning("worker %s failed to start: %s", worker.id, exc)
            worker.proc = None
            self._release(worker)
            self._after_death(worker, Death(DeathKind.CRASHED, f"could not start: {exc}"), [])
            return
        finally:
            if handles is not None:
                handles.close()  # the worker holds its own copies now
        self.stats.workers_started += 1
        self._refresh_gauges()
        log.info("worker %s of %s started (pid %s)", worker.id, group.manifest.name, proc.pid)

    def _make_process(
        self, worker: WorkerSlot
    ) -> tuple[WorkerProcess, isolation.DirectoryHandles | None]:
        group = worker.group
        mode = self.mode
        if self._runtime is None:
            raise Unavailable("the worker pool is not started")
        root_user = isolation.runs_as_root()
        worker.claim = UidClaim(self.settings, self._rng) if root_user else None
        uid = worker.claim.uid if worker.claim is not None else None
        worker.scratch = isolation.prepare_scratch(self.work_dir / "scratch" / worker.id, uid)
        handles: isolation.DirectoryHandles | None = None
        if mode == "bwrap":
            plan = isolation.plan_bwrap(
                group.manifest,
                self.settings,
                bundle_dir=group.root,
                scratch_dir=worker.scratch,
                runtime=self._runtime,
                uid=uid,
            )
        else:
            if root_user:
                dirs = [group.root, worker.scratch, self._runtime.parent]
                handles = isolation.DirectoryHandles(dirs)
            try:
                plan = isolation.plan_plain(
                    group.manifest,
                    self.settings,
                    bundle_dir=group.root,
                    scratch_dir=worker.scratch,
                    runtime=self._runtime,
                    uid=uid,
                    handles=handles,
                )
            except DisruptorError:
                if handles is not None:
                    handles.close()
                raise
        loop = asyncio.get_running_loop()
        session = Session(
            concurrency=group.manifest.worker.concurrency,
            started_at=loop.time(),
            timeouts=SessionTimeouts(self.settings.ready_timeout_s, self.settings.drain_timeout_s),
            line_bytes_max=self.settings.line_bytes_max,
        )
        proc = WorkerProcess(
            worker.id,
            plan,
            session,
            self._on_output,
            stderr_lines_kept=self.settings.stderr_lines_kept,
            stderr_line_chars_max=self.settings.stderr_line_chars_max,
        )
        return proc, handles

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
        reason = group.failed or worker.last_words or self._last_words(worker)
        for other in workers:
            other.stopping = True
            if other.restart_timer is not None:
                other.restart_timer.cancel()
            if other.proc is not None:
                await other.proc.stop()
            self._forget(other)
        raise Unprocessable(f"the worker of bundle {group.sha1} failed to start: {reason}")

    # --- the queue ---

    def _chunks(self, group: BundleGroup, items: list[Any]) -> list[list[Any]]:
        slots = max(1, sum(group.manifest.worker.concurrency for _ in group.workers))
        size = max(1, min(self.settings.batch_items_max, math.ceil(len(items) / slots)))
        return [items[i : i + size] for i in range(0, len(items), size)]

    def _enqueue(self, group: BundleGroup, task: Task, *, front: bool = False) -> None:
        if front:
            group.queue.appendleft(task)
        else:
            group.queue.append(task)
        group.queued_items += len(task.items)
        self.stats.queue_items += len(task.items)

    def _dequeue(self, group: BundleGroup) -> Task:
        task = group.queue.popleft()
        group.queued_items -= len(task.items)
        self.stats.queue_items -= len(task.items)
        return task

    def _drop_abandoned(self, group: BundleGroup) -> None:
        """Forget queued tasks whose caller gave up (a cancelled job): they must not run."""
        if not any(task.future.done() for task in group.queue):
            return
        for task in [t for t in group.queue if t.future.done()]:
            group.queue.remove(task)
            group.queued_items -= len(task.items)
            self.stats.queue_items -= len(task.items)

    def _pump(self, group: BundleGroup) -> None:
        """Hand waiting tasks to workers with spare concurrency, most spare first."""
        self._drop_abandoned(group)
        while group.queue:
            candidates = [w for w in group.workers if w.spare > 0 and not w.stopping]
            if not candidates:
                return
            worker = max(candidates, key=lambda w: w.spare)
            other_slots = sum(w.spare for w in candidates) - 1
            tasks = [self._dequeue(group)]
            # Requests that would wait anyway (more of them than free slots) travel together in
            # one call, up to a batch, so that many concurrent small jobs cost one round trip
            # each batch rather than each; requests that can run in parallel still do.
            size = len(tasks[0].items)
            while (
                len(group.queue) > other_slots
                and group.queue[0].timeout_s == tasks[0].timeout_s
                and size + len(group.queue[0].items) <= self.settings.batch_items_max
            ):
                tasks.append(self._dequeue(group))
                size += len(tasks[-1].items)
            assert worker.proc is not None
            items = [item for task in tasks for item in task.items]
            try:
                call_id = worker.proc.call(items, tasks[0].timeout_s)
            except LineTooLong as exc:
                if len(tasks) > 1:
                    for task in reversed(tasks):
                        self._enqueue(group, task, front=True)
                    # Send the first alone; the others follow in later rounds.
                    tasks = [self._dequeue(group)]
                    try:
                        call_id = worker.proc.call(tasks[0].items, tasks[0].timeout_s)
                    except LineTooLong as again:
                        self._split_oversized(group, tasks[0], str(again))
                        continue
                else:
                    self._split_oversized(group, tasks[0], str(exc))
                    continue
            worker.calls[call_id] = tasks

    def _split_oversized(self, group: BundleGroup, task: Task, reason: str) -> None:
        if len(task.items) == 1:
            error = InvalidPayload(f"item too large for one protocol line: {reason}")
            self._finish(task, [_failure(error, "InvalidPayload")])
            return
        loop = asyncio.get_running_loop()
        parts = [task.items[i : i + 1] for i in range(len(task.items))]
        subtasks = [Task(p, task.timeout_s, loop.create_future()) for p in parts]
        for sub in reversed(subtasks):
            self._enqueue(group, sub, front=True)

        def collect(_: Any) -> None:
            if all(s.future.done() for s in subtasks) and not task.future.done():
                task.future.set_result([s.future.result()[0] for s in subtasks])

        for sub in subtasks:
            sub.future.add_done_callback(collect)

    def _fail_queue(self, group: BundleGroup, kind: str, type_name: str, message: str) -> None:
        while group.queue:
            task = self._dequeue(group)
            failure = ItemOutcome.failure(kind, type_name, message)
            self._finish(task, [failure] * len(task.items))

    def _finish(self, task: Task, outcomes: list[ItemOutcome]) -> None:
        if task.future.done():
            return
        self.stats.tasks_failed += sum(1 for o in outcomes if not o.ok)
        task.future.set_result(outcomes)

    # --- what workers say ---

    def _on_output(self, proc: WorkerProcess, outputs: list[Output]) -> None:
        worker = self._worker_of(proc)
        if worker is None:
            return
        group = worker.group
        for output in outputs:
            if isinstance(output, BecameReady):
                worker.ready.set()
            elif isinstance(output, Completed):
                tasks = worker.calls.pop(output.id)
                outcomes = [
                    ItemOutcome(value=r.value)
                    if r.error is None
                    else ItemOutcome.failure(
                        TaskFailed.slug, r.error.type, r.error.message, r.error.traceback
                    )
                    for r in output.results
                ]
                self._answered(worker, tasks, outcomes)
            elif isinstance(output, Failed):
                tasks = worker.calls.pop(output.id)
                e = output.error
                failure = ItemOutcome.failure(TaskFailed.slug, e.type, e.message, e.traceback)
                self._answered(worker, tasks, [failure] * sum(len(t.items) for t in tasks))
            elif isinstance(output, TimedOut):
                self.stats.timeouts += 1
                message = f"ran past its timeout of {output.timeout_s:g}s; its worker was replaced"
                timeout = ItemOutcome.failure(TaskTimeout.slug, "TaskTimeout", message)
                for task in worker.calls.pop(output.id):
                    self._finish(task, [timeout] * len(task.items))
            elif isinstance(output, Lost):
                worker.lost += [(task, output.death) for task in worker.calls.pop(output.id)]
            elif isinstance(output, Gone):
                lost, worker.lost = worker.lost, []
                self._reap(worker, output, lost)
        self._pump(group)

    def _answered(self, worker: WorkerSlot, tasks: list[Task], outcomes: list[ItemOutcome]) -> None:
        worker.tasks_done += len(outcomes)
        self.stats.calls_done += 1
        self.stats.tasks_done += len(outcomes)
        worker.group.crashes.recovered()
        start = 0
        for task in tasks:
            self._finish(task, outcomes[start : start + len(task.items)])
            start += len(task.items)

    def _reap(self, worker: WorkerSlot, gone: Gone, lost: list[tuple[Task, Death]]) -> None:
        """Collect the dead worker's last words off the loop's hot path, then decide."""

        async def reap() -> None:
            if worker.proc is not None:
                await worker.proc.wait_closed()
            self._release(worker)
            if gone.clean or worker.stopping:
                self._fail_lost(worker, lost)
                self._forget(worker)
            else:
                self._after_death(worker, gone.death, lost)

        self._background(reap(), f"reap-{worker.id}")

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task the pool keeps (and awaits on stop)."""
        task = asyncio.create_task(coro, name=name)
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    def _after_death(
        self, worker: WorkerSlot, death: Death, lost: list[tuple[Task, Death]]
    ) -> None:
        group = worker.group
        if death.kind is DeathKind.PROTOCOL:
            self.stats.protocol_errors += 1
        if death.kind is not DeathKind.TIMEOUT:
            self.stats.crashes += 1
        retry = [t for t, _ in lost if t.attempts + 1 < ATTEMPTS_MAX and not worker.stopping]
        for task in retry:
            task.attempts += 1
            self._enqueue(group, task, front=True)
        self._pump(group)  # another worker may take them now
        self._fail_lost(worker, [(t, d) for t, d in lost if t not in retry])
        words = self._last_words(worker, death)
        worker.last_words = words
        worker.died.set()
        worker.proc = None
        if worker.stopping or self._closed:
            self._forget(worker)
            return
        # A timeout is the task's fault, not the worker's: replace it at once.
        delay = 0.0 if death.kind is DeathKind.TIMEOUT else group.crashes.record(time.monotonic())
        if delay is None:
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
                    self._forget(other)
            self._fail_queue(group, WorkerCrashed.slug, "WorkerCrashed", group.failed)
            self._refresh_gauges()
            return
        worker.restarts += 1
        self.stats.restarts += 1
        loop = asyncio.get_running_loop()
        worker.restart_timer = loop.call_later(delay, self._restart, worker)
        self._refresh_gauges()

    def _restart(self, worker: WorkerSlot) -> None:
        worker.restart_timer = None
        if worker.stopping or self._closed:
            self._forget(worker)
            return
        self._background(self._spawn(worker), f"restart-{worker.id}")

    def _fail_lost(self, worker: WorkerSlot, lost: list[tuple[Task, Death]]) -> None:
        for task, death in lost:
            message = self._last_words(worker, death)
            outcome = ItemOutcome.failure(death.kind.value, _type_name(death.kind), message)
            self._finish(task, [outcome] * len(task.items))

    def _last_words(self, worker: WorkerSlot, death: Death | None = None) -> str:
        proc = worker.proc
        death = death or (proc.session.death if proc is not None else None)
        detail = death.detail if death is not None else "worker died"
        tail = list(proc.stderr_tail) if proc is not None else []
        if tail:
            return f"{detail}; its last stderr lines: " + " | ".join(tail[-5:])
        return f"{detail} (no stderr output)"

    def _release(self, worker: WorkerSlot) -> None:
        if worker.claim is not None:
            worker.claim.release()
            worker.claim = None

    def _forget(self, worker: WorkerSlot) -> None:
        group = worker.group
        if worker in group.workers:
            group.workers.remove(worker)
        if worker.scratch is not None:
            shutil.rmtree(worker.scratch, ignore_errors=True)
        self._release(worker)
        worker.gone.set()
        self._refresh_gauges()

    def _worker_of(self, proc: WorkerProcess) -> WorkerSlot | None:
        for group in self._groups.values():
            for worker in group.workers:
                if worker.proc is proc:
                    return worker
        return None

    def _refresh_gauges(self) -> None:
        self.stats.workers_running = sum(
            1
            for g in self._groups.values()
            for w in g.workers
            if w.proc is not None and w.proc.session.state is not State.DEAD
        )
        self.stats.bundles_failed = sum(1 for g in self._groups.values() if g.failed)


def _type_name(kind: DeathKind) -> str:
    return {
        DeathKind.CRASHED: "WorkerCrashed",
        DeathKind.PROTOCOL: "ProtocolError",
        DeathKind.TIMEOUT: "TaskTimeout",
        DeathKind.STOPPED: "Unavailable",
    }[kind]


def _failure(error: DisruptorError, type_name: str) -> ItemOutcome:
    return ItemOutcome.failure(error.slug, type_name, error.detail)


__all__ = ["BundleSource", "DirectorySource", "PoolStats", "WorkerInfo", "WorkerPool"]
