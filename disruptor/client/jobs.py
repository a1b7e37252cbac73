"""The client's job calls: ``map``, ``submit``, ``stream``, ``send``, ``job``, ``cancel``.

What runs is named by ``work`` (``client/work.py``). Jobs travel as MessagePack: the items cut
into chunks once here, the values back as one array (``client/answers.py``). Each call carries an
``Idempotency-Key``, so when the coordinating peer dies the transport's failover resends the same
job to the next peer without starting it twice there. Item errors come back as the same
exception classes the peer raised (``TaskFailed`` and its subclasses).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp

from ..errors import JobCancelled, Overloaded, PeerUnreachable, Unavailable
from ..outcome import ItemOutcome
from .answers import (
    folded_or_raise,
    job_map,
    job_request,
    outcomes_of,
    piece_outcomes,
    values_or_raise,
)
from .job_stream import JobStream
from .transport import RETRY_AFTER_ATTEMPTS_MAX, RETRY_AFTER_S_MAX, Transport
from .work import BundleRef, Snippet, Work, snippet_source, work_body

NDJSON = "application/x-ndjson"
STREAM_RESUBMITS_MAX = 5

__all__ = ["BundleRef", "JobsMixin", "Snippet", "Work", "snippet_source", "work_body"]


class JobsMixin(Transport):
    async def run_job(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Submit a job and wait: the peer's whole answer (``id``, ``state``, ``values``...).

        It travels on the job stream of the current peer (``/jobs/stream``: a frame, not a
        request); when that peer cannot be reached the same job, under the same idempotency key,
        goes to the next peer given, and a peer that is busy is asked again after it says.
        """
        job = job_map(work, list(items), options)
        key = idempotency_key or self._new_key()
        last: Exception | None = None
        for _ in range(len(self.urls)):
            stream = self._job_stream(self.url)
            for attempt in range(RETRY_AFTER_ATTEMPTS_MAX + 1):
                try:
                    return await stream.run(job, key)
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
            keys = self.__dict__["_keys"] = (
                f"{secrets.token_hex(8)}-{n}" for n in itertools.count()
            )
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

    async def map(self, work: Work, items: Iterable[Any], **options: Any) -> Any:
        """Every item's value, in order (an item's error is raised as the peer's exception).

        With ``reduce=SOURCE`` the folded value is returned instead of the list; with
        ``policy="broadcast"``, one ``{"peer", "values", "errors"}`` per peer.
        """
        answer = await self.run_job(work, items, **options)
        if options.get("reduce") is not None:
            return folded_or_raise(answer)
        if options.get("policy") == "broadcast":
            return list(answer["peers"])
        return values_or_raise(answer)

    async def send(self, work: Work, item: Any, **options: Any) -> Any:
        """One item's value."""
        return (await self.map(work, [item], **options))[0]

    async def outcomes(self, work: Work, items: Iterable[Any], **options: Any) -> list[ItemOutcome]:
        """Every item's ``ItemOutcome`` (value or error, and where it ran), in order."""
        return outcomes_of(await self.run_job(work, items, **options))

    async def submit(
        self, work: Work, items: Iterable[Any], *, outcomes: bool = False, **options: Any
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
        pending = self.__dict__.setdefault("_submitted", set())
        pending.add(task)
        task.add_done_callback(pending.discard)
        return future

    async def stream(
        self, work: Work, items: Iterable[Any], *, return_exceptions: bool = False, **options: Any
    ) -> AsyncIterator[tuple[int, Any]]:
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
        self, work: Work, items: Iterable[Any], **options: Any
    ) -> AsyncIterator[tuple[int, ItemOutcome]]:
        """``(index, ItemOutcome)`` as pieces of the job complete, each index exactly once."""
        body = job_request(work, list(items), options)
        headers = {
            "Idempotency-Key": self._new_key(),
            "Accept": NDJSON,
            "Content-Type": "application/msgpack",
        }
        seen: set[int] = set()
        for _ in range(STREAM_RESUBMITS_MAX):
            try:
                response = await self.request("POST", "/jobs", data=body, headers=headers)
                async with response:
                    async for line in response.content:
                        if not line.strip():
                            continue
                        row = json.loads(line)
                        if row.get("done"):
                            if row.get("state") == "cancelled":
                                raise JobCancelled(f"job {row.get('id')} was cancelled")
                            return
                        for index, outcome in piece_outcomes(row):
                            if index not in seen:
                                seen.add(index)
                                yield index, outcome
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError):
                # The coordinator went away mid-stream: the same job, by its key, on the next
                # peer; items already yielded are skipped when they come again.
                self._current = (self._current + 1) % len(self.urls)
                continue
            raise PeerUnreachable("the stream ended before the job finished")
        raise PeerUnreachable(f"the job's stream broke {STREAM_RESUBMITS_MAX} times")

    async def job(self, job_id: str, *, results: bool = True) -> dict[str, Any]:
        """A job's state, progress and (unless ``results=False``) results."""
        params = {"results": "true" if results else "false"}
        answer: dict[str, Any] = await self.request_json(
            "GET", f"/jobs/{job_id}", params=params, failover=False
        )
        return answer

    async def start_job(self, work: Work, items: Iterable[Any], **options: Any) -> str:
        """Start a job without waiting (``wait=false``): its id, for ``job`` and ``cancel``."""
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
