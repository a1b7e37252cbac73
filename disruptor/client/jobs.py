"""The client's job calls: ``map``, ``outcomes``, ``start``, ``stream``, ``submit``, ``send``...

What runs is named by ``work`` (``client/work.py``), how it runs by ``**options``
(``client/options.py``). Jobs travel as MessagePack frames on the job stream of the current peer
(``client/job_stream.py``): the items cut into chunks once here, the values back as one array
(``client/answers.py``). A job that reports as it goes (``start``, ``stream``, ``progress=True``,
``Executor.map``) is sent with ``stream: true``: the peer sends each piece of results as it
accepts it, and a ``Collected`` keeps them (``client/collected.py``). Every job carries an
idempotency key, so when the coordinating peer dies the same job goes to the next peer without
starting twice there; its pieces come again, and each item is reported once. Item errors come
back as the same exception classes the peer raised (``TaskFailed`` and its subclasses).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import secrets
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any, Literal, Unpack, overload

from ..errors import JobCancelled, Overloaded, PeerUnreachable, Unavailable
from ..outcome import ItemOutcome
from .answers import folded_or_raise, job_map, job_request, outcomes_of, values_or_raise
from .collected import Collected, Listener
from .handles import AsyncJob, progress_bar
from .job_stream import JobStream
from .options import JobOptions
from .transport import RETRY_AFTER_ATTEMPTS_MAX, RETRY_AFTER_S_MAX, Transport
from .work import BundleRef, Snippet, Work, snippet_source, work_body

__all__ = ["BundleRef", "JobsMixin", "Snippet", "Work", "snippet_source", "work_body"]


class JobsMixin(Transport):
    async def run_job(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        idempotency_key: str | None = None,
        reduce: str | None = None,
        **options: Unpack[JobOptions],
    ) -> dict[str, Any]:
        """Submit a job and wait: the peer's whole answer (``id``, ``state``, ``values``...).

        It travels on the job stream of the current peer (``/jobs/stream``: a frame, not a
        request); when that peer cannot be reached the same job, under the same idempotency key,
        goes to the next peer given, and a peer that is busy is asked again after it says.
        """
        job = job_map(work, list(items), {**options, "reduce": reduce})
        return await self._run(job, idempotency_key or self._new_key())

    async def _run(
        self, job: dict[str, Any], key: str, collected: Collected | None = None
    ) -> dict[str, Any]:
        """Run ``job`` on the current peer's job stream, failing over as ``run_job`` says;
        pieces of results (a job with ``stream: true``) go to ``collected``."""
        on_piece = None if collected is None else collected.add
        on_started = None if collected is None else collected.started
        last: Exception | None = None
        for _ in range(len(self.urls)):
            stream = self._job_stream(self.url)
            for attempt in range(RETRY_AFTER_ATTEMPTS_MAX + 1):
                try:
                    return await stream.run(job, key, on_piece, on_started)
                except PeerUnreachable as exc:
                    last = exc
                    break
                except (Overloaded, Unavailable) as exc:
                    if attempt == RETRY_AFTER_ATTEMPTS_MAX:
                        raise
                    await asyncio.sleep(min(RETRY_AFTER_S_MAX, exc.retry_after_s))
            self._current = (self._current + 1) % len(self.urls)
        raise PeerUnreachable(f"no peer answered the job: {last}")

    def _new_key(self) -> str:
        """A fresh idempotency key: random per client, counted within it (no syscall per job)."""
        keys = self.__dict__.get("_keys")
        if keys is None:
            prefix = secrets.token_hex(8)
            keys = self.__dict__["_keys"] = (f"{prefix}-{n}" for n in itertools.count())
        return str(next(keys))

    def _job_stream(self, url: str) -> JobStream:
        streams: dict[str, JobStream] = self.__dict__.setdefault("_job_streams", {})
        stream = streams.get(url)
        if stream is None:
            stream = streams[url] = JobStream(self.session, url)
        return stream

    async def close(self) -> None:
        streams: dict[str, JobStream] = self.__dict__.pop("_job_streams", {})
        for stream in streams.values():
            await stream.close()
        await super().close()

    @overload
    async def map(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        reduce: str,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> Any: ...

    @overload
    async def map(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        reduce: None = None,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> list[Any]: ...

    async def map(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        reduce: str | None = None,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> Any:
        """Every item's value, in order (an item's error is raised as the peer's exception).

        With ``reduce=SOURCE`` the folded value is returned instead of the list; with
        ``policy="broadcast"``, one ``{"peer", "values", "errors"}`` per peer. ``progress=True``
        draws a progress bar (tqdm; a widget in a notebook) that moves as results arrive.
        """
        if progress:
            job = self._start(work, items, options, reduce=reduce, bar=True)
            answer = await job.answer()
            return folded_or_raise(answer) if reduce is not None else job.collected.values()
        answer = await self.run_job(work, items, reduce=reduce, **options)
        if reduce is not None:
            return folded_or_raise(answer)
        if options.get("policy") == "broadcast":
            return list(answer["peers"])
        return values_or_raise(answer)

    async def send(self, work: Work, item: Any, **options: Unpack[JobOptions]) -> Any:
        """One item's value."""
        return (await self.map(work, [item], **options))[0]

    async def outcomes(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> list[ItemOutcome]:
        """Every item's ``ItemOutcome`` (value or error, and where it ran), in order;
        ``progress=True`` draws a progress bar as ``map`` does."""
        if progress:
            job = self._start(work, items, options, bar=True)
            await job.wait()
            return job.collected.outcomes()
        return outcomes_of(await self.run_job(work, items, **options))

    async def start(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> AsyncJob:
        """Send a job and return at once: a handle whose ``progress`` moves as results arrive,
        to ``wait`` for, read (``result``, ``outcomes``) or ``cancel``. ``progress=True`` also
        draws a progress bar."""
        return self._start(work, items, options, bar=progress)

    def _start(
        self,
        work: Work,
        items: Iterable[Any],
        options: JobOptions,
        *,
        reduce: str | None = None,
        bar: bool = False,
        listener: Listener | None = None,
    ) -> AsyncJob:
        """Send a streamed job from this event loop; its pieces fill the handle's ``Collected``."""
        if options.get("policy") == "broadcast":
            raise ValueError("a broadcast job answers per peer at its end: it cannot stream")
        materialised = list(items)
        job = job_map(work, materialised, {**options, "reduce": reduce, "stream": True})
        collected = Collected(len(materialised))
        if bar:
            progress_bar(collected)
        if listener is not None:
            collected.listen(listener)
        task = asyncio.create_task(self._collect(job, self._new_key(), collected))
        running: set[asyncio.Task[Any]] = self.__dict__.setdefault("_submitted", set())
        running.add(task)
        task.add_done_callback(_forget(running))
        return AsyncJob(collected, task)

    async def _collect(self, job: dict[str, Any], key: str, collected: Collected) -> dict[str, Any]:
        try:
            answer = await self._run(job, key, collected)
        except asyncio.CancelledError:
            collected.fail(JobCancelled(f"job {collected.job_id} was cancelled"))
            raise
        except BaseException as exc:
            collected.fail(exc)
            raise
        collected.finish(answer)
        return answer

    @overload
    async def submit(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        outcomes: Literal[True],
        **options: Unpack[JobOptions],
    ) -> concurrent.futures.Future[list[ItemOutcome]]: ...

    @overload
    async def submit(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        outcomes: Literal[False] = False,
        **options: Unpack[JobOptions],
    ) -> concurrent.futures.Future[list[Any]]: ...

    async def submit(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        outcomes: bool = False,
        **options: Unpack[JobOptions],
    ) -> concurrent.futures.Future[Any]:
        """Start a job; its values (``outcomes=True``: its ``ItemOutcome`` list) arrive in the
        returned future, which is usable from any thread.

        Await it from asyncio code with ``asyncio.wrap_future(future)``.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        materialised = list(items)

        async def run() -> None:
            try:
                if outcomes:
                    result: Any = await self.outcomes(work, materialised, **options)
                else:
                    result = await self.map(work, materialised, **options)
                future.set_result(result)
            except BaseException as exc:  # the future carries whatever happened
                if not future.cancelled():
                    future.set_exception(exc)

        task = asyncio.create_task(run())
        future.add_done_callback(lambda f: task.cancel() if f.cancelled() else None)
        pending: set[asyncio.Task[Any]] = self.__dict__.setdefault("_submitted", set())
        pending.add(task)
        task.add_done_callback(pending.discard)
        return future

    async def stream(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        return_exceptions: bool = False,
        **options: Unpack[JobOptions],
    ) -> AsyncGenerator[tuple[int, Any], None]:
        """``(index, value)`` pairs as items complete, each exactly once, even across failover.

        An item's error is raised (or yielded as the exception with ``return_exceptions``).
        """
        async for index, outcome in self.stream_outcomes(work, items, **options):
            if outcome.error is None:
                yield index, outcome.value
            elif return_exceptions:
                yield index, outcome.error.to_exception()
            else:
                raise outcome.error.to_exception()

    async def stream_outcomes(
        self, work: Work, items: Iterable[Any], **options: Unpack[JobOptions]
    ) -> AsyncGenerator[tuple[int, ItemOutcome], None]:
        """``(index, ItemOutcome)`` as pieces of the job complete, each index exactly once.

        Stopping early (leaving the loop) cancels the job.
        """
        arrived: deque[int] = deque()  # at most one entry per item of the job
        woken = asyncio.Event()

        def on_new(indexes: Sequence[int]) -> None:
            arrived.extend(indexes)
            woken.set()

        job = self._start(work, items, options, listener=on_new)
        try:
            while True:
                while arrived:
                    index = arrived.popleft()
                    yield index, job.collected.outcome(index)
                if job.done():
                    break
                woken.clear()
                await woken.wait()
            job.collected.raise_if_stopped()
        finally:
            if not job.done():
                job.cancel_nowait()

    async def job(self, job_id: str, *, results: bool = True) -> dict[str, Any]:
        """A job's state, progress and (unless ``results=False``) results."""
        params = {"results": "true" if results else "false"}
        answer: dict[str, Any] = await self.request_json(
            "GET", f"/jobs/{job_id}", params=params, failover=False
        )
        return answer

    async def start_job(
        self, work: Work, items: Iterable[Any], **options: Unpack[JobOptions]
    ) -> str:
        """Start a job over HTTP without waiting (``wait=false``): its id, for ``job`` and
        ``cancel`` (``start`` gives a handle instead)."""
        body = job_request(work, list(items), {**options, "wait": False})
        headers = {"Idempotency-Key": self._new_key()}
        answer = await self.request_msgpack("POST", "/jobs", body, headers=headers)
        return str(answer["id"])

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job on every peer running part of it."""
        answer: dict[str, Any] = await self.request_json(
            "DELETE", f"/jobs/{job_id}", failover=False
        )
        return answer

    # --- workers across the cluster ---

    async def start_workers_on(
        self, bundle: str, peers: str | int | list[str] = "all", count: int | None = None
    ) -> dict[str, Any]:
        """Start warm workers on ``peers`` ("all", N, or addresses), deploying the bundle first
        where it is missing: ``{address: reply | {"error": problem}}``."""
        body: dict[str, Any] = {"bundle": bundle, "peers": peers}
        if count is not None:
            body["count"] = count
        reply = await self.request_json("POST", "/workers", json_body=body, failover=False)
        return dict(reply["peers"])

    async def stop_workers_on(
        self, bundle: str, peers: str | int | list[str] = "all"
    ) -> dict[str, Any]:
        """Drain, then stop, the bundle's workers on ``peers``."""
        scope = ",".join(peers) if isinstance(peers, list) else str(peers)
        reply = await self.request_json(
            "DELETE", f"/workers/{bundle}", params={"peers": scope}, failover=False
        )
        return dict(reply["peers"])

    async def cluster_workers(self) -> dict[str, Any]:
        """Every live peer's workers: ``{address: {"workers": [...], "failed": {...}}}``."""
        reply = await self.request_json("GET", "/workers", params={"scope": "cluster"})
        return dict(reply["peers"])


def _forget(running: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    """A done-callback: drop the task, and read its outcome so asyncio never reports it lost
    (the handle's ``Collected`` holds what happened)."""

    def done(task: asyncio.Task[Any]) -> None:
        running.discard(task)
        if not task.cancelled():
            task.exception()

    return done
