"""The worker session state machine, driven by hand with explicit time: no process, no clock."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disruptor.workers.session import (
    BecameReady,
    Completed,
    DeathKind,
    Failed,
    Gone,
    Kill,
    Lost,
    Session,
    SessionClosed,
    SessionTimeouts,
    State,
    TimedOut,
    describe_exit,
)

READY = b'{"v":1,"type":"ready","pid":42,"extra":"ignored"}\n'


def line(body: dict[str, object]) -> bytes:
    return json.dumps({"v": 1, **body}).encode() + b"\n"


def ready_session(concurrency: int = 1) -> Session:
    session = Session(concurrency=concurrency, started_at=0.0)
    (event,) = session.receive(0.1, READY)
    assert isinstance(event, BecameReady) and event.info["extra"] == "ignored"
    assert session.state is State.READY and session.pid == 42
    return session


def test_call_reply_cycle_moves_ready_busy_ready() -> None:
    session = ready_session()
    call_id, data = session.call(1.0, ["a", "b"], timeout_s=5.0)
    assert json.loads(data) == {"v": 1, "type": "call", "id": call_id, "items": ["a", "b"]}
    assert session.state is State.BUSY and session.spare == 0
    reply = line({"type": "result", "id": call_id, "results": [{"value": 1}, {"value": 2}]})
    (done,) = session.receive(1.5, reply)
    assert isinstance(done, Completed) and [r.value for r in done.results] == [1, 2]
    assert session.state is State.READY and session.calls_done == 1


def test_replies_may_come_in_any_order_with_concurrency() -> None:
    session = ready_session(concurrency=2)
    first, _ = session.call(0.0, [1], None)
    second, _ = session.call(0.0, [2], None)
    assert session.state is State.BUSY
    with pytest.raises(SessionClosed):
        session.call(0.0, [3], None)
    events = session.receive(0.5, line({"type": "result", "id": second, "results": [{"value": 2}]}))
    events += session.receive(0.6, line({"type": "result", "id": first, "results": [{"value": 1}]}))
    assert [e.id for e in events if isinstance(e, Completed)] == [second, first]


def test_item_errors_and_call_errors() -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [1, 2], None)
    reply = line(
        {
            "type": "result",
            "id": call_id,
            "results": [{"value": 1}, {"error": {"type": "ZeroDivisionError", "message": "no"}}],
        }
    )
    (done,) = session.receive(0.1, reply)
    assert isinstance(done, Completed)
    assert done.results[1].error is not None and done.results[1].error.type == "ZeroDivisionError"
    call_id, _ = session.call(0.2, [1], None)
    error = {
        "type": "error",
        "id": call_id,
        "error": {"type": "E", "message": "m", "traceback": "t"},
    }
    (failed,) = session.receive(0.3, line(error))
    assert isinstance(failed, Failed) and failed.error.traceback == "t"


def test_call_timeout_kills_and_loses_other_calls() -> None:
    session = ready_session(concurrency=2)
    slow, _ = session.call(0.0, [1], timeout_s=2.0)
    other, _ = session.call(1.0, [2], timeout_s=10.0)
    assert session.next_deadline() == 2.0
    assert session.tick(1.9) == []
    events = session.tick(2.0)
    assert TimedOut(slow, 2.0) in events
    lost = [e for e in events if isinstance(e, Lost)]
    assert [e.id for e in lost] == [other] and lost[0].death.kind is DeathKind.TIMEOUT
    assert any(isinstance(e, Kill) for e in events)
    assert isinstance(events[-1], Gone) and session.state is State.DEAD
    assert session.tick(100.0) == [] and session.next_deadline() is None


def test_never_ready_is_killed_at_the_ready_deadline() -> None:
    session = Session(concurrency=1, started_at=10.0, timeouts=SessionTimeouts(ready_s=5.0))
    assert session.next_deadline() == 15.0
    assert session.tick(14.0) == []
    events = session.tick(15.0)
    assert isinstance(events[0], Kill) and "ready within 5s" in events[0].reason
    assert isinstance(events[-1], Gone) and not events[-1].clean


def test_exit_loses_calls_in_flight_with_the_exit_status() -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [1], None)
    events = session.exited(1.0, -9)
    assert isinstance(events[0], Lost) and events[0].id == call_id
    assert "SIGKILL" in events[0].death.detail
    assert events[-1] == Gone(events[0].death, clean=False)


def test_drain_then_clean_exit() -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [1], None)
    data = session.shutdown(1.0)
    assert data is not None and json.loads(data)["type"] == "shutdown"
    assert session.state is State.DRAINING and session.spare == 0
    assert session.shutdown(1.1) is None  # asking twice changes nothing
    (done,) = session.receive(
        1.2, line({"type": "result", "id": call_id, "results": [{"value": 0}]})
    )
    assert isinstance(done, Completed)
    assert session.eof(1.3) == []
    (gone,) = session.exited(1.4, 0)
    assert isinstance(gone, Gone) and gone.clean


def test_drain_overrun_is_killed() -> None:
    session = Session(concurrency=1, started_at=0.0, timeouts=SessionTimeouts(drain_s=3.0))
    session.receive(0.0, READY)
    session.shutdown(1.0)
    events = session.tick(4.0)
    assert any(isinstance(e, Kill) for e in events)
    assert session.death is not None and session.death.kind is DeathKind.STOPPED


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"Hello from a print statement\n", "not JSON"),
        (b'{"v":2,"type":"ready"}\n', "version"),
        (b'{"v":1,"type":"dance"}\n', "unknown message type"),
        (b'{"v":1,"type":"result","id":99,"results":[]}\n', "not in flight"),
        (b'{"v":1,"type":"result","id":"1","results":[]}\n', "integer id"),
        (b'{"v":1,"type":"result","id":1,"results":{}}\n', "must be an array"),
    ],
)
def test_protocol_violations_kill_the_worker(data: bytes, words: str) -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [1], None)
    assert call_id == 1
    events = session.receive(0.1, data)
    lost = [e for e in events if isinstance(e, Lost)]
    assert lost and lost[0].death.kind is DeathKind.PROTOCOL and words in lost[0].death.detail
    assert any(isinstance(e, Kill) for e in events)
    assert session.state is State.DEAD
    # Anything said after death is ignored.
    assert session.receive(0.2, READY) == []


def test_wrong_number_of_results_is_a_violation() -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [1, 2, 3], None)
    events = session.receive(
        0.1, line({"type": "result", "id": call_id, "results": [{"value": 1}]})
    )
    assert any(isinstance(e, Lost) and "1 results for 3 items" in e.death.detail for e in events)


def test_reply_before_ready_is_a_violation() -> None:
    session = Session(concurrency=1, started_at=0.0)
    events = session.receive(0.0, line({"type": "result", "id": 1, "results": []}))
    assert session.death is not None and "before saying ready" in session.death.detail
    assert any(isinstance(e, Kill) for e in events)


def test_eof_while_running_is_a_crash_and_trailing_garbage_a_violation() -> None:
    session = ready_session()
    events = session.eof(1.0)
    assert session.death is not None and "closed its stdout" in session.death.detail
    assert any(isinstance(e, Kill) for e in events)
    session = ready_session()
    session.receive(0.0, b'{"v":1,"type":"res')
    session.eof(1.0)
    assert session.death is not None and session.death.kind is DeathKind.PROTOCOL


def test_ready_byte_by_byte_and_trailing_reply_in_the_same_chunk() -> None:
    session = Session(concurrency=1, started_at=0.0)
    events = []
    for byte in READY:
        events += session.receive(0.0, bytes([byte]))
    assert [type(e) for e in events] == [BecameReady]
    call_id, _ = session.call(0.0, ["x"], None)
    reply = line({"type": "result", "id": call_id, "results": [{"value": "X"}]})
    assert isinstance(session.receive(0.0, reply + reply[:10])[0], Completed)


def test_describe_exit() -> None:
    assert describe_exit(3) == "worker exited with status 3"
    assert describe_exit(-15) == "worker was killed by SIGTERM"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_output_ends_each_call_exactly_once(chunks: list[bytes]) -> None:
    """Whatever a worker writes, then exits: every call ends exactly once."""
    session = Session(concurrency=3, started_at=0.0)
    session.receive(0.0, READY)
    ids = [session.call(0.0, [i], 5.0)[0] for i in range(3)]
    ended: list[int] = []
    outputs = []
    for chunk in chunks:
        outputs += session.receive(0.0, chunk)
    outputs += session.eof(1.0) + session.exited(1.0, 1) + session.tick(10.0)
    for o in outputs:
        if isinstance(o, Completed | Failed | TimedOut | Lost):
            ended.append(o.id)
    assert sorted(ended) == ids
    assert sum(isinstance(o, Gone) for o in outputs) == 1
