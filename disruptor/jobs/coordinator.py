"""``JobCoordinator`` (``peer.jobs``): carries out the dispatcher's plans with real peers.

A job submitted here is coordinated here: the dispatcher places its tasks on the live peers (from
membership; this peer alone when there is none), attempts run locally through the worker pool or
the snippet runner, or remotely through ``POST /tasks`` on the chosen peer, and whatever happens to
an attempt goes back to the dispatcher as an event. A periodic tick refreshes the peers' load and
catches attempts past their deadline; a membership change re-places at once.

Rules: every decision is the dispatcher's (this module only translates outcomes and failures into
its events); every queue is bounded (too many jobs or served tasks: ``Overloaded`` with a
``retry_after_s``); a cancel reaches every peer running one of the job's attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import uuid
from collections import Counter, OrderedDict, deque
from collections.abc import Coroutine, Sequence
from typing import Any, cast

from ..address import Address
from ..errors import (
    BadRequest,
    DisruptorError,
    NotFound,
    Overloaded,
    PeerUnreachable,
    Unavailable,
    Unprocessable,
)
from ..outcome import BundleExecutor, ItemOutcome, SnippetExecutor
from .dispatcher import Abandon, Action, Delivered, Dispatcher, Finished, Run
from .job import Job
from .model import JobOptions, JobState, Kind, Work
from .policies import PeerView, Policy, make_policy
from .reduce import reduce_values
from .remote import PeerCalls
from .settings import JobsSettings, JobStats

log = logging.getLogger("disruptor.jobs")

# Snippet sources remembered as already checked (compiled by the snippet runner), most recent.
CHECKED_SNIPPETS_MAX = 256
# On stop, how long the last cancel calls to other peers may take.
STOP_CHORES_S = 2.0


class JobCoordinator:
    def __init__(
        self, peer: Any, settings: JobsSettings | None = None, rng: random.Random | None = None
    ) -> None:
        self._peer = peer
        self.settings = settings or JobsSettings()
        self.stats = JobStats()
        self.rng = rng or random.Random()  # noqa: S311 - placement, not secrets
        self.calls = PeerCalls(peer.cluster_secret, self.settings.connect_timeout_s)
        self._jobs: dict[str, Job] = {}
        self._by_key: dict[str, str] = {}
        self._finished: deque[str] = deque()
        self._out: Counter[str] = Counter()  # attempts out per peer, over all jobs
        self._served: dict[str, dict[str, asyncio.Task[Any]]] = {}
        # One instance per policy name, shared by jobs, so round-robin turns across jobs too.
        self._policies: dict[str, Policy] = {}
        self._ticker: asyncio.Task[None] | None = None
        # Peers whose connection just failed, until when (loop time): kept out of placements
        # until membership catches up, so their tasks do not bounce back to them meanwhile.
        self._unreachable: dict[str, float] = {}
        self._chores: set[asyncio.Task[None]] = set()  # abandons and folds in flight
        self._checked: OrderedDict[str, None] = OrderedDict()  # SHA-1s of checked snippets

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def self_address(self) -> str:
        return str(self._peer.address)

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="jobs-tick")
        membership = getattr(self._peer, "membership", None)
        subscribe = getattr(membership, "subscribe", None)
        if callable(subscribe):
            subscribe(self._on_membership_change)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for job in list(self._jobs.values()):
            if not job.state.finished:
                self._apply(job, job.dispatcher.cancel(self._now()))
        served = [t for tasks in self._served.values() for t in tasks.values()]
        for task in served:
            task.cancel()
        attempts = [t for job in self._jobs.values() for _, t in job.attempts.values()]
        await asyncio.gather(*served, *attempts, return_exceptions=True)
        # Let the last abandon calls reach their peers, but never wait long for a silent one.
        if self._chores:
            await asyncio.wait(set(self._chores), timeout=STOP_CHORES_S)
            for chore in self._chores:
                chore.cancel()
            await asyncio.gather(*self._chores, return_exceptions=True)
        await self.calls.close()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # --- the cluster as the dispatcher sees it ------------------------------------------------

    def live_peers(self) -> list[str]:
        membership = getattr(self._peer, "membership", None)
        if membership is None:
            return [self.self_address]
        addresses = {str(a) for a in membership.live_addresses()}
        if self._unreachable:
            now = self._now()
            for address, until in list(self._unreachable.items()):
                if until <= now:
                    del self._unreachable[address]
                else:
                    addresses.discard(address)
        addresses.add(self.self_address)
        return sorted(addresses)

    def _meta(self, address: str) -> Any:
        membership = getattr(self._peer, "membership", None)
        if membership is None:
            return None
        with contextlib.suppress(Exception):
            return membership.meta_of(Address.parse(address))
        return None

    def views(self, job: Job | None = None) -> list[PeerView]:
        own = job.dispatcher.in_flight if job is not None else {}
        views = []
        for address in self.live_peers():
            meta = self._meta(address)
            load = 0.0
            if meta is not None:
                load = float(meta.load.tasks_running + meta.load.queue_length)
            views.append(
                PeerView(
                    address,
                    load,
                    self._out[address] - own.get(address, 0),
                    float(self.settings.weights.get(address, 1.0)),
                )
            )
        return views

    def holders(self, sha1: str, exclude: str | None = None) -> list[str]:
        """Peers that hold the bundle (gossip says so), shuffled so fetches spread among them."""
        found = []
        store = getattr(self._peer, "store", None)
        if store is not None and store.has(sha1):
            found.append(self.self_address)
        for address in self.live_peers():
            meta = self._meta(address)
            if address != self.self_address and meta is not None and sha1 in meta.bundles:
                found.append(address)
        self.rng.shuffle(found)
        return [a for a in found if a != exclude]

    def _on_membership_change(self, *_: Any) -> None:
        """A member changed state: re-place at once the attempts of peers no longer alive."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon(self._refresh)

    def _refresh(self) -> None:
        now = self._now()
        for job in list(self._jobs.values()):
            if not job.state.finished:
                self._apply(job, job.dispatcher.on_peers(now, self.views(job)))

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_s)
            now = self._now()
            for job in list(self._jobs.values()):
                if not job.state.finished:
                    actions = job.dispatcher.on_peers(now, self.views(job))
                    self._apply(job, actions + job.dispatcher.on_tick(now))

    # --- jobs -------------------------------------------------------------------------------

    def submit(
        self,
        work: Work,
        items: list[Any],
        options: JobOptions,
        *,
        reduce: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
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
        policy = None
        if options.policy != "broadcast":
            policy = self._policies.get(options.policy) or make_policy(options.policy)
            self._policies[options.policy] = policy
        job_id = uuid.uuid4().hex[:16]
        dispatcher = Dispatcher(
            job_id,
            len(items),
            options,
            random.Random(self.rng.getrandbits(64)),  # noqa: S311 - placement
            self_address=self.self_address,
            policy=policy,
        )
        job = Job(job_id, work, items, dispatcher, self._now(), idempotency_key, reduce)
        self._jobs[job_id] = job
        if idempotency_key is not None:
            self._by_key[idempotency_key] = job_id
        self.stats.submitted += 1
        self.stats.running += 1
        self._apply(job, dispatcher.start(self._now(), self.views(job)))
        return job

    async def prepare(self, work: Work) -> Work:
        """Check the work before any task is placed: a bad snippet is refused once, here.

        A snippet named by SHA-1 is resolved to its source here, so peers that never saw it can
        run it too.
        """
        runner = getattr(self._peer, "snippets", None)
        if work.kind is not Kind.SNIPPET or runner is None:
            return work
        if work.snippet is not None:
            # Checking costs a trip to a snippet host: once per source is enough.
            name = hashlib.sha1(work.snippet.encode()).hexdigest()  # noqa: S324 - a name
            if name not in self._checked:
                await runner.put(work.snippet)
                self._checked[name] = None
                while len(self._checked) > CHECKED_SNIPPETS_MAX:
                    self._checked.popitem(last=False)
            self._checked.move_to_end(name)
            return work
        assert work.snippet_sha1 is not None
        return Work(Kind.SNIPPET, snippet=await runner.get(work.snippet_sha1))

    def _check_bundle_known(self, sha1: str) -> None:
        store = getattr(self._peer, "store", None)
        if store is None:
            return
        if not store.has(sha1) and not self.holders(sha1):
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

    async def wait(self, job: Job) -> Job:
        await job.done.wait()
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        self._apply(job, job.dispatcher.cancel(self._now()))
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
                self._out[action.peer] += 1
                task = asyncio.create_task(self._attempt(job, action), context=job.context)
                job.attempts[(action.task_id, action.attempt)] = (action.peer, task)
            elif isinstance(action, Abandon):
                self._abandon(job, action)
            elif isinstance(action, Delivered):
                job.delivered.extend(action.indexes)
                woke = True
            elif isinstance(action, Finished):
                self._finish(job, action.state)
                woke = True
        if woke:
            job.wake()

    def _abandon(self, job: Job, action: Abandon) -> None:
        entry = job.attempts.pop((action.task_id, action.attempt), None)
        if entry is None:
            return
        self._out[action.peer] -= 1
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
            self._out[peer] -= 1
            task.cancel()
        job.finished_s = self._now()
        self.stats.running -= 1
        self.stats.tasks_replaced += job.dispatcher.replaced
        self.stats.items_retried += job.dispatcher.retried
        progress = job.dispatcher.results.progress
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
            values = [o.value for o in job.dispatcher.results.outcomes() if o and o.ok]
            job.reduced = await reduce_values(self._peer, job.reduce, values)
        except DisruptorError as error:
            job.reduce_error = {"kind": error.slug, "message": error.detail}
        finally:
            job.done.set()
            job.wake()

    async def _attempt(self, job: Job, run: Run) -> None:
        items = [job.items[i] for i in run.indexes]
        if job.broadcast:
            items = job.items
        event: list[Action]
        try:
            if run.peer == self.self_address:
                self.stats.tasks_local += 1
                outcomes = await self.run_local(job.work, items, job.dispatcher.options.timeout_s)
            else:
                self.stats.tasks_forwarded += 1
                outcomes = await self.calls.run_task(
                    run.peer, self._task_body(job, run, items), len(items)
                )
        except asyncio.CancelledError:
            raise
        except (Overloaded, Unavailable) as error:
            if isinstance(error, PeerUnreachable):
                self._unreachable[run.peer] = self._now() + self.settings.unreachable_hold_s
                event = self._failed(job, run, error.detail)
            else:
                event = job.dispatcher.on_attempt_failed(
                    self._now(), run.task_id, run.attempt, error.detail, error.retry_after_s
                )
        except (BadRequest, Unprocessable) as error:
            # The work itself is refused (a bad snippet...): every peer would say the same.
            failure = ItemOutcome.failure(error.slug, type(error).__name__, error.detail)
            event = self._result(job, run, [failure] * len(items))
        except DisruptorError as error:
            event = self._failed(job, run, error.detail)
        except Exception as exc:
            log.exception("attempt %s of job %s failed unexpectedly", run.task_id, job.job_id)
            event = self._failed(job, run, f"{type(exc).__name__}: {exc}")
        else:
            event = self._result(job, run, outcomes)
        self._apply(job, event)

    def _release(self, job: Job, run: Run) -> None:
        if job.attempts.pop((run.task_id, run.attempt), None) is not None:
            self._out[run.peer] -= 1

    def _failed(self, job: Job, run: Run, why: str) -> list[Action]:
        self._release(job, run)
        log.info("attempt %s/%d on %s lost: %s", run.task_id, run.attempt, run.peer, why)
        return job.dispatcher.on_attempt_failed(self._now(), run.task_id, run.attempt, why)

    def _result(self, job: Job, run: Run, outcomes: list[ItemOutcome]) -> list[Action]:
        self._release(job, run)
        return job.dispatcher.on_result(self._now(), run.task_id, run.attempt, outcomes, run.peer)

    def _task_body(self, job: Job, run: Run, items: list[Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "job": job.job_id,
            "task": run.task_id,
            "attempt": run.attempt,
            "coordinator": self.self_address,
            **job.work.to_json(),
            "items": items,
            "timeout_s": job.dispatcher.options.timeout_s,
        }
        if job.work.bundle is not None:
            body["sources"] = self.holders(job.work.bundle, exclude=run.peer)
        return body

    # --- running here -----------------------------------------------------------------------

    async def run_local(
        self,
        work: Work,
        items: list[Any],
        timeout_s: float | None,
        sources: Sequence[str] = (),
    ) -> list[ItemOutcome]:
        """Run items on this peer's own executors (fetching the bundle first if need be)."""
        if work.kind is Kind.BUNDLE:
            assert work.bundle is not None
            await self.ensure_bundle(work.bundle, sources)
            pool = cast(BundleExecutor | None, getattr(self._peer, "pool", None))
            if pool is None:
                raise NotFound("this peer runs no worker pool")
            # Shielded: an abandoned attempt stops being waited for, but the pool is left to
            # finish what it already took (it may be starting workers, which must not be cut
            # short); its results are dropped.
            inner = asyncio.ensure_future(pool.run_batch(work.bundle, items, timeout_s=timeout_s))
            inner.add_done_callback(_consume)
            return await asyncio.shield(inner)
        runner = cast(SnippetExecutor | None, getattr(self._peer, "snippets", None))
        if runner is None:
            raise NotFound("this peer runs no snippets")
        return await runner.run_batch(
            items, source=work.snippet, sha1=work.snippet_sha1, timeout_s=timeout_s
        )

    async def ensure_bundle(self, sha1: str, sources: Sequence[str]) -> None:
        store = getattr(self._peer, "store", None)
        if store is None or store.has(sha1):
            return
        candidates = [a for a in sources if a != self.self_address] or self.holders(
            sha1, exclude=self.self_address
        )
        if not candidates:
            raise NotFound(f"bundle {sha1} is not here and no peer is known to hold it")
        await store.fetch(sha1, [Address.parse(a) for a in candidates])

    async def serve_task(self, work: Work, body: dict[str, Any]) -> list[ItemOutcome]:
        """Run an attempt another coordinator placed here (``POST /tasks``)."""
        if self.stats.tasks_serving >= self.settings.tasks_served_max:
            self.stats.rejected_overloaded += 1
            raise Overloaded(
                f"{self.stats.tasks_serving} tasks running here",
                retry_after_s=self.settings.retry_after_s,
            )
        job_id, task_id = str(body["job"]), str(body["task"])
        timeout = body.get("timeout_s")
        sources = [str(s) for s in body.get("sources") or []]
        coordinator = body.get("coordinator")
        if isinstance(coordinator, str) and coordinator not in sources:
            sources.append(coordinator)
        current = asyncio.current_task()
        assert current is not None
        self._served.setdefault(job_id, {})[task_id] = current
        self.stats.tasks_served += 1
        self.stats.tasks_serving += 1
        try:
            return await self.run_local(
                work, list(body["items"]), float(timeout) if timeout else None, sources
            )
        finally:
            self.stats.tasks_serving -= 1
            tasks = self._served.get(job_id, {})
            if tasks.get(task_id) is current:
                del tasks[task_id]
            if not tasks:
                self._served.pop(job_id, None)

    def abandon_served(self, job_id: str, task_id: str | None = None) -> int:
        """Stop attempts of a job running here for another coordinator; how many were stopped."""
        tasks = self._served.get(job_id, {})
        chosen = [t for k, t in tasks.items() if task_id is None or k == task_id]
        for task in chosen:
            task.cancel()
        return len(chosen)

    def serving(self) -> dict[str, list[str]]:
        return {job: sorted(tasks) for job, tasks in self._served.items() if tasks}


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an orphaned attempt's outcome so that its failure is not reported as lost."""
    if not future.cancelled():
        future.exception()
