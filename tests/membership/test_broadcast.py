"""The retransmit queue: newest rumour per node wins, least-sent first, bounded budget."""

from __future__ import annotations

from disruptor.membership.broadcast import BroadcastQueue, retransmit_limit
from disruptor.membership.messages import Alive, Dead, Suspect


def test_limit_grows_with_log_n() -> None:
    assert retransmit_limit(4, 1) == 4
    assert retransmit_limit(4, 9) == 4
    assert retransmit_limit(4, 10) == 8
    assert retransmit_limit(4, 1000) == 16
    assert retransmit_limit(4, 64, base=4) == 12


def test_newer_rumour_about_a_node_replaces_the_older() -> None:
    q = BroadcastQueue(4, 100)
    q.queue(Suspect(1, "a:1", "b:1"))
    q.queue(Alive(2, "a:1"))
    assert len(q) == 1
    assert q.pending_about("a:1") == Alive(2, "a:1")


def test_take_respects_budget_and_retires_after_limit() -> None:
    q = BroadcastQueue(1, 100)
    for i in range(5):
        q.queue(Dead(1, f"n{i}:1", "x:1"))
    rumours, used = q.take(60, n_members=1)
    assert used <= 60 and 0 < len(rumours) < 5
    # Least-sent first: the next take sends the others before any repeat.
    again, _ = q.take(10_000, n_members=1)
    assert not set(rumours) & set(again)
    assert len(q) == 0


def test_queue_is_bounded() -> None:
    q = BroadcastQueue(4, 10)
    for i in range(50):
        q.queue(Alive(1, f"n{i}:1"))
    assert len(q) == 10
    assert q.pending_about("n49:1") is not None
