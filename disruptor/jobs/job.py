"""One job as the coordinator holds it: its dispatcher, items, waiters, timer and JSON form.

The dispatcher decides; this object only remembers the order in which results were delivered
(for streaming) and wakes whoever waits. Rule: everything here runs on the event loop thread, so
a dispatcher call and the bookkeeping after it are never interleaved with another event.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import JobCancelled
from ..outcome import ItemOutcome
from .dispatcher import Dispatcher
from .model import JobState, Work


@dataclass
class Job:
    job_id: str
    work: Work
    items: list[Any]
    dispatcher: Dispatcher
    created_s: float  # loop time (monotonic)
    idempotency_key: str | None = None
    reduce: str | None = None
    finished_s: float | None = None
    reduced: Any = None
    reduce_error: dict[str, Any] | None = None
    # Item indexes in the order their results were accepted (what a stream sends, in turn).
    delivered: list[int] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # Streams waiting for the next delivery; woken (all at once) by ``wake``.
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    # Attempts running now: (task id, attempt) -> (peer, the asyncio task carrying it).
    attempts: dict[tuple[str, int], tuple[str, asyncio.Task[None]]] = field(default_factory=dict)
    # The submitting request's context (its request id): every attempt runs in it, including
    # those its timer starts later, so calls to other peers carry the same id.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    # Armed at the dispatcher's next wakeup (a deadline, a back-off's end), if it has one.
    timer: asyncio.TimerHandle | None = None

    @property
    def state(self) -> JobState:
        return self.dispatcher.state

    @property
    def broadcast(self) -> bool:
        return self.dispatcher.broadcast

    def summary(self) -> dict[str, Any]:
        """State and progress without the results (for listings and the dashboard)."""
        body: dict[str, Any] = {
            "id": self.job_id,
            "state": self.state.value,
            "progress": self.dispatcher.results.progress.to_json(),
            "policy": self.dispatcher.options.policy,
            # Attempts placed again after their peer was lost; items rerun after a crash.
            "replaced": self.dispatcher.replaced,
            "retried": self.dispatcher.retried,
            **self.work.to_json(),
            "created": self.created_s,
        }
        if "snippet" in body:
            body["snippet"] = body["snippet"][:200]
        if self.finished_s is not None:
            body["finished"] = self.finished_s
            body["duration_s"] = round(self.finished_s - self.created_s, 6)
        return body

    def to_json(self, *, results: bool = True) -> dict[str, Any]:
        body = self.summary()
        if results:
            body["results"] = [
                None if o is None else self.outcome_json(o)
                for o in self.dispatcher.results.outcomes()
            ]
        if self.reduce is not None and self.state is JobState.COMPLETED:
            if self.reduce_error is not None:
                body["reduce_error"] = self.reduce_error
            else:
                body["reduced"] = self.reduced
        return body

    def outcome_json(self, outcome: ItemOutcome) -> dict[str, Any]:
        if self.broadcast:
            # One result per peer: the list of that peer's item outcomes, or its one error.
            if outcome.error is not None:
                return outcome.to_json()
            return {"peer": outcome.peer, "results": outcome.value}
        return outcome.to_json()

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def results_as_completed(self) -> AsyncIterator[tuple[int, ItemOutcome]]:
        """Each item's ``(index, outcome)`` as it is accepted; ends when the job finishes."""
        cursor = 0
        while True:
            if cursor >= len(self.delivered) and not self.done.is_set():
                waiter = asyncio.get_running_loop().create_future()
                self.waiters.append(waiter)
                await waiter
            while cursor < len(self.delivered):
                index = self.delivered[cursor]
                cursor += 1
                outcome = self.dispatcher.results.get(index)
                if outcome is not None:
                    yield index, outcome
            if self.done.is_set() and cursor >= len(self.delivered):
                return

    def raise_if_cancelled(self) -> None:
        if self.state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.job_id} was cancelled")
