"""A job as the client sends it, and its answers read back into values, outcomes and errors."""

from __future__ import annotations

import msgspec
import pytest

from disruptor.client.answers import (
    job_request,
    outcomes_of,
    piece_outcomes,
    values_or_raise,
)
from disruptor.errors import (
    DisruptorError,
    InvalidPayload,
    JobCancelled,
    TaskFailed,
    TaskTimeout,
    WorkerCrashed,
)
from disruptor.outcome import ItemOutcome

SHA1 = "0123456789abcdef0123456789abcdef01234567"


def answer(values: list[object], errors: list[dict[str, object]] = (), **extra: object) -> dict:  # type: ignore[assignment]
    total = len(values)
    return {
        "id": "j",
        "state": "completed",
        "progress": {"total": total, "done": total, "failed": len(errors)},
        "values": values,
        "errors": list(errors),
        "chunks": [{"start": 0, "count": total, "peer": "p:1"}],
        **extra,
    }


def test_items_travel_in_chunks_and_unset_options_stay_home() -> None:
    body = msgspec.msgpack.decode(
        job_request(SHA1, list(range(2500)), {"policy": None, "chunk_size": None})
    )
    assert body["bundle"] == SHA1 and "policy" not in body
    chunks = body["chunks"]  # each chunk is an array inside the message
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert [x for c in chunks for x in c] == list(range(2500))
    sized = msgspec.msgpack.decode(job_request(SHA1, [1, 2, 3], {"chunk_size": 2}))
    assert sized["chunk_size"] == 2 and len(sized["chunks"]) == 2


def test_an_item_that_cannot_travel_is_named() -> None:
    with pytest.raises(InvalidPayload, match="item 1001"):
        job_request(SHA1, [*range(1001), object()], {})


def test_item_errors_come_back_as_the_peers_classes() -> None:
    assert values_or_raise(answer([1, 2])) == [1, 2]
    crash = {"index": 1, "kind": "worker-crashed", "type": "WorkerCrashed", "message": "exit -9"}
    with pytest.raises(WorkerCrashed, match="exit -9"):
        values_or_raise(answer([1, None], [crash]))
    late = {"index": 0, "kind": "task-timeout", "type": "TaskTimeout", "message": "slow"}
    with pytest.raises(TaskTimeout):
        values_or_raise(answer([None], [late]))
    stopped = answer([None, None])
    stopped["progress"]["done"] = 1
    with pytest.raises(DisruptorError, match="stopped before"):
        values_or_raise(stopped)
    with pytest.raises(JobCancelled):
        values_or_raise(answer([1], state="cancelled"))


def test_a_remote_builtin_error_is_also_that_builtin_and_shows_its_traceback() -> None:
    error = {
        "index": 0,
        "kind": "task-failed",
        "type": "ZeroDivisionError",
        "message": "division by zero",
        "traceback": 'File "app.py", line 2, in handle\nZeroDivisionError: division by zero',
    }
    with pytest.raises(ZeroDivisionError) as caught:
        values_or_raise(answer([None], [error]))
    assert isinstance(caught.value, TaskFailed)
    assert 'File "app.py", line 2' in str(caught.value)
    odd = {**error, "type": "UnicodeDecodeError"}  # wants five arguments: plain TaskFailed
    with pytest.raises(TaskFailed):
        values_or_raise(answer([None], [odd]))


def test_outcomes_name_the_peer_and_the_error_of_each_item() -> None:
    error = {
        "index": 2,
        "kind": "task-failed",
        "type": "ValueError",
        "message": "no",
        "peer": "q:1",
    }
    body = answer([10, 11, None, 13], [error])
    body["chunks"] = [
        {"start": 0, "count": 2, "peer": "p:1"},
        {"indexes": [2, 3], "peer": "q:1"},
    ]
    outcomes = outcomes_of(body)
    assert outcomes[0] == ItemOutcome(value=10, peer="p:1")
    assert outcomes[3] == ItemOutcome(value=13, peer="q:1")
    assert outcomes[2].error is not None and outcomes[2].error.type == "ValueError"
    partial = answer([1, None])
    partial["chunks"] = [{"start": 0, "count": 1, "peer": "p:1"}]
    assert outcomes_of(partial)[1].error is not None


def test_a_streamed_piece_gives_each_of_its_items() -> None:
    piece = {
        "indexes": [4, 9],
        "values": ["a", None],
        "errors": [{"index": 9, "kind": "task-failed", "type": "KeyError", "message": "k"}],
        "peer": "p:1",
    }
    got = dict(piece_outcomes(piece))
    assert got[4] == ItemOutcome(value="a", peer="p:1")
    assert got[9].error is not None and got[9].error.type == "KeyError"
    ranged = {"start": 3, "count": 2, "values": [1, 2], "errors": [], "peer": "p:1"}
    assert [i for i, _ in piece_outcomes(ranged)] == [3, 4]
