"""One job as the coordinator holds it: its dispatcher, its items in chunks, waiters and timer.

The dispatcher decides; this object holds the items as the chunks they came in (or were cut into
once), hands each task its chunk, remembers the order in which results were delivered (for
streaming) and wakes whoever waits. Rule: everything here runs on the event loop thread, so a
dispatcher call and the bookkeeping after it are never interleaved with another event; the items
are let go when the job finishes (only results are kept).
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..chunks import Chunk, join_arrays
from ..errors import JobCancelled
from .dispatcher import Dispatcher
from .model import JobState, Work
from .results import Piece, Progress


@dataclass
class Job:
    job_id: str
    work: Work
    # The items, in chunks that follow one another; the first tasks are exactly these.
    segments: list[Chunk]
    dispatcher: Dispatcher
    created_s: float  # loop time (monotonic)
    idempotency_key: str | None = None
    reduce: str | None = None
    finished_s: float | None = None
    reduced: Any = None
    reduce_error: dict[str, Any] | None = None
    # Results in the order they were accepted (what a stream sends, in turn).
    delivered: list[Piece] = field(default_factory=list)
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
    # Where each segment starts (item index), for finding a task's items.
    starts: list[int] = field(default_factory=list)
    # The reading of the live peers its dispatcher last heard (``PeerDirectory.version``).
    peers_version: int = -1

    def __post_init__(self) -> None:
        position = 0
        self.starts = []
        for segment in self.segments:
            self.starts.append(position)
            position += segment.count

    @property
    def state(self) -> JobState:
        return self.dispatcher.state

    @property
    def broadcast(self) -> bool:
        return self.dispatcher.broadcast

    @property
    def progress(self) -> Progress:
        return self.dispatcher.progress

    def chunk_for(self, indexes: Sequence[int]) -> Chunk:
        """The items at ``indexes`` as one chunk: a segment as it is (the usual case), all of
        them joined (broadcast), or picked out of the segments (a retry of a few items)."""
        if isinstance(indexes, range) and indexes.step == 1 and indexes:
            chosen = self._whole_segments(indexes.start, indexes.stop)
            if chosen is not None:
                # Whole segments (one, several, or all of them): joined, never decoded.
                if len(chosen) == 1:
                    return chosen[0]
                return Chunk(len(indexes), join_arrays([s.data for s in chosen]))
        decoded: dict[int, list[Any]] = {}
        items = []
        for index in indexes:
            at = bisect.bisect_right(self.starts, index) - 1
            if at not in decoded:
                decoded[at] = self.segments[at].items()
            items.append(decoded[at][index - self.starts[at]])
        return Chunk.of(items)

    def _whole_segments(self, start: int, stop: int) -> list[Chunk] | None:
        """The segments that make up items ``start`` to ``stop`` exactly, if any do."""
        first = bisect.bisect_left(self.starts, start)
        if first == len(self.starts) or self.starts[first] != start:
            return None
        last = len(self.starts)
        if stop != self.starts[-1] + self.segments[-1].count:
            last = bisect.bisect_left(self.starts, stop)
            if last == len(self.starts) or self.starts[last] != stop:
                return None
        return self.segments[first:last]

    def release_items(self) -> None:
        """The job has finished: its items are no longer needed (its results are kept)."""
        self.segments = []
        self.starts = []

    def summary(self) -> dict[str, Any]:
        """State and progress without the results (for listings and the dashboard)."""
        body: dict[str, Any] = {
            "id": self.job_id,
            "state": self.state.value,
            "progress": self.progress.to_json(),
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

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def pieces_as_delivered(self) -> AsyncIterator[Piece]:
        """Each piece of results as it is accepted; ends when the job finishes."""
        cursor = 0
        while True:
            if cursor >= len(self.delivered) and not self.done.is_set():
                waiter = asyncio.get_running_loop().create_future()
                self.waiters.append(waiter)
                await waiter
            while cursor < len(self.delivered):
                cursor += 1
                yield self.delivered[cursor - 1]
            if self.done.is_set() and cursor >= len(self.delivered):
                return

    def raise_if_cancelled(self) -> None:
        if self.state is JobState.CANCELLED:
            raise JobCancelled(f"job {self.job_id} was cancelled")
