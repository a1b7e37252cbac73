"""A seeded simulation of jobs: the real dispatchers against a virtual cluster that misbehaves.

Several jobs run at once on one coordinator (``p0``, which never fails), sharing its policies and
its held-down peers, exactly as ``JobCoordinator`` drives them: before every event the
dispatcher is given the live peers as membership sees them, then the event, and its timer is
armed at ``next_wakeup()``. Around them, on a virtual clock, the cluster misbehaves: peers die
(membership notices a little later; until then calls to them are refused, reset or never
answered) and come back, attempts fail in every way ``faults.py`` knows, run slow past their
deadline, answer twice, or answer after they were abandoned; items crash their worker; the clock
jumps; jobs are cancelled.

After every step it checks the invariants: no item is delivered twice and each delivered item
has its result; no task is placed on a peer membership says is gone or that is held down; and in
the end every job has finished, with every item of a completed job delivered exactly once.

Rule: sans-IO and deterministic; one seed is one run, so a failure replays from its seed
(``JobSimulator(seed).run()``). Assumption, stated: a peer that dies stays down until membership
has noticed (a real peer that restarts breaks its old connections, which the coordinator sees).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..chunks import ChunkResult
from ..errors import WorkerCrashed
from ..outcome import ErrorInfo
from .dispatcher import Abandon, Action, Delivered, Dispatcher, Finished, Run
from .faults import AttemptFailure, FailureKind, HoldDown
from .model import JobOptions, JobState
from .policies import POLICY_NAMES, PeerView, PolicySet

SELF = "p0:1"
# Events one run may take, at most: far more than any seed needs to finish its jobs.
STEPS_MAX = 200_000


class InvariantBroken(AssertionError):
    """A rule of the job layer was broken; the message names the seed that replays it."""


@dataclass(frozen=True)
class Faults:
    """How often things go wrong; chances are per event unless said otherwise."""

    peer_death: float = 0.03  # a live peer (never this one) dies
    peer_return: float = 0.02  # a peer membership saw die comes back
    notice_s: tuple[float, float] = (0.2, 4.0)  # how long membership takes to notice a death
    silent: float = 0.3  # per attempt on a dying peer: it never answers (else reset, or late)
    late_after_death: float = 0.2  # ...or it still answers, late
    failure: float = 0.08  # per attempt: it fails (unreachable, busy, refused or lost)
    slow: float = 0.05  # per attempt: it answers long after its deadline
    duplicate: float = 0.05  # per answer: it arrives twice
    late_after_abandon: float = 0.3  # per abandoned attempt: its answer still arrives
    item_crash: float = 0.02  # per item: its worker crashes (retried alone)
    clock_jump: float = 0.005  # the clock jumps forward (a suspended machine)
    cancel: float = 0.001  # a running job is cancelled


@dataclass
class SimJob:
    dispatcher: Dispatcher
    # Items delivered, by index (for broadcast: the peers whose results were delivered).
    delivered: list[Any] = field(default_factory=list)
    timer_at: float | None = None

    @property
    def job_id(self) -> str:
        return self.dispatcher.job_id


@dataclass
class Attempt:
    job_id: str
    run: Run
    dropped: bool = False  # its answer will never be delivered
    released: bool = False  # no longer counted as out on its peer
    late: bool = False  # abandoned, or its peer died, and still it answers


@dataclass
class SimResult:
    seed: int
    steps: int = 0
    runs: int = 0
    answers: int = 0
    duplicates: int = 0
    late_answers: int = 0
    deaths: int = 0
    clock_jumps: int = 0
    states: dict[str, JobState] = field(default_factory=dict)


class JobSimulator:
    def __init__(
        self, seed: int, jobs: int = 4, peers: int = 6, faults: Faults | None = None
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not secrets
        self.faults = faults or Faults()
        self.now = 0.0
        self.peers = [f"p{i}:1" for i in range(peers)]
        self.alive = set(self.peers)
        self.view = set(self.peers)  # what membership says is live
        self.hold_down = HoldDown(hold_s=self.rng.choice((2.0, 10.0)))
        self.policies = PolicySet()
        self.jobs: dict[str, SimJob] = {}
        self.attempts: dict[tuple[str, str, int], Attempt] = {}
        self.out: dict[str, int] = {}
        self.result = SimResult(seed)
        self._events: list[tuple[float, int, str, Any]] = []
        self._numbers = 0
        self.job_count = jobs
        for number in range(jobs):
            self._schedule(self.rng.uniform(0.0, 5.0) if number else 0.0, "submit", number)

    # --- running ----------------------------------------------------------------------------

    def run(self, steps_max: int = STEPS_MAX) -> SimResult:
        while self._events and self.result.steps < steps_max:
            self.result.steps += 1
            self._chaos()
            when, _, kind, payload = heapq.heappop(self._events)
            self.now = max(self.now, when)  # after a jump, late events run at the new time
            if kind == "submit":
                self._on_submit(payload)
            elif kind == "answer":
                self._on_answer(payload)
            elif kind == "timer":
                self._on_timer(payload)
            else:
                self._on_notice(payload)
            self.check()
        unfinished = [j.job_id for j in self.jobs.values() if not j.dispatcher.state.finished]
        if unfinished or len(self.jobs) != self.job_count:
            self._broken(f"jobs never finished: {unfinished} after {self.result.steps} steps")
        for job in self.jobs.values():
            self.result.states[job.job_id] = job.dispatcher.state
            if job.dispatcher.state is JobState.COMPLETED:
                expected: list[Any] = list(range(job.dispatcher.total))
                if job.dispatcher.broadcast:
                    expected = sorted(job.dispatcher.peer_results.peers)
                if sorted(job.delivered) != expected:
                    self._broken(f"{job.job_id} completed without delivering every item once")
        return self.result

    def check(self) -> None:
        """The invariants that must hold after every step."""
        for job in self.jobs.values():
            if len(set(job.delivered)) != len(job.delivered):
                self._broken(f"{job.job_id} delivered an item twice")
            dispatcher = job.dispatcher
            has = (
                dispatcher.peer_results.has_peer if dispatcher.broadcast else dispatcher.results.has
            )
            if not all(has(key) for key in job.delivered):
                self._broken(f"{job.job_id} delivered an item without its result")

    def _broken(self, what: str) -> None:
        raise InvariantBroken(f"seed {self.seed} at t={self.now:.3f}: {what}")

    def _schedule(self, delay_s: float, kind: str, payload: Any) -> None:
        self._numbers += 1
        heapq.heappush(self._events, (self.now + delay_s, self._numbers, kind, payload))

    # --- the coordinator's side, as JobCoordinator does it ------------------------------------

    def _views(self, job: SimJob) -> list[PeerView]:
        own = job.dispatcher.in_flight
        live = sorted((self.view - self.hold_down.held(self.now)) | {SELF})
        return [
            PeerView(a, float(self.rng.randrange(4)), self.out.get(a, 0) - own.get(a, 0), 1.0)
            for a in live
        ]

    def _feed(self, job: SimJob, event: Callable[[float], list[Action]] | None = None) -> None:
        """Fresh live peers, then the event (a callable of ``now``); carry out what comes back.

        Each answer is carried out before the next call, so a placement is checked against what
        was known when it was made.
        """
        if not job.dispatcher.state.finished:
            self._apply(job, job.dispatcher.on_peers(self.now, self._views(job)))
        if event is not None:
            self._apply(job, event(self.now))

    def _apply(self, job: SimJob, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Run):
                self._place(job, action)
            elif isinstance(action, Abandon):
                attempt = self.attempts.get((job.job_id, action.task_id, action.attempt))
                if attempt is not None and not attempt.dropped:
                    self._release(attempt)
                    # Usually its answer is never read; sometimes it was already on its way.
                    attempt.dropped = self.rng.random() >= self.faults.late_after_abandon
                    attempt.late = not attempt.dropped
            elif isinstance(action, Delivered):
                for piece in action.pieces:
                    if job.dispatcher.broadcast:
                        job.delivered.append(piece.result.peer)
                    else:
                        job.delivered.extend(piece.indexes)
            elif isinstance(action, Finished):
                for attempt in self.attempts.values():
                    if attempt.job_id == job.job_id and not attempt.dropped:
                        self._release(attempt)
                        attempt.dropped = True
        when = None if job.dispatcher.state.finished else job.dispatcher.next_wakeup()
        if when is not None and when != job.timer_at:
            job.timer_at = when
            self._schedule(max(0.0, when - self.now), "timer", (job.job_id, when))

    def _release(self, attempt: Attempt) -> None:
        if not attempt.released:
            attempt.released = True
            self.out[attempt.run.peer] -= 1

    # --- the cluster's side -------------------------------------------------------------------

    def _place(self, job: SimJob, run: Run) -> None:
        peer = run.peer
        if peer != SELF and (peer not in self.view or peer in self.hold_down.held(self.now)):
            self._broken(f"{run.task_id} placed on {peer}, which membership or a hold says is gone")
        self.result.runs += 1
        self.out[peer] = self.out.get(peer, 0) + 1
        attempt = Attempt(job.job_id, run)
        self.attempts[(job.job_id, run.task_id, run.attempt)] = attempt
        f, rng = self.faults, self.rng
        if peer not in self.alive:  # dead, and membership has not noticed yet
            if rng.random() >= f.silent:
                self._answer_later(attempt, rng.uniform(0.01, 0.2), FailureKind.UNREACHABLE)
            return
        roll = rng.random()
        if roll < f.failure:
            kinds = [FailureKind.UNREACHABLE, FailureKind.BUSY, FailureKind.LOST]
            # Refused work fails every item of the task: rarer, or few jobs would complete.
            kind = FailureKind.REFUSED if rng.random() < 0.05 else rng.choice(kinds)
            self._answer_later(attempt, rng.uniform(0.01, 0.3), kind)
            return
        timeout_s = job.dispatcher.options.timeout_s or 1.0
        delay = rng.uniform(0.05, 1.0)
        if roll < f.failure + f.slow:
            delay = timeout_s * max(1, len(run.indexes)) + rng.uniform(10.0, 60.0)
        self._answer_later(attempt, delay, None)
        if rng.random() < f.duplicate:
            self.result.duplicates += 1
            self._answer_later(attempt, delay + rng.uniform(0.0, 2.0), None)

    def _answer_later(self, attempt: Attempt, delay_s: float, failure: FailureKind | None) -> None:
        self._schedule(delay_s, "answer", (attempt, failure))

    def _result(self, job: SimJob, run: Run) -> ChunkResult:
        crash = ErrorInfo(WorkerCrashed.slug, "WorkerCrashed", "the worker died")
        indexes = range(job.dispatcher.total) if job.dispatcher.broadcast else run.indexes
        values: list[Any] = [i * 2 for i in indexes]
        crashed = [o for o in range(len(values)) if self.rng.random() < self.faults.item_crash]
        for offset in crashed:
            values[offset] = None
        return ChunkResult.of(values, [(offset, crash) for offset in crashed])

    def _failure(self, kind: FailureKind) -> AttemptFailure:
        if kind is FailureKind.BUSY:
            return AttemptFailure(kind, "busy", retry_after_s=self.rng.uniform(0.1, 1.0))
        if kind is FailureKind.REFUSED:
            refused = ErrorInfo("snippet-rejected", "SnippetRejected", "refused")
            return AttemptFailure(kind, "refused", error=refused)
        return AttemptFailure(kind, kind.value)

    # --- events ---------------------------------------------------------------------------------

    def _on_submit(self, number: int) -> None:
        rng = self.rng
        policy = rng.choice(POLICY_NAMES)
        others = [p for p in self.peers if p != SELF]
        options = JobOptions(
            policy=policy,
            chunk_size=rng.choice((None, 1, 3, 7)),
            timeout_s=rng.choice((None, 0.5, 2.0)),
            retries=rng.randrange(3),
            fail_fast=rng.random() < 0.1,
            peer_count=rng.choice((None, None, 2, 4)),
            peer_list=tuple(rng.sample(others, 2)) if rng.random() < 0.1 else (),
        )
        total = rng.randrange(0, 80)
        dispatcher = Dispatcher(
            f"job{number}",
            total,
            options,
            random.Random(rng.getrandbits(64)),  # noqa: S311 - placement
            self_address=SELF,
            policies=self.policies,
            hold_down=self.hold_down,
        )
        job = self.jobs[dispatcher.job_id] = SimJob(dispatcher)
        self._apply(job, dispatcher.start(self.now, self._views(job)))

    def _on_answer(self, payload: tuple[Attempt, FailureKind | None]) -> None:
        attempt, kind = payload
        if attempt.dropped:
            return
        self._release(attempt)
        job = self.jobs[attempt.job_id]
        run = attempt.run
        self.result.answers += 1
        self.result.late_answers += attempt.late
        if kind is None:
            result = self._result(job, run)
            self._feed(
                job,
                event=lambda now: job.dispatcher.on_result(
                    now, run.task_id, run.attempt, result, run.peer
                ),
            )
        else:
            failure = self._failure(kind)
            self._feed(
                job,
                event=lambda now: job.dispatcher.on_attempt_failed(
                    now, run.task_id, run.attempt, failure
                ),
            )

    def _on_timer(self, payload: tuple[str, float]) -> None:
        job_id, when = payload
        job = self.jobs[job_id]
        if job.timer_at != when:
            return  # re-armed since: a stale timer
        job.timer_at = None
        self._feed(job, event=job.dispatcher.on_tick)

    def _on_notice(self, peer: str) -> None:
        """Membership noticed a death: every job hears the new live set at once."""
        self.view.discard(peer)
        for job in self.jobs.values():
            self._feed(job)

    def _chaos(self) -> None:
        f, rng = self.faults, self.rng
        candidates = [p for p in self.alive if p != SELF]
        if candidates and rng.random() < f.peer_death:
            self._kill(rng.choice(sorted(candidates)))
        gone = sorted(set(self.peers) - self.view)
        if gone and rng.random() < f.peer_return:
            peer = rng.choice(gone)
            self.alive.add(peer)
            self.view.add(peer)
        if rng.random() < f.clock_jump:
            self.result.clock_jumps += 1
            self.now += rng.uniform(5.0, 120.0)
        running = [j for j in self.jobs.values() if not j.dispatcher.state.finished]
        if running and rng.random() < f.cancel:
            job = rng.choice(running)
            self._apply(job, job.dispatcher.cancel(self.now))

    def _kill(self, peer: str) -> None:
        f, rng = self.faults, self.rng
        self.alive.discard(peer)
        self.result.deaths += 1
        self._schedule(rng.uniform(*f.notice_s), "notice", peer)
        for key, attempt in list(self.attempts.items()):
            if attempt.run.peer != peer or attempt.dropped:
                continue
            roll = rng.random()
            if roll < f.late_after_death:
                attempt.late = True  # its answer is already on the way
                continue
            attempt.dropped = True  # whatever it was going to say is lost with the peer
            if roll >= f.late_after_death + f.silent:
                # The connection is reset: the coordinator hears of it at once.
                reset = Attempt(attempt.job_id, attempt.run, released=attempt.released)
                self.attempts[key] = reset
                self._answer_later(reset, rng.uniform(0.0, 0.1), FailureKind.UNREACHABLE)
            else:
                self._release(attempt)  # silent: only membership or a deadline will tell
