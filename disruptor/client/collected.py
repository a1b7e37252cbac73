"""A streamed job's results as they arrive: each item kept once, progress, waits by item.

The peer sends a job's results piece by piece (``{start, count | indexes, values, errors, peer}``,
one per task it finished); the client's event loop thread hands each piece to ``Collected.add``
and any thread reads: ``progress``, ``wait``, ``wait_for`` one item (what ``Executor.map`` does to
yield in order), ``values``, ``outcomes``. Rules: the first result for an item is the one kept (a
job resubmitted to another peer after failover sends its pieces again), so each index is reported
once; memory is one slot per item of the job, nothing more; listeners are called on the loop
thread, outside the lock, with the indexes that were new.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DisruptorError, JobCancelled, ProtocolError
from ..outcome import ErrorInfo, ItemOutcome

# Called with the item indexes a piece added (an empty list when the job ends).
Listener = Callable[[Sequence[int]], None]


@dataclass(frozen=True)
class Progress:
    """How far a job has come: items with a result (``failed`` of them errors), of ``total``."""

    done: int
    total: int
    failed: int = 0

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def __str__(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done}/{self.total} items{failed}"


def piece_indexes(piece: Mapping[str, Any]) -> Sequence[int]:
    """The items a piece (or an answer's ``chunks`` run) is about."""
    if "start" in piece:
        start = int(piece["start"])
        return range(start, start + int(piece["count"]))
    return [int(i) for i in piece.get("indexes", ())]


class Collected:
    def __init__(self, total: int) -> None:
        self.total = total
        self._values: list[Any] = [None] * total
        self._have = bytearray(total)
        self._peers: list[str | None] = [None] * total
        self._errors: dict[int, ErrorInfo] = {}
        self._done = 0
        self._condition = threading.Condition()
        self._listeners: list[Listener] = []
        self._finished = False
        self._answer: Mapping[str, Any] = {}
        self._error: BaseException | None = None
        self.job_id: str | None = None

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- fed by the event loop thread -------------------------------------------------------

    def started(self, job_id: str) -> None:
        self.job_id = job_id

    def add(self, piece: Mapping[str, Any]) -> None:
        """Keep a piece's results for the items that had none yet."""
        indexes = piece_indexes(piece)
        values = piece.get("values")
        if not isinstance(values, list) or len(values) != len(indexes):
            raise ProtocolError("a piece of results does not hold one value per item")
        if indexes and (min(indexes) < 0 or max(indexes) >= self.total):
            raise ProtocolError(f"a piece of results names items outside 0..{self.total - 1}")
        peer = piece.get("peer")
        failed = {int(e["index"]): e for e in piece.get("errors") or ()}
        with self._condition:
            new: Sequence[int]
            if isinstance(indexes, range) and not self._have[indexes.start : indexes.stop].count(1):
                # The usual case, every item new: whole slices, no object per item.
                self._values[indexes.start : indexes.stop] = values
                self._have[indexes.start : indexes.stop] = b"\x01" * len(indexes)
                self._peers[indexes.start : indexes.stop] = [peer] * len(indexes)
                new = indexes
            else:
                fresh = []
                for index, value in zip(indexes, values, strict=True):
                    if not self._have[index]:
                        self._have[index] = 1
                        self._values[index] = value
                        self._peers[index] = peer
                        fresh.append(index)
                new = fresh
            if failed:
                for index in new:
                    entry = failed.get(index)
                    if entry is not None:
                        self._errors[index] = ErrorInfo.from_json(dict(entry))
            self._done += len(new)
            self._condition.notify_all()
        if new:
            self._tell(new)

    def finish(self, answer: Mapping[str, Any]) -> None:
        """The job's last answer (its state and progress; the results came as pieces)."""
        with self._condition:
            self._answer = answer
            self.job_id = str(answer.get("id", self.job_id))
            self._finished = True
            self._condition.notify_all()
        self._tell([])

    def fail(self, error: BaseException) -> None:
        """The job could not be run to its end (no peer answered, it was cancelled...)."""
        with self._condition:
            if self._finished:
                return
            self._error = error
            self._finished = True
            self._condition.notify_all()
        self._tell([])

    def _tell(self, indexes: Sequence[int]) -> None:
        for listener in self._listeners:
            listener(indexes)

    # --- read from any thread ---------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def state(self) -> str:
        """``running``, then the peer's last word (``completed``, ``failed``, ``cancelled``), or
        ``cancelled``/``broken`` when the client stopped it or lost it."""
        with self._condition:
            if not self._finished:
                return "running"
            if self._error is not None:
                return "cancelled" if isinstance(self._error, JobCancelled) else "broken"
            return str(self._answer.get("state", "completed"))

    @property
    def progress(self) -> Progress:
        with self._condition:
            return Progress(self._done, self.total, len(self._errors))

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the job to end; whether it did within ``timeout_s``."""
        with self._condition:
            return self._condition.wait_for(lambda: self._finished, timeout_s)

    def wait_for(self, index: int, timeout_s: float | None = None) -> bool:
        """Wait until item ``index`` has its result or the job has ended; whether it happened
        within ``timeout_s``."""
        with self._condition:
            return self._condition.wait_for(
                lambda: bool(self._have[index]) or self._finished, timeout_s
            )

    def item(self, index: int) -> Any:
        """Item ``index``'s value; its error raised as the peer's exception; the job's own
        failure raised when the item has no result."""
        with self._condition:
            if not self._have[index]:
                raise self._failure()
            error = self._errors.get(index)
            value = self._values[index]
        if error is not None:
            raise error.to_exception()
        return value

    def outcome(self, index: int) -> ItemOutcome:
        with self._condition:
            if not self._have[index]:
                return ItemOutcome.failure(JobCancelled.slug, "JobCancelled", "the job was stopped")
            error = self._errors.get(index)
            if error is not None:
                return ItemOutcome(error=error, peer=self._peers[index])
            return ItemOutcome(value=self._values[index], peer=self._peers[index])

    def values(self) -> list[Any]:
        """Every item's value, in order, once the job has ended (as ``map`` answers)."""
        with self._condition:
            self.raise_if_stopped()
            if self._errors:
                first = self._errors[min(self._errors)]
            elif self._done < self.total:
                raise self._failure()
            else:
                return list(self._values)
        raise first.to_exception()

    def outcomes(self) -> list[ItemOutcome]:
        """Every item's outcome in order; items with no result report ``job-cancelled``."""
        with self._condition:
            self.raise_if_stopped()
            return [self.outcome(index) for index in range(self.total)]

    def raise_if_stopped(self) -> None:
        """Once ended: raise why the job could not finish (cancelled, no peer answered)."""
        with self._condition:
            if self._error is not None:
                raise self._error
            if self._answer.get("state") == "cancelled":
                raise self._failure()

    def _failure(self) -> BaseException:
        if self._error is not None:
            return self._error
        if not self._finished:
            return DisruptorError(f"job {self.job_id} is still running")
        if self._answer.get("state") == "cancelled":
            return JobCancelled(f"job {self.job_id} was cancelled")
        return DisruptorError(f"job {self.job_id} stopped before every item had a result")
