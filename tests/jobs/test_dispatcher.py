from __future__ import annotations

import random
from collections import Counter

from disruptor.chunks import ChunkResult
from disruptor.errors import PeerUnreachable, SnippetRejected
from disruptor.jobs import dispatcher as dispatcher_module
from disruptor.jobs.dispatcher import (
    PLACEMENTS_MAX,
    Abandon,
    Action,
    Delivered,
    Dispatcher,
    Finished,
    Run,
    chunk_size_for,
)
from disruptor.jobs.faults import AttemptFailure, FailureKind, HoldDown, failure_of
from disruptor.jobs.model import JobOptions, JobState
from disruptor.jobs.policies import PeerView
from disruptor.outcome import ErrorInfo

PEERS = [PeerView("a:1"), PeerView("b:1"), PeerView("c:1")]


def lost(why: str) -> AttemptFailure:
    return AttemptFailure(FailureKind.LOST, why)


def runs(actions: list[Action]) -> list[Run]:
    return [a for a in actions if isinstance(a, Run)]


def ok(run: Run) -> ChunkResult:
    return ChunkResult.of([i * 10 for i in run.indexes])


def delivered_indexes(actions: list[Action]) -> list[int]:
    return [i for a in actions if isinstance(a, Delivered) for p in a.pieces for i in p.indexes]


def finished(actions: list[Action]) -> JobState | None:
    states = [a.state for a in actions if isinstance(a, Finished)]
    return states[-1] if states else None


def test_splits_by_chunk_size_and_collates_in_order() -> None:
    d = Dispatcher("j", 10, JobOptions(policy="round-robin", chunk_size=3), random.Random(0))
    out = runs(d.start(0.0, PEERS))
    assert [list(r.indexes) for r in out] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [r.peer for r in out] == ["a:1", "b:1", "c:1", "a:1"]
    actions: list[Action] = []
    for run in reversed(out):  # results arrive in any order
        actions += d.on_result(1.0, run.task_id, run.attempt, ok(run), run.peer)
    assert finished(actions) is JobState.COMPLETED
    assert [o.value for o in d.results.outcomes() if o] == [i * 10 for i in range(10)]
    assert [o.peer for o in d.results.outcomes() if o][:4] == ["a:1"] * 3 + ["b:1"]


def test_automatic_chunking() -> None:
    assert chunk_size_for(10_000, 3) == 313
    assert chunk_size_for(10_000, 20) == 125  # 4 tasks per peer
    assert chunk_size_for(10, 3) == 1
    assert chunk_size_for(10**7, 2) == 1000


def test_a_small_job_is_cut_small_enough_for_its_progress_to_move() -> None:
    # 240 items on one peer were 4 tasks of 60: progress sat at 60/240 for seconds.
    d = Dispatcher("j", 240, JobOptions(), random.Random(0))
    placed = runs(d.start(0.0, [PeerView("a:1")]))
    sizes: list[int] = []
    while placed:
        run = placed.pop()
        sizes.append(len(run.indexes))
        placed += runs(d.on_result(0.001 * len(sizes), run.task_id, 1, ok(run), "a:1"))
    assert len(sizes) == 30 and max(sizes) == 8 and d.state is JobState.COMPLETED


def test_tasks_grow_toward_a_quarter_second_once_items_prove_quick() -> None:
    # A million items arriving as a thousand chunks: the first tasks are one chunk each; once
    # an item is seen to take a microsecond, tasks join whole chunks up to 1/32 of the job.
    d = Dispatcher("j", 1_000_000, JobOptions(), random.Random(0))
    placed = runs(d.start(0.0, [PeerView("a:1")], [1000] * 1000, [5000] * 1000))
    assert [len(r.indexes) for r in placed] == [1000] * 4
    now, sizes = 0.0, []
    while placed:
        run = placed.pop(0)
        sizes.append(len(run.indexes))
        now += 0.000_001 * len(run.indexes)
        placed += runs(d.on_result(now, run.task_id, 1, ok(run), "a:1"))
    assert d.state is JobState.COMPLETED and sum(sizes) == 1_000_000
    assert max(sizes) == 31_000 and len(sizes) < 60
    assert all(s % 1000 == 0 for s in sizes), "tasks follow the chunks' edges"


def test_slow_items_keep_tasks_small_and_a_fixed_chunk_size_is_kept() -> None:
    d = Dispatcher("j", 10_000, JobOptions(), random.Random(0))
    placed = runs(d.start(0.0, [PeerView("a:1")], [100] * 100))
    now, sizes = 0.0, []
    while placed:
        run = placed.pop(0)
        sizes.append(len(run.indexes))
        now += 0.01 * len(run.indexes)  # ten milliseconds an item
        placed += runs(d.on_result(now, run.task_id, 1, ok(run), "a:1"))
    assert set(sizes) == {100}
    fixed = Dispatcher("k", 5000, JobOptions(chunk_size=500), random.Random(0))
    first = runs(fixed.start(0.0, [PeerView("a:1")]))
    later = runs(fixed.on_result(0.0001, first[0].task_id, 1, ok(first[0]), "a:1"))
    assert {len(r.indexes) for r in first + later} == {500}


def test_empty_job_finishes_at_once() -> None:
    d = Dispatcher("j", 0, JobOptions(), random.Random(0))
    assert finished(d.start(0.0, PEERS)) is JobState.COMPLETED


def test_window_bounds_attempts_out_at_once() -> None:
    d = Dispatcher("j", 1000, JobOptions(chunk_size=1), random.Random(0))
    first = runs(d.start(0.0, [PeerView("a:1")]))
    assert len(first) == 4
    more = runs(d.on_result(1.0, first[0].task_id, 1, ok(first[0]), "a:1"))
    assert len(more) == 1


def test_dead_peer_tasks_are_placed_elsewhere_and_each_item_delivered_once() -> None:
    d = Dispatcher("j", 6, JobOptions(policy="round-robin", chunk_size=1), random.Random(0))
    out = runs(d.start(0.0, PEERS))
    on_b = [r for r in out if r.peer == "b:1"]
    assert on_b
    replaced = runs(d.on_peers(1.0, [PEERS[0], PEERS[2]]))
    assert sorted(r.task_id for r in replaced) == sorted(r.task_id for r in on_b)
    assert all(r.peer != "b:1" and r.attempt == 2 for r in replaced)
    delivered: list[int] = []
    # The dead peer's late answer arrives first; then the re-placed attempts answer too.
    for run in on_b + [r for r in out if r.peer != "b:1"] + replaced:
        delivered += delivered_indexes(
            d.on_result(2.0, run.task_id, run.attempt, ok(run), run.peer)
        )
    assert sorted(delivered) == list(range(6))
    assert Counter(delivered).most_common(1)[0][1] == 1
    assert d.state is JobState.COMPLETED


def test_late_earlier_attempt_wins_and_abandons_the_later_one() -> None:
    d = Dispatcher("j", 1, JobOptions(), random.Random(0))
    (first,) = runs(d.start(0.0, PEERS))
    (second,) = runs(d.on_attempt_failed(1.0, first.task_id, 1, lost("connection reset")))
    actions = d.on_result(2.0, first.task_id, 1, ok(first), first.peer)
    assert Abandon(second.task_id, 2, second.peer) in actions
    assert finished(actions) is JobState.COMPLETED
    assert d.on_result(3.0, second.task_id, 2, ok(second), second.peer) == []


def test_timeout_abandons_and_replaces() -> None:
    d = Dispatcher("j", 1, JobOptions(timeout_s=1.0), random.Random(0))
    (first,) = runs(d.start(0.0, PEERS))
    assert d.next_wakeup() == 1.0 + dispatcher_module.ATTEMPT_GRACE_S
    assert d.on_tick(2.0) == []
    actions = d.on_tick(10.0)
    assert Abandon(first.task_id, 1, first.peer) in actions
    (second,) = runs(actions)
    assert second.peer != first.peer


def test_overloaded_backs_off_without_counting_a_loss() -> None:
    d = Dispatcher("j", 1, JobOptions(), random.Random(0))
    (first,) = runs(d.start(0.0, [PeerView("a:1")]))
    busy = AttemptFailure(FailureKind.BUSY, "busy", retry_after_s=2.0)
    assert d.on_attempt_failed(0.0, first.task_id, 1, busy) == []
    assert d.next_wakeup() == 2.0
    (again,) = runs(d.on_tick(2.0))
    assert again.peer == "a:1" and d.tasks[again.task_id].placements == 0


def test_a_task_lost_too_often_reports_peer_unreachable() -> None:
    d = Dispatcher("j", 2, JobOptions(chunk_size=2), random.Random(0))
    (run,) = runs(d.start(0.0, [PeerView("a:1")]))
    for _ in range(PLACEMENTS_MAX - 1):
        (run,) = runs(d.on_attempt_failed(1.0, run.task_id, run.attempt, lost("refused")))
    actions = d.on_attempt_failed(1.0, run.task_id, run.attempt, lost("refused"))
    assert finished(actions) is JobState.COMPLETED
    errors = [o.error for o in d.results.outcomes() if o]
    assert [e.kind for e in errors if e] == ["peer-unreachable"] * 2


def test_crashed_items_are_split_apart_then_retried_alone_up_to_the_limit() -> None:
    d = Dispatcher("j", 3, JobOptions(chunk_size=3, retries=1), random.Random(0))
    (run,) = runs(d.start(0.0, PEERS))
    crash = ErrorInfo("worker-crashed", "WorkerCrashed", "exit -9")
    first = ChunkResult.of([0, None, None], [(1, crash), (2, crash)])
    actions = d.on_result(1.0, run.task_id, 1, first, run.peer)
    assert delivered_indexes(actions) == [0]
    one, two = runs(actions)
    assert (list(one.indexes), list(two.indexes)) == ([1], [2]), "one task each, for free"
    d.on_result(2.0, one.task_id, 1, ChunkResult.of([1]), one.peer)
    (again,) = runs(d.on_result(2.0, two.task_id, 1, ChunkResult.of([None], [(0, crash)]), "x"))
    assert list(again.indexes) == [2], "alone, it is tried again: its one retry"
    actions = d.on_result(3.0, again.task_id, 1, ChunkResult.of([None], [(0, crash)]), "x")
    assert finished(actions) is JobState.COMPLETED
    outcomes = d.results.outcomes()
    assert [o.value for o in outcomes if o and o.ok] == [0, 1]
    assert outcomes[2] is not None and outcomes[2].error is not None
    assert d.retried == 3


def test_one_poisonous_item_is_isolated_and_the_rest_of_its_task_succeeds() -> None:
    poison = 637
    crash = ErrorInfo("worker-crashed", "WorkerCrashed", "exit -9")
    d = Dispatcher("j", 1000, JobOptions(chunk_size=1000, retries=1), random.Random(0))
    placed, rounds = runs(d.start(0.0, [PeerView("a:1")])), 0
    while placed:
        run = placed.pop(0)
        rounds += 1
        if poison in run.indexes:  # the worker dies: every item of the task is lost with it
            result = ChunkResult.failed(len(run.indexes), crash)
        else:
            result = ChunkResult.of(list(run.indexes))
        placed += runs(d.on_result(float(rounds), run.task_id, run.attempt, result, "a:1"))
    assert d.state is JobState.COMPLETED
    failed = [i for i, o in enumerate(d.results.outcomes()) if o is None or not o.ok]
    assert failed == [poison]
    assert rounds < 100, "split into parts, then single items: a few rounds, not a thousand"


def test_no_retries_means_nothing_runs_again() -> None:
    d = Dispatcher("j", 3, JobOptions(chunk_size=3, retries=0), random.Random(0))
    (run,) = runs(d.start(0.0, PEERS))
    crash = ErrorInfo("worker-crashed", "WorkerCrashed", "exit -9")
    actions = d.on_result(1.0, run.task_id, 1, ChunkResult.failed(3, crash), run.peer)
    assert runs(actions) == [] and finished(actions) is JobState.COMPLETED


def test_fail_fast_stops_at_first_item_error() -> None:
    d = Dispatcher("j", 4, JobOptions(chunk_size=1, fail_fast=True), random.Random(0))
    out = runs(d.start(0.0, PEERS))
    bad = ChunkResult.of([None], [(0, ErrorInfo("task-failed", "ValueError", "no"))])
    actions = d.on_result(1.0, out[0].task_id, 1, bad, out[0].peer)
    assert finished(actions) is JobState.FAILED
    assert {(a.task_id, a.peer) for a in actions if isinstance(a, Abandon)} == {
        (r.task_id, r.peer) for r in out[1:]
    }


def test_cancel_abandons_everything_out() -> None:
    d = Dispatcher("j", 5, JobOptions(chunk_size=1), random.Random(0))
    out = runs(d.start(0.0, PEERS))
    actions = d.cancel(1.0)
    assert finished(actions) is JobState.CANCELLED
    assert len([a for a in actions if isinstance(a, Abandon)]) == len(out)
    assert d.on_result(2.0, out[0].task_id, 1, ok(out[0]), out[0].peer) == []
    assert d.cancel(3.0) == []


def test_broadcast_runs_the_whole_job_once_on_every_peer() -> None:
    d = Dispatcher("j", 3, JobOptions(policy="broadcast"), random.Random(0))
    out = runs(d.start(0.0, PEERS))
    assert sorted(r.peer for r in out) == ["a:1", "b:1", "c:1"]
    assert all(list(r.indexes) == [0, 1, 2] for r in out)
    actions: list[Action] = []
    for run in out:
        actions += d.on_result(1.0, run.task_id, 1, ok(run), run.peer)
    assert finished(actions) is JobState.COMPLETED
    by_peer = d.peer_results.by_peer
    assert sorted(by_peer) == ["a:1", "b:1", "c:1"]
    assert all(r.values_list() == [0, 10, 20] and r.peer == p for p, r in by_peer.items())


def test_broadcast_peer_lost_reports_its_one_error() -> None:
    d = Dispatcher("j", 1, JobOptions(policy="broadcast"), random.Random(0))
    out = runs(d.start(0.0, PEERS))
    d.on_peers(1.0, PEERS[:2])
    for run in out[:2]:
        d.on_result(1.0, run.task_id, 1, ok(run), run.peer)
    assert d.state is JobState.COMPLETED
    last = d.peer_results.by_peer["c:1"]
    assert last.failures == 1 and last.errors[0][1].kind == "peer-unreachable"


def test_target_peer_count_uses_only_that_many_and_tops_up_on_loss() -> None:
    peers = [PeerView(f"p{i}:1", load=float(i)) for i in range(5)]
    d = Dispatcher("j", 40, JobOptions(chunk_size=1, peer_count=2), random.Random(0))
    used = {r.peer for r in runs(d.start(0.0, peers))}
    assert used == {"p0:1", "p1:1"}
    replaced = runs(d.on_peers(1.0, [p for p in peers if p.address != "p0:1"]))
    assert {r.peer for r in replaced} <= {"p1:1", "p2:1"}


def test_an_unreachable_peer_is_held_down_for_every_job_sharing_the_hold() -> None:
    hold = HoldDown(hold_s=10.0)
    options = JobOptions(policy="round-robin", chunk_size=1)
    first = Dispatcher("j", 1, options, random.Random(0), hold_down=hold)
    (run,) = runs(first.start(0.0, PEERS))
    failure = failure_of(PeerUnreachable(f"{run.peer}: connection refused"))
    (again,) = runs(first.on_attempt_failed(1.0, run.task_id, run.attempt, failure))
    assert again.peer != run.peer
    # Another job of this peer, placed while the hold lasts, keeps off the unreachable peer...
    other = Dispatcher("k", 30, options, random.Random(1), hold_down=hold)
    assert run.peer not in {r.peer for r in runs(other.start(2.0, PEERS))}
    # ...and once it has passed, the peer is a candidate again.
    later = Dispatcher("l", 30, options, random.Random(1), hold_down=hold)
    assert run.peer in {r.peer for r in runs(later.start(11.0, PEERS))}


def test_work_refused_by_a_peer_fails_its_items_without_placing_again() -> None:
    d = Dispatcher("j", 2, JobOptions(chunk_size=2), random.Random(0))
    (run,) = runs(d.start(0.0, PEERS))
    failure = failure_of(SnippetRejected("name 'x' is not defined"))
    assert failure.kind is FailureKind.REFUSED
    actions = d.on_attempt_failed(1.0, run.task_id, run.attempt, failure)
    assert runs(actions) == [] and finished(actions) is JobState.COMPLETED
    outcomes = d.results.outcomes()
    assert all(o is not None and o.error and o.error.kind == "snippet-rejected" for o in outcomes)


def test_next_wakeup_follows_deadlines_and_forgets_answered_attempts() -> None:
    d = Dispatcher("j", 2, JobOptions(chunk_size=1, timeout_s=1.0), random.Random(0))
    first, second = runs(d.start(0.0, PEERS))
    grace = dispatcher_module.ATTEMPT_GRACE_S
    assert d.next_wakeup() == 1.0 + grace
    d.on_result(0.5, first.task_id, first.attempt, ok(first), first.peer)
    assert d.next_wakeup() == 1.0 + grace  # the second attempt's deadline still stands
    d.on_result(0.6, second.task_id, second.attempt, ok(second), second.peer)
    assert d.next_wakeup() is None and d.state is JobState.COMPLETED
