"""The plan of one job, as a sans-IO state machine: ``(now, event) -> actions``.

The dispatcher splits the items into tasks, places them on peers by the job's policy, and reacts
to what the coordinator reports: a task's results, an attempt that failed (``AttemptFailure``: the
peer unreachable, busy, the work refused...), the live peers with their load, the clock reaching
``next_wakeup()`` (an attempt's deadline, a back-off's end), a cancel. It answers with actions for
the coordinator to carry out (``Run``, ``Abandon``, ``Finished``) and ``Delivered`` pieces of
results for streaming. Results come as ``ChunkResult``s, one per attempt: the dispatcher looks
only at their sparse errors, never at their values. Every decision about a job is made here,
broadcast and back-off included; the coordinator only translates. Rules it keeps:

- every item gets exactly one result (``ResultTable``; ``PeerResults`` for broadcast), however
  many attempts ran it;
- a lost attempt is placed again, avoiding the peer that lost it, at most ``PLACEMENTS_MAX`` times;
  then its items fail with ``peer-unreachable`` — so a job always finishes;
- at most ``window`` attempts are out at once, so a huge job does not flood the peers;
- items whose worker crashed or timed out run again in smaller tasks until each is alone, then
  up to ``retries`` times (an innocent item of a task a poisonous one crashed gets its result);
- no task is placed on a peer missing from the last live set, or held down as unreachable.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ..chunks import ChunkResult
from ..errors import PeerUnreachable, TaskTimeout, WorkerCrashed
from ..outcome import ErrorInfo
from .faults import AttemptFailure, FailureKind, HoldDown
from .model import JobOptions, JobState, Task, TaskState, task_id_for
from .policies import BROADCAST, PeerView, PolicySet, pick_peers
from .results import PeerResults, Piece, Progress, ResultTable

# A task lost this many times with its peers gives up (its items report peer-unreachable).
PLACEMENTS_MAX = 6
# Automatic chunking: about this many tasks per peer, each of at most CHUNK_MAX items...
TASKS_PER_PEER = 4
CHUNK_MAX = 1000
# ...and at least this many tasks per job: each task's results arrive as one piece, so a job's
# progress (the dashboard's, the client's bar) moves in steps of at most 1/32 of it, not a quarter.
TASKS_PER_JOB_MIN = 32
# Attempts out at once per live peer, per job.
WINDOW_PER_PEER = 4
# Tasks grow toward this much work each once the job's first results say how long an item takes
# (unless the job fixed ``chunk_size``): tiny items then travel in a few large tasks instead of a
# thousand small ones, while slow items stay in small tasks that spread and report progress.
TASK_TARGET_S = 0.25
# ...never past these: items, encoded bytes (half a worker frame), or 1/TASKS_PER_JOB_MIN of
# the job (its progress still moves in small steps).
TASK_ITEMS_MAX = 100_000
TASK_BYTES_MAX = 8 * 1024 * 1024
# Added to an attempt's deadline (items x per-item timeout) for the trip there and back.
ATTEMPT_GRACE_S = 5.0
RETRYABLE_KINDS = frozenset({WorkerCrashed.slug, TaskTimeout.slug})
# Items of a crashed task run again one per task when this few, else in this many parts.
SPLIT_ALONE_MAX = 64
SPLIT_PARTS = 16


@dataclass(frozen=True)
class Run:
    task_id: str
    attempt: int
    peer: str
    indexes: Sequence[int]


@dataclass(frozen=True)
class Abandon:
    """Tell ``peer`` to stop an attempt whose results are no longer wanted."""

    task_id: str
    attempt: int
    peer: str


@dataclass(frozen=True)
class Delivered:
    pieces: list[Piece]


@dataclass(frozen=True)
class Finished:
    state: JobState


Action = Run | Abandon | Delivered | Finished


def _split(indexes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Items to run again, in smaller tasks: one each when few, else ``SPLIT_PARTS`` parts."""
    if len(indexes) <= SPLIT_ALONE_MAX:
        return [(index,) for index in indexes]
    size = -(-len(indexes) // SPLIT_PARTS)
    return [indexes[start : start + size] for start in range(0, len(indexes), size)]


def chunk_size_for(total: int, peers: int) -> int:
    tasks = max(TASKS_PER_JOB_MIN, peers * TASKS_PER_PEER)
    return max(1, min(CHUNK_MAX, math.ceil(total / tasks)))


class Dispatcher:
    def __init__(
        self,
        job_id: str,
        total: int,
        options: JobOptions,
        rng: random.Random,
        *,
        self_address: str | None = None,
        policies: PolicySet | None = None,
        hold_down: HoldDown | None = None,
    ) -> None:
        self.job_id = job_id
        self.options = options
        self.rng = rng
        self.self_address = self_address
        self.broadcast = options.policy == BROADCAST
        # Shared with the peer's other jobs (so are the held-down peers), or this job's own.
        self.policy = None if self.broadcast else (policies or PolicySet()).get(options.policy)
        self.hold_down = hold_down or HoldDown()
        self.state = JobState.RUNNING
        self.tasks: dict[str, Task] = {}
        self.results = ResultTable(total)
        self.peer_results = PeerResults([])  # broadcast: one result per peer
        self.total = total
        self.replaced = 0  # attempts placed again because their peer was lost
        self.retried = 0  # items run again because their worker crashed or timed out
        self._pending: deque[str] = deque()
        self._peers: dict[str, PeerView] = {}
        self._allowed: set[str] | None = None
        self._item_tries: dict[int, int] = {}
        # Chunks not yet made into tasks (item count, encoded bytes), from ``_fresh_start`` on;
        # tasks are cut from them as slots open, sized by ``_item_s``.
        self._fresh: deque[tuple[int, int]] = deque()
        self._fresh_start = 0
        self._item_s: float | None = None  # seconds per item, from the attempts answered so far
        self._numbers = 0
        self._own_in_flight: dict[str, int] = {}
        # (when, number, task id): attempt deadlines and back-off ends, stale ones skipped lazily.
        self._timers: list[tuple[float, int, str]] = []
        self._timer_numbers = 0

    # --- events -----------------------------------------------------------------------------

    def start(
        self,
        now: float,
        peers: Sequence[PeerView],
        sizes: Sequence[int] | None = None,
        sizes_bytes: Sequence[int] | None = None,
    ) -> list[Action]:
        """Start the job: its items come in chunks of ``sizes`` items in turn (``sizes_bytes``
        encoded bytes each, when known), else of ``task_size``; tasks are cut from them along
        their edges as slots open (a task is one chunk, or several once items prove quick) and
        the first ones are placed."""
        self._set_peers(now, peers)
        live = list(self._peers.values())
        if self.options.peer_list:
            self._allowed = set(self.options.peer_list)
        elif self.options.peer_count is not None:
            chosen = pick_peers(live, self.options.peer_count, self.rng, self.self_address)
            self._allowed = {p.address for p in chosen}
        candidates = self._candidates()
        if self.broadcast:
            # One task per peer, each the whole item list; its one result is that peer's list.
            self.peer_results = PeerResults(sorted(p.address for p in candidates))
            for peer in self.peer_results.peers:
                self._new_task(range(self.total)).pinned = peer
        else:
            if sizes is None:
                size = self.task_size(len(candidates))
                sizes = [min(size, self.total - s) for s in range(0, self.total, size)]
            if sum(sizes) != self.total:
                raise ValueError(f"task sizes add up to {sum(sizes)}, not {self.total} items")
            weights = sizes_bytes if sizes_bytes is not None else [0] * len(sizes)
            self._fresh.extend(zip(sizes, weights, strict=True))
        return self._pump(now) + self._check_finished()

    def on_peers(self, now: float, peers: Sequence[PeerView]) -> list[Action]:
        """The live peer set (with fresh load figures); attempts on peers now gone are re-placed."""
        self._set_peers(now, peers)
        actions: list[Action] = []
        for task in self.tasks.values():
            if task.state is TaskState.RUNNING and task.peer not in self._peers:
                actions += self._lose(now, task, abandon=False)
        return actions + self._pump(now) + self._check_finished()

    def on_result(
        self, now: float, task_id: str, attempt: int, result: ChunkResult, peer: str
    ) -> list[Action]:
        """An attempt's results: one per item of its task (for broadcast: of the whole job)."""
        task = self.tasks.get(task_id)
        if task is None or self.state.finished or task.state is TaskState.DONE:
            return []  # a duplicate, or too late: the item already has its one result
        actions: list[Action] = []
        if task.state is TaskState.RUNNING:
            self._release(task)
            if task.attempt != attempt and task.peer is not None:
                # An earlier attempt answered after all: the later one is no longer needed.
                actions.append(Abandon(task.task_id, task.attempt, task.peer))
        if task.state is TaskState.RUNNING and task.attempt == attempt and task.indexes:
            self._learn(now - task.placed_at, len(task.indexes))
        task.state = TaskState.DONE
        task.deadline = None
        if result.peer is None:
            result = result.with_peer(peer)
        if self.broadcast:
            piece = self.peer_results.offer(task.pinned or peer, result)
            delivered: list[Action] = [Delivered([piece])] if piece is not None else []
            return [*actions, *delivered, *self._pump(now), *self._check_finished()]
        indexes: Sequence[int] = task.indexes
        again = self._to_run_again(indexes, result)
        if again:
            # Crashed or timed-out items run again; the others' results stand.
            retry = tuple(indexes[offset] for offset in again)
            skip = set(again)
            keep = [offset for offset in range(result.count) if offset not in skip]
            indexes, result = tuple(indexes[offset] for offset in keep), result.take(keep)
            self.retried += len(retry)
            for part in _split(retry):
                self._new_task(part)
        piece = self.results.offer(indexes, result)
        if piece is not None:
            actions.append(Delivered([piece]))
            if self.options.fail_fast and piece.result.failures:
                return actions + self._stop(JobState.FAILED)
        return actions + self._pump(now) + self._check_finished()

    def on_attempt_failed(
        self, now: float, task_id: str, attempt: int, failure: AttemptFailure
    ) -> list[Action]:
        """An attempt could not run; what happens next depends on the kind (``faults.py``)."""
        task = self.tasks.get(task_id)
        if task is None or task.state is not TaskState.RUNNING or task.attempt != attempt:
            return []
        if failure.kind is FailureKind.REFUSED and failure.error is not None:
            # The work itself was refused: every peer would say the same.
            count = self.total if self.broadcast else len(task.indexes)
            refused = ChunkResult.failed(count, failure.error)
            return self.on_result(now, task_id, attempt, refused, task.peer or "")
        if failure.kind is FailureKind.BUSY and failure.retry_after_s is not None:
            # Not the peer's fault: back off and place again without counting a loss.
            self._release(task)
            task.state = TaskState.PENDING
            task.not_before = now + failure.retry_after_s
            self._add_timer(task.not_before, task)
            self._pending.append(task.task_id)
            return self._pump(now)
        if failure.kind is FailureKind.UNREACHABLE and task.peer not in (None, self.self_address):
            assert task.peer is not None
            self.hold_down.hold(task.peer, now)
            self._peers.pop(task.peer, None)
        return self._lose(now, task, abandon=False) + self._pump(now) + self._check_finished()

    def on_tick(self, now: float) -> list[Action]:
        """The clock reached ``next_wakeup()``: re-place attempts past their deadline, place tasks
        whose back-off has passed."""
        actions: list[Action] = []
        while self._timers and self._timers[0][0] <= now:
            when, _, task_id = heapq.heappop(self._timers)
            task = self.tasks[task_id]
            if task.state is TaskState.RUNNING and task.deadline == when:
                actions += self._lose(now, task, abandon=True)
        return actions + self._pump(now) + self._check_finished()

    def cancel(self, now: float) -> list[Action]:
        if self.state.finished:
            return []
        return self._stop(JobState.CANCELLED)

    # --- queries ----------------------------------------------------------------------------

    @property
    def progress(self) -> Progress:
        return self.peer_results.progress if self.broadcast else self.results.progress

    def task_size(self, peers: int) -> int:
        """Items per task when the job does not say: about ``TASKS_PER_PEER`` tasks per peer and
        at least ``TASKS_PER_JOB_MIN`` in all, at most ``CHUNK_MAX`` items each."""
        return self.options.chunk_size or chunk_size_for(self.total, max(1, peers))

    @property
    def in_flight(self) -> dict[str, int]:
        return {p: n for p, n in self._own_in_flight.items() if n}

    def next_wakeup(self) -> float | None:
        """The earliest time ``on_tick`` has something to do, if any (the coordinator's timer)."""
        if self.state.finished:
            return None
        while self._timers and not self._timer_due(*self._timers[0]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    # --- internals --------------------------------------------------------------------------

    def _to_run_again(self, indexes: Sequence[int], result: ChunkResult) -> list[int]:
        """Offsets of the items whose worker crashed or timed out that run again.

        A task of several items that crashed is cut smaller and its items run again without
        counting a try: one item that kills its worker takes the others of its task down with
        it, so splitting isolates it (in a few rounds: ``_split``) and the innocent items get
        their results. An item that crashed alone counts a try, up to ``retries``; with
        ``retries`` 0 nothing runs again.
        """
        if self.options.retries == 0:
            return []
        alone = len(indexes) == 1
        again = []
        for offset, error in result.errors:
            index = indexes[offset]
            if error.kind not in RETRYABLE_KINDS or self.results.has(index):
                continue
            if alone:
                if self._item_tries.get(index, 0) >= self.options.retries:
                    continue
                self._item_tries[index] = self._item_tries.get(index, 0) + 1
            again.append(offset)
        return again

    def _learn(self, took_s: float, items: int) -> None:
        """Fold one answered attempt into the estimate of time per item (a moving average)."""
        sample = max(0.0, took_s) / items
        self._item_s = sample if self._item_s is None else 0.7 * self._item_s + 0.3 * sample

    def _cut_fresh(self) -> Task:
        """The next task from the chunks not yet placed: one chunk, or as many whole chunks as
        ``TASK_TARGET_S`` of work once the time per item is known (fixed ``chunk_size``: one)."""
        count, size = self._fresh.popleft()
        if self._item_s is not None and self.options.chunk_size is None:
            target = TASK_TARGET_S / max(self._item_s, 1e-9)
            ceiling = min(TASK_ITEMS_MAX, max(count, self.total // TASKS_PER_JOB_MIN))
            while self._fresh and count < target:
                more, more_bytes = self._fresh[0]
                if count + more > ceiling or (size + more_bytes > TASK_BYTES_MAX and size):
                    break
                self._fresh.popleft()
                count, size = count + more, size + more_bytes
        task = self._make_task(range(self._fresh_start, self._fresh_start + count))
        self._fresh_start += count
        return task

    def _make_task(self, indexes: Sequence[int]) -> Task:
        task = Task(task_id_for(self.job_id, self._numbers), indexes)
        self._numbers += 1
        self.tasks[task.task_id] = task
        return task

    def _new_task(self, indexes: Sequence[int]) -> Task:
        """A task waiting for a slot (a broadcast's, or a retry of a few items)."""
        task = self._make_task(indexes)
        self._pending.append(task.task_id)
        return task

    def _set_peers(self, now: float, peers: Sequence[PeerView]) -> None:
        held = self.hold_down.held(now) - {self.self_address}
        self._peers = {p.address: p for p in peers if p.address not in held}

    def _add_timer(self, when: float, task: Task) -> None:
        self._timer_numbers += 1
        heapq.heappush(self._timers, (when, self._timer_numbers, task.task_id))

    def _timer_due(self, when: float, _number: int, task_id: str) -> bool:
        """Whether a timer still stands for something: its attempt's deadline or back-off end."""
        task = self.tasks[task_id]
        if task.state is TaskState.RUNNING:
            return task.deadline == when
        return task.state is TaskState.PENDING and task.not_before == when

    def _candidates(self) -> list[PeerView]:
        live = list(self._peers.values())
        if self._allowed is None:
            return live
        allowed = [p for p in live if p.address in self._allowed]
        if self.options.peer_list or len(allowed) >= len(self._allowed):
            return allowed
        # A chosen peer died: top the set back up from the other live peers.
        spare = [p for p in live if p.address not in self._allowed]
        extra = pick_peers(spare, len(self._allowed) - len(allowed), self.rng) if spare else []
        self._allowed = {p.address for p in allowed} | {p.address for p in extra}
        return allowed + extra

    def _window(self) -> int:
        return max(1, WINDOW_PER_PEER * max(1, len(self._candidates())))

    def _pump(self, now: float) -> list[Action]:
        if self.state.finished:
            return []
        actions: list[Action] = []
        waiting: deque[str] = deque()
        out = sum(self._own_in_flight.values())
        window = self._window()
        while (self._pending or self._fresh) and (self.broadcast or out < window):
            task = self.tasks[self._pending.popleft()] if self._pending else self._cut_fresh()
            if task.state is not TaskState.PENDING:
                continue
            if task.not_before > now:
                waiting.append(task.task_id)
                continue
            peer = self._place(task)
            if peer is None:
                actions += self._give_up(task, "no live peer to run it on")
                continue
            task.state = TaskState.RUNNING
            task.peer = peer
            task.attempt += 1
            task.placed_at = now
            task.deadline = self._deadline(now, task)
            if task.deadline is not None:
                self._add_timer(task.deadline, task)
            self._own_in_flight[peer] = self._own_in_flight.get(peer, 0) + 1
            out += 1
            actions.append(Run(task.task_id, task.attempt, peer, task.indexes))
        self._pending.extendleft(reversed(waiting))
        return actions

    def _place(self, task: Task) -> str | None:
        if task.pinned is not None:
            return task.pinned if task.pinned in self._peers else None
        candidates = self._candidates()
        fresh = [p for p in candidates if p.address not in task.avoid] or candidates
        if not fresh:
            return None
        views = [
            PeerView(
                p.address,
                p.load,
                p.in_flight + self._own_in_flight.get(p.address, 0),
                p.weight,
                # A job that names its peers asked for them: no preference for this one.
                p.local and self._allowed is None,
            )
            for p in fresh
        ]
        assert self.policy is not None
        return self.policy.choose(views, self.rng)

    def _deadline(self, now: float, task: Task) -> float | None:
        if self.options.timeout_s is None:
            return None
        items = 1 if self.broadcast else len(task.indexes)
        return now + self.options.timeout_s * items + ATTEMPT_GRACE_S

    def _release(self, task: Task) -> None:
        if task.peer is not None and self._own_in_flight.get(task.peer, 0) > 0:
            self._own_in_flight[task.peer] -= 1

    def _lose(self, now: float, task: Task, *, abandon: bool) -> list[Action]:
        """The attempt's peer is gone or too slow: place the task again, elsewhere if possible."""
        actions: list[Action] = []
        if abandon and task.peer is not None:
            actions.append(Abandon(task.task_id, task.attempt, task.peer))
        self._release(task)
        if task.peer is not None:
            task.avoid.add(task.peer)
        task.placements += 1
        task.state = TaskState.PENDING
        task.deadline = None
        if task.pinned is not None or task.placements >= PLACEMENTS_MAX:
            return actions + self._give_up(task, f"lost with {task.placements} peer(s)")
        self.replaced += 1
        self._pending.append(task.task_id)
        return actions

    def _give_up(self, task: Task, why: str) -> list[Action]:
        task.state = TaskState.DONE
        error = ErrorInfo(PeerUnreachable.slug, "PeerUnreachable", why)
        if self.broadcast:
            piece = self.peer_results.offer(
                task.pinned or "", ChunkResult.failed(self.total, error, task.pinned)
            )
        else:
            missing = self.results.missing(task.indexes)
            piece = self.results.offer(missing, ChunkResult.failed(len(missing), error))
        actions: list[Action] = [Delivered([piece])] if piece is not None else []
        if self.options.fail_fast and piece is not None:
            actions += self._stop(JobState.FAILED)
        return actions

    def _stop(self, state: JobState) -> list[Action]:
        actions: list[Action] = []
        for task in self.tasks.values():
            if task.state is TaskState.RUNNING and task.peer is not None:
                actions.append(Abandon(task.task_id, task.attempt, task.peer))
                self._release(task)
            if task.state is not TaskState.DONE:
                task.state = TaskState.CANCELLED
        self._pending.clear()
        self._fresh.clear()
        self.state = state
        return [*actions, Finished(state)]

    def _check_finished(self) -> list[Action]:
        done = self.peer_results.complete if self.broadcast else self.results.complete
        if self.state.finished or not done:
            return []
        self.state = JobState.COMPLETED
        return [Finished(JobState.COMPLETED)]
