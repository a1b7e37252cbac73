"""Jobs and tasks as plain data: their states, ids, progress, and the table of results.

A job's items are split into tasks (contiguous index ranges, or the failed indexes of a retry);
each try of a task on a peer is an *attempt*. Execution is at-least-once — a task lost with its
peer runs again elsewhere — so the rule this module keeps is on the other side: ``ResultTable``
accepts each item's result exactly once, whichever attempt delivers it first, and ignores the rest.
No IO, no clock: callers pass ``now``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..outcome import ItemOutcome


class JobState(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"  # every item has a result (values or per-item errors)
    FAILED = "failed"  # fail_fast stopped it at the first item error, or it could not be placed
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self is not JobState.RUNNING


class TaskState(enum.Enum):
    PENDING = "pending"  # waiting to be placed (first time, or again after a lost attempt)
    RUNNING = "running"  # an attempt is out on a peer
    DONE = "done"
    CANCELLED = "cancelled"


class Kind(enum.Enum):
    BUNDLE = "bundle"
    SNIPPET = "snippet"


@dataclass(frozen=True)
class Work:
    """What every task of a job runs: a bundle by SHA-1, or a snippet by source or SHA-1."""

    kind: Kind
    bundle: str | None = None
    snippet: str | None = None
    snippet_sha1: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.kind is Kind.BUNDLE:
            return {"bundle": self.bundle}
        if self.snippet is not None:
            return {"snippet": self.snippet}
        return {"snippet_sha1": self.snippet_sha1}


@dataclass(frozen=True)
class JobOptions:
    """How a job is run; the defaults are what ``POST /jobs`` uses when a field is absent."""

    policy: str = "least-loaded"
    # Items per task; None lets the dispatcher choose (about four tasks per peer, at most 1,000).
    chunk_size: int | None = None
    # Per item, handed to the executor; also bounds how long one attempt may stay out.
    timeout_s: float | None = None
    # How many times an item whose worker crashed or timed out is run again before its error is
    # reported.
    retries: int = 1
    fail_fast: bool = False
    # Restrict the job to this many peers (chosen least-loaded first), or to these addresses.
    peer_count: int | None = None
    peer_list: tuple[str, ...] = ()


@dataclass
class Task:
    task_id: str
    indexes: Sequence[int]  # a range for first placements; a tuple of indexes for item retries
    state: TaskState = TaskState.PENDING
    peer: str | None = None
    attempt: int = 0  # increments with every placement
    placements: int = 0  # how many times it was placed because a peer was lost (bounded)
    deadline: float | None = None
    not_before: float = 0.0  # a peer said Overloaded: do not place again before this
    avoid: set[str] = field(default_factory=set)  # peers that lost this task
    # Broadcast tasks belong to one peer for good: never placed elsewhere.
    pinned: str | None = None
    # When its current attempt was placed (for the dispatcher's estimate of time per item).
    placed_at: float = 0.0


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0  # items whose result is an error

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "done": self.done, "failed": self.failed}


class ResultTable:
    """One slot per item; the first result offered for an item wins, later ones are dropped.

    ``offer`` returns the indexes it accepted, so the caller delivers (streams) each once.
    """

    def __init__(self, total: int) -> None:
        self._slots: list[ItemOutcome | None] = [None] * total
        self.progress = Progress(total)

    def __len__(self) -> int:
        return len(self._slots)

    def has(self, index: int) -> bool:
        return self._slots[index] is not None

    def get(self, index: int) -> ItemOutcome | None:
        return self._slots[index]

    def offer(self, indexes: Sequence[int], outcomes: Sequence[ItemOutcome]) -> list[int]:
        if len(indexes) != len(outcomes):
            raise ValueError(f"{len(outcomes)} outcomes for {len(indexes)} items")
        accepted: list[int] = []
        for index, outcome in zip(indexes, outcomes, strict=True):
            if self._slots[index] is None:
                self._slots[index] = outcome
                accepted.append(index)
                self.progress.done += 1
                if not outcome.ok:
                    self.progress.failed += 1
        return accepted

    @property
    def complete(self) -> bool:
        return self.progress.done == self.progress.total

    def outcomes(self) -> list[ItemOutcome | None]:
        return list(self._slots)


def task_id_for(job_id: str, number: int) -> str:
    return f"{job_id}.{number}"
