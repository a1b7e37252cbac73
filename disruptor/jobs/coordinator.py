"""``JobCoordinator`` (the ``jobs`` part): carries out the dispatchers' plans with real peers.

A job submitted here is coordinated here: its dispatcher places tasks on the live peers (from the
``PeerDirectory``), attempts run on this peer (``LocalExecutor``) or on another through
``POST /tasks`` (``TaskCalls``), and whatever happens to an attempt goes back to the dispatcher as
an event, with the live peers and their load as they are now. One timer per job is armed at its
dispatcher's ``next_wakeup()`` (a deadline, a back-off's end); a membership change re-places at
once. Attempts other coordinators place here are the ``TaskServer``'s (``served.py``).

Rules: every decision is the dispatcher's (this module only turns outcomes and exceptions into
its events, with ``faults.failure_of``); the jobs running at once are bounded (one more is refused
as ``Overloaded`` with a ``retry_after_s``); a cancel reaches every peer running one of the job's
attempts.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from ..chunks import Chunk, ChunkResult
from ..errors import DisruptorError, NotFound, Overloaded
from .answer import fold_input
from .directory import PeerDirectory
from .dispatcher import Abandon, Action, Delivered, Dispatcher, Finished, Run
from .faults import FailureKind, HoldDown, failure_of
from .job import Job
from .local import LocalExecutor
from .model import JobOptions, JobState, Kind, Work
from .policies import PolicySet
from .reduce import reduce_values
from .remote import TaskCalls, task_request
from .settings import JobsSettings, JobStats

log = logging.getLogger("disruptor.jobs")

# Snippet sources remembered as already checked (compiled by the snippet engine), most recent.
CHECKED_SNIPPETS_MAX = 256
# On stop, how long the last cancel calls to other peers may take.
STOP_CHORES_S = 2.0


class SnippetLibrary(Protocol):
    """The snippet engine, as the coordinator uses it: check and store, look up, fold."""

    async def put(self, source: str, sha1: str | None = None) -> tuple[str, bool]: ...

    async def get(self, sha1: str) -> str: ...

    async def reduce(self, values: Sequence[Any], *, source: str | None = None) -> Any: ...


class JobCoordinator:
    def __init__(
        self,
        directory: PeerDirectory,
        local: LocalExecutor,
        calls: TaskCalls,
        snippets: SnippetLibrary,
        settings: JobsSettings,
        stats: JobStats,
        hold_down: HoldDown,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.directory = directory
        self.local = local
        self.calls = calls
        self.snippets = snippets
        self.settings = settings
        self.stats = stats
        self.hold_down = hold_down
        self._clock = clock  # the event loop's clock: the one its timers run on
        self.rng = rng or random.Random()  # noqa: S311 - placement, not secrets
        # One instance per policy name, shared by jobs, so round-robin turns across jobs too.
        self.policies = PolicySet()
        self._jobs: dict[str, Job] = {}
        self._by_key: dict[str, str] = {}
        self._finished: deque[str] = deque()
        self._chores: set[asyncio.Task[None]] = set()  # abandons and folds in flight
        self._checked: OrderedDict[str, None] = OrderedDict()  # SHA-1s of checked snippets
        # Job ids: random per process (peers and restarts never collide), counted within it.
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count()

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def self_address(self) -> str:
        return self.directory.self_address

    async def start(self) -> None:
        self.directory.cluster.subscribe(self._on_membership_change)

    async def stop(self) -> None:
        for job in list(self._jobs.values()):
            if not job.state.finished:
                self._apply(job, job.dispatcher.cancel(self._clock()))
            if job.timer is not None:
                job.timer.cancel()
                job.timer = None
        attempts = [t for job in self._jobs.values() for _, t in job.attempts.values()]
        await asyncio.gather(*attempts, return_exceptions=True)
        # Let the last abandon calls reach their peers, but never wait long for a silent one.
        if self._chores:
            await asyncio.wait(set(self._chores), timeout=STOP_CHORES_S)
            for chore in self._chores:
                chore.cancel()
            await asyncio.gather(*self._chores, return_exceptions=True)
        await self.calls.close()

    # --- the cluster as the dispatcher sees it ------------------------------------------------

    def live_peers(self) -> list[str]:
        return self.directory.live_peers(self._clock())

    def _on_membership_change(self) -> None:
        """A member changed state: re-place at once the attempts of peers no longer alive."""
        self.directory.changed()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon(self._refresh)

    def _refresh(self) -> None:
        for job in list(self._jobs.values()):
            if not job.state.finished:
                self._feed(job, lambda now: [])

    def _feed(self, job: Job, event: Callable[[float], list[Action]]) -> None:
        """Give the dispatcher the live peers as they are now (when they may have changed since
        it last heard), then the event; carry out both."""
        now = self._clock()
        actions: list[Action] = []
        if not job.state.finished and self.directory.current(now) != job.peers_version:
            job.peers_version = self.directory.version
            own = job.dispatcher.in_flight
            actions += job.dispatcher.on_peers(now, self.directory.views(now, own))
        self._apply(job, actions + event(now))

    def _arm(self, job: Job) -> None:
        """One timer per job, at the time its dispatcher next has something to do."""
        when = None if job.state.finished else job.dispatcher.next_wakeup()
        if job.timer is not None:
            if when is not None and job.timer.when() == when:
                return
            job.timer.cancel()
            job.timer = None
        if when is not None:
            job.timer = asyncio.get_running_loop().call_at(when, self._on_timer, job)

    def _on_timer(self, job: Job) -> None:
        job.timer = None
        self._feed(job, job.dispatcher.on_tick)

    # --- jobs -------------------------------------------------------------------------------

    def submit(
        self,
        work: Work,
        items: Sequence[Any] | None,
        options: JobOptions,
        *,
        chunks: Sequence[Chunk] = (),
        reduce: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Start a job of ``items`` (decoded JSON) or ``chunks`` (as a client sent them)."""
        if idempotency_key is not None and idempotency_key in self._by_key:
            existing = self._jobs.get(self._by_key[idempotency_key])
            if existing is not None:
                return existing
        if self.stats.running >= self.settings.jobs_running_max:
            self.stats.rejected_overloaded += 1
            raise Overloaded(
                f"{self.stats.running} jobs running here; try again shortly",
                retry_after_s=self.settings.retry_after_s,
            )
        if work.kind is Kind.BUNDLE and work.bundle is not None:
            self._check_bundle_known(work.bundle)
        total = len(items) if items is not None else sum(c.count for c in chunks)
        job_id = f"{self._id_prefix}{next(self._ids):08x}"
        dispatcher = Dispatcher(
            job_id,
            total,
            options,
            self.rng,  # shared: placements need no stream of their own
            self_address=self.self_address,
            policies=self.policies,
            hold_down=self.hold_down,
        )
        now = self._clock()
        views = self.directory.views(now)
        size = dispatcher.task_size(_peers_for(options, len(views)))
        segments = _segments(items, chunks, size)
        job = Job(job_id, work, segments, dispatcher, now, idempotency_key, reduce)
        self._jobs[job_id] = job
        if idempotency_key is not None:
            self._by_key[idempotency_key] = job_id
        self.stats.submitted += 1
        self.stats.running += 1
        job.peers_version = self.directory.version
        sizes, weights = [s.count for s in segments], [len(s.data) for s in segments]
        self._apply(job, dispatcher.start(now, views, sizes, weights))
        return job

    async def prepare(self, work: Work) -> Work:
        """Check the work before any task is placed: a bad snippet is refused once, here.

        A snippet named by SHA-1 is resolved to its source here, so peers that never saw it can
        run it too.
        """
        if work.kind is not Kind.SNIPPET:
            return work
        if work.snippet is not None:
            # Checking costs a trip to a snippet host: once per source is enough.
            name = hashlib.sha1(work.snippet.encode()).hexdigest()  # noqa: S324 - a name
            if name not in self._checked:
                await self.snippets.put(work.snippet)
                self._checked[name] = None
                while len(self._checked) > CHECKED_SNIPPETS_MAX:
                    self._checked.popitem(last=False)
            self._checked.move_to_end(name)
            return work
        assert work.snippet_sha1 is not None
        return Work(Kind.SNIPPET, snippet=await self.snippets.get(work.snippet_sha1))

    def _check_bundle_known(self, sha1: str) -> None:
        if not self.directory.bundles.has(sha1) and not self.directory.holders(sha1, self._clock()):
            raise NotFound(f"no live peer holds bundle {sha1}")

    def by_key(self, key: str) -> Job | None:
        """The job started here under this idempotency key, if it is still remembered."""
        job_id = self._by_key.get(key)
        return None if job_id is None else self._jobs.get(job_id)

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id} here (it may have been forgotten, or run elsewhere)")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        self._apply(job, job.dispatcher.cancel(self._clock()))
        return job

    def in_flight(self) -> list[dict[str, Any]]:
        return [j.summary() for j in self._jobs.values() if not j.state.finished]

    def recent(self) -> list[dict[str, Any]]:
        return [self._jobs[j].summary() for j in reversed(self._finished) if j in self._jobs]

    # --- carrying out actions ---------------------------------------------------------------

    def _apply(self, job: Job, actions: Sequence[Action]) -> None:
        woke = False
        for action in actions:
            if isinstance(action, Run):
                self.directory.out[action.peer] += 1
                task = asyncio.create_task(self._attempt(job, action), context=job.context)
                job.attempts[(action.task_id, action.attempt)] = (action.peer, task)
            elif isinstance(action, Abandon):
                self._abandon(job, action)
            elif isinstance(action, Delivered):
                job.delivered.extend(action.pieces)
                woke = True
            elif isinstance(action, Finished):
                self._finish(job, action.state)
                woke = True
        if woke:
            job.wake()
        self._arm(job)

    def _abandon(self, job: Job, action: Abandon) -> None:
        entry = job.attempts.pop((action.task_id, action.attempt), None)
        if entry is None:
            return
        self.directory.out[action.peer] -= 1
        peer, task = entry
        task.cancel()
        if peer != self.self_address:
            # The remote side stops when asked; its HTTP request being cut is not enough.
            self._background(self.calls.abandon(peer, job.job_id, action.task_id))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` without waiting for it; ``stop`` waits for what is still running."""
        task = asyncio.create_task(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def _finish(self, job: Job, state: JobState) -> None:
        for key in list(job.attempts):
            peer, task = job.attempts.pop(key)
            self.directory.out[peer] -= 1
            task.cancel()
        job.finished_s = self._clock()
        self.stats.running -= 1
        self.stats.tasks_replaced += job.dispatcher.replaced
        self.stats.items_retried += job.dispatcher.retried
        job.release_items()
        progress = job.progress
        self.stats.items_failed += progress.failed
        self.stats.items_completed += progress.done - progress.failed
        if state is JobState.COMPLETED:
            self.stats.completed += 1
        elif state is JobState.FAILED:
            self.stats.failed += 1
        else:
            self.stats.cancelled += 1
        self.stats.latency.observe(job.finished_s - job.created_s)
        if state is JobState.COMPLETED and job.reduce is not None:
            self._background(self._reduce_then_done(job))
        else:
            job.done.set()
        self._finished.append(job.job_id)
        while len(self._finished) > self.settings.jobs_kept_max:
            gone = self._jobs.pop(self._finished.popleft(), None)
            if gone is not None and gone.idempotency_key is not None:
                self._by_key.pop(gone.idempotency_key, None)

    async def _reduce_then_done(self, job: Job) -> None:
        try:
            assert job.reduce is not None
            job.reduced = await reduce_values(self.snippets, job.reduce, fold_input(job))
        except DisruptorError as error:
            job.reduce_error = {"kind": error.slug, "message": error.detail}
        finally:
            job.done.set()
            job.wake()

    async def _attempt(self, job: Job, run: Run) -> None:
        chunk = job.chunk_for(run.indexes)
        timeout_s = job.dispatcher.options.timeout_s
        try:
            if run.peer == self.self_address:
                self.stats.tasks_local += 1
                result = await self.local.run(job.work, chunk, timeout_s)
            else:
                self.stats.tasks_forwarded += 1
                sources: list[str] = []
                if job.work.bundle is not None:
                    now = self._clock()
                    sources = self.directory.holders(job.work.bundle, now, exclude=run.peer)
                request = task_request(
                    job.job_id, run.task_id, run.attempt, self.self_address, job.work, chunk,
                    timeout_s, sources,
                )  # fmt: skip
                result = await self.calls.run_task(run.peer, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not isinstance(exc, DisruptorError):
                log.exception("attempt %s of job %s failed unexpectedly", run.task_id, job.job_id)
            failure = failure_of(exc)
            if failure.kind is not FailureKind.REFUSED:
                log.info("attempt %s/%d on %s lost: %s", run.task_id, run.attempt, run.peer, exc)
            self._release(job, run)
            self._feed(
                job,
                lambda now: job.dispatcher.on_attempt_failed(
                    now, run.task_id, run.attempt, failure
                ),
            )
        else:
            self._release(job, run)
            self._feed(job, lambda now: self._result(job, run, result, now))

    def _result(self, job: Job, run: Run, result: ChunkResult, now: float) -> list[Action]:
        return job.dispatcher.on_result(now, run.task_id, run.attempt, result, run.peer)

    def _release(self, job: Job, run: Run) -> None:
        if job.attempts.pop((run.task_id, run.attempt), None) is not None:
            self.directory.out[run.peer] -= 1


def _peers_for(options: JobOptions, live: int) -> int:
    """How many peers a job's tasks will spread over, for its task size."""
    if options.peer_list:
        return len(options.peer_list)
    if options.peer_count is not None:
        return min(options.peer_count, live)
    return live


def _segments(items: Sequence[Any] | None, chunks: Sequence[Chunk], size: int) -> list[Chunk]:
    """The job's items as chunks of at most ``size``: JSON items encoded once, chunks a client
    sent kept as they are (cut only when larger)."""
    if items is not None:
        return [
            Chunk.of(items[start : start + size], first_index=start)
            for start in range(0, len(items), size)
        ]
    segments: list[Chunk] = []
    for chunk in chunks:
        segments.extend(chunk.split(size))
    return segments
