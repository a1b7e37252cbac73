"""``Collected``: a streamed job's pieces kept once each, its progress, waits and answers."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from disruptor.client.collected import Collected, Progress
from disruptor.errors import DisruptorError, JobCancelled, PeerUnreachable, ProtocolError


def piece(start: int, values: list[Any], peer: str = "a:1", **extra: Any) -> dict[str, Any]:
    return {"start": start, "count": len(values), "values": values, "peer": peer, **extra}


def failure(index: int) -> dict[str, Any]:
    return {"index": index, "kind": "task-failed", "type": "ValueError", "message": f"bad {index}"}


def test_progress_moves_with_each_piece_and_the_values_come_in_order() -> None:
    seen: list[list[int]] = []
    collected = Collected(6)
    collected.listen(lambda indexes: seen.append(list(indexes)))
    collected.started("job1")
    assert collected.progress == Progress(0, 6) and collected.state == "running"
    collected.add(piece(4, [40, 50]))
    assert collected.progress == Progress(2, 6)
    collected.add(piece(0, [0, 10, 20, 30], peer="b:2"))
    collected.finish({"id": "job1", "state": "completed"})
    assert collected.progress == Progress(6, 6) and collected.progress.fraction == 1.0
    assert collected.values() == [0, 10, 20, 30, 40, 50]
    assert [o.peer for o in collected.outcomes()] == ["b:2"] * 4 + ["a:1"] * 2
    assert seen == [[4, 5], [0, 1, 2, 3], []]
    assert str(collected.progress) == "6/6 items"


def test_a_piece_sent_again_after_failover_counts_once_and_keeps_the_first_result() -> None:
    collected = Collected(4)
    collected.add(piece(0, ["first", "first"]))
    collected.add(piece(0, ["again"] * 4, peer="b:2"))  # the same job resubmitted elsewhere
    collected.add({"indexes": [3, 1], "values": ["x", "y"], "peer": "c:3"})
    assert collected.progress == Progress(4, 4)
    collected.finish({"id": "j", "state": "completed"})
    assert collected.values() == ["first", "first", "again", "again"]


def test_item_errors_are_raised_first_by_index_and_counted_as_failed() -> None:
    collected = Collected(3)
    collected.add(piece(2, [None], errors=[failure(2)]))
    collected.add(piece(0, [1, None], errors=[failure(1)]))
    assert collected.progress == Progress(3, 3, failed=2)
    collected.finish({"id": "j", "state": "completed"})
    assert collected.item(0) == 1
    with pytest.raises(ValueError, match="bad 1"):
        collected.values()
    outcomes = collected.outcomes()
    assert outcomes[0].ok and outcomes[2].error is not None


def test_a_cancelled_or_broken_job_raises_why() -> None:
    cancelled = Collected(2)
    cancelled.add(piece(0, [1]))
    cancelled.finish({"id": "j", "state": "cancelled"})
    assert cancelled.state == "cancelled"
    with pytest.raises(JobCancelled):
        cancelled.values()
    broken = Collected(2)
    broken.fail(PeerUnreachable("no peer answered"))
    assert broken.state == "broken"
    with pytest.raises(PeerUnreachable):
        broken.outcomes()
    stopped = Collected(2)
    stopped.add(piece(0, [1]))
    stopped.finish({"id": "j", "state": "failed"})
    with pytest.raises(DisruptorError, match="before every item"):
        stopped.values()
    assert stopped.outcomes()[1].error is not None


def test_wait_for_an_item_returns_as_soon_as_it_arrives() -> None:
    collected = Collected(3)
    assert not collected.wait_for(0, timeout_s=0.01)
    arrived = threading.Event()

    def wait_first() -> None:
        if collected.wait_for(0, timeout_s=30):
            arrived.set()

    waiter = threading.Thread(target=wait_first)
    waiter.start()
    collected.add(piece(0, ["a"]))
    waiter.join(timeout=30)
    assert arrived.is_set() and not collected.finished
    assert collected.wait_for(2, timeout_s=0.01) is False
    collected.fail(PeerUnreachable("gone"))
    assert collected.wait_for(2, timeout_s=0.01) and collected.wait(timeout_s=0.01)
    with pytest.raises(PeerUnreachable):
        collected.item(2)


def test_a_piece_that_does_not_fit_the_job_is_a_protocol_error() -> None:
    collected = Collected(2)
    with pytest.raises(ProtocolError):
        collected.add(piece(1, [1, 2]))
    with pytest.raises(ProtocolError):
        collected.add({"start": 0, "count": 2, "values": [1]})
    assert collected.progress.done == 0
