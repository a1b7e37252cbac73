"""The client's job calls: ``map``, ``submit``, ``stream``, ``send``, ``job``, ``cancel``.

What runs is named by ``work``: a bundle's SHA-1 (40 hex digits), snippet source text (anything
else), a ``Snippet``/``BundleRef``, or a plain Python function whose source is shipped as a snippet.
Each call carries an ``Idempotency-Key``, so when the coordinating peer dies the transport's
failover resends the same job to the next peer without starting it twice there. Item errors come
back as the same exception classes the peer raised (``TaskFailed`` and its subclasses).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..errors import DisruptorError, JobCancelled, PeerUnreachable
from ..outcome import ItemOutcome
from .transport import Transport

NDJSON = "application/x-ndjson"
STREAM_RESUBMITS_MAX = 5
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BundleRef:
    """A bundle by SHA-1: its handler (``bundle.toml`` ``[worker]``) receives each item."""

    sha1: str


@dataclass(frozen=True)
class Snippet:
    """Snippet source defining ``handle(item)`` (and/or ``reduce``/``combine``)."""

    source: str


Work = str | BundleRef | Snippet | Callable[..., Any]


def work_body(work: Work) -> dict[str, Any]:
    """The job fields that name ``work``."""
    if isinstance(work, BundleRef):
        return {"bundle": work.sha1}
    if isinstance(work, Snippet):
        return {"snippet": work.source}
    if isinstance(work, str):
        if len(work) == 40 and set(work) <= _HEX:
            return {"bundle": work}
        return {"snippet": work}
    if callable(work):
        return {"snippet": snippet_source(work)}
    raise TypeError(f"cannot run {work!r}: give a bundle SHA-1, snippet source or a function")


def snippet_source(fn: Callable[..., Any]) -> str:
    """A self-contained function's own source, as a snippet whose ``handle`` calls it.

    Only the function travels: it must not use globals of its module (other than what a snippet
    may import itself) and must keep to what the snippet sandbox allows.
    """
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise TypeError(f"cannot ship {fn!r} as a snippet: its source is unavailable") from exc
    name = getattr(fn, "__name__", "")
    if not name.isidentifier():
        raise TypeError("only a named, module-level function can be shipped as a snippet")
    if name == "handle":
        return source
    return f"{source}\n\ndef handle(item):\n    return {name}(item)\n"


def job_body(work: Work, items: Iterable[Any], options: dict[str, Any]) -> dict[str, Any]:
    body = {**work_body(work), "items": list(items)}
    for key, value in options.items():
        if value is not None:
            body[key] = value
    return body


def values_or_raise(results: list[Any]) -> list[Any]:
    """Item values in order; the first failed item's error raised as the peer's exception."""
    values = []
    for index, raw in enumerate(results):
        if raw is None:
            raise DisruptorError(f"item {index} has no result (the job was stopped)")
        outcome = ItemOutcome.from_json(raw)
        if outcome.error is not None:
            raise outcome.error.to_exception()
        values.append(outcome.value)
    return values


class JobsMixin(Transport):
    async def run_job(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Submit a job and wait: the peer's whole answer (``id``, ``state``, ``results``...)."""
        body = job_body(work, items, options)
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        answer: dict[str, Any] = await self.request_json(
            "POST", "/jobs", json_body=body, headers=headers
        )
        return answer

    async def map(self, work: Work, items: Iterable[Any], **options: Any) -> list[Any]:
        """Every item's value, in order (an item's error is raised as the peer's exception).

        With ``reduce=SOURCE`` the folded value is returned instead of the list.
        """
        answer = await self.run_job(work, items, **options)
        if answer.get("state") == "cancelled":
            raise JobCancelled(f"job {answer.get('id')} was cancelled")
        if "reduce_error" in answer:
            error = answer["reduce_error"]
            raise DisruptorError.registry.get(str(error.get("kind")), DisruptorError)(
                str(error.get("message", ""))
            )
        if "reduced" in answer:
            return answer["reduced"]  # type: ignore[no-any-return]
        if options.get("policy") == "broadcast":
            return list(answer["results"])
        return values_or_raise(answer["results"])

    async def send(self, work: Work, item: Any, **options: Any) -> Any:
        """One item's value."""
        return (await self.map(work, [item], **options))[0]

    async def outcomes(self, work: Work, items: Iterable[Any], **options: Any) -> list[ItemOutcome]:
        """Every item's ``ItemOutcome`` (value or error, and where it ran), in order."""
        answer = await self.run_job(work, items, **options)
        if answer.get("state") == "cancelled":
            raise JobCancelled(f"job {answer.get('id')} was cancelled")
        return [
            ItemOutcome.from_json(raw)
            if raw is not None
            else ItemOutcome.failure(JobCancelled.slug, "JobCancelled", "the job was stopped")
            for raw in answer["results"]
        ]

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
        """``(index, ItemOutcome)`` as items complete (NDJSON), each index exactly once."""
        body = json.dumps(job_body(work, items, options)).encode()
        headers = {
            "Idempotency-Key": uuid.uuid4().hex,
            "Accept": NDJSON,
            "Content-Type": "application/json",
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
                        index = int(row.pop("index"))
                        if index not in seen:
                            seen.add(index)
                            yield index, ItemOutcome.from_json(row)
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
        body = job_body(work, items, {**options, "wait": False})
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        answer = await self.request_json("POST", "/jobs", json_body=body, headers=headers)
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
