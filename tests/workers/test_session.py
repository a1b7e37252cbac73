"""The worker session state machine, driven by hand with explicit time: no process, no clock.

Version 1 (NDJSON) first, then version 2 (the switch, frames, parts)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disruptor.chunks import Chunk, ChunkResult
from disruptor.workers.framing import FrameDecoder, FrameTooLarge, Unsendable, encode_frame
from disruptor.workers.messages import V1, V2
from disruptor.workers.session import (
    BecameReady,
    Completed,
    DeathKind,
    Failed,
    Gone,
    Kill,
    Lost,
    Send,
    Session,
    SessionClosed,
    SessionTimeouts,
    State,
    TimedOut,
    describe_exit,
)

READY = b'{"v":1,"type":"ready","pid":42,"extra":"ignored"}\n'
READY_V2 = b'{"v":1,"type":"ready","pid":42,"protocols":[1,2]}\n'


def chunk(*items: Any) -> Chunk:
    return Chunk.of(list(items))


def line(body: dict[str, object]) -> bytes:
    return json.dumps({"v": 1, **body}).encode() + b"\n"


def ready_session(concurrency: int = 1) -> Session:
    session = Session(concurrency=concurrency, started_at=0.0, protocol_max=V1)
    (event,) = session.receive(0.1, READY)
    assert isinstance(event, BecameReady) and event.info["extra"] == "ignored"
    assert session.state is State.READY and session.pid == 42
    return session


def test_call_reply_cycle_moves_ready_busy_ready() -> None:
    session = ready_session()
    call_id, data = session.call(1.0, [chunk("a", "b"), chunk("c")], timeout_s=5.0)
    assert json.loads(data) == {"v": 1, "type": "call", "id": call_id, "items": ["a", "b", "c"]}
    assert session.state is State.BUSY and session.spare == 0
    results = [{"value": 1}, {"value": 2}, {"value": 3}]
    (done,) = session.receive(1.5, line({"type": "result", "id": call_id, "results": results}))
    assert isinstance(done, Completed)
    assert [r.values_list() for r in done.results] == [[1, 2], [3]], "cut back into the parts"
    assert session.state is State.READY and session.calls_done == 1


def test_replies_may_come_in_any_order_with_concurrency() -> None:
    session = ready_session(concurrency=2)
    first, _ = session.call(0.0, [chunk(1)], None)
    second, _ = session.call(0.0, [chunk(2)], None)
    assert session.state is State.BUSY
    with pytest.raises(SessionClosed):
        session.call(0.0, [chunk(3)], None)
    events = session.receive(0.5, line({"type": "result", "id": second, "results": [{"value": 2}]}))
    events += session.receive(0.6, line({"type": "result", "id": first, "results": [{"value": 1}]}))
    assert [e.id for e in events if isinstance(e, Completed)] == [second, first]


def test_item_errors_and_call_errors() -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [chunk(1), chunk(2, 3)], None)
    reply = line(
        {
            "type": "result",
            "id": call_id,
            "results": [
                {"value": 1},
                {"value": 2},
                {"error": {"type": "ZeroDivisionError", "message": "no"}},
            ],
        }
    )
    (done,) = session.receive(0.1, reply)
    assert isinstance(done, Completed)
    first, second = done.results
    assert first.errors == () and second.values_list() == [2, None]
    ((offset, info),) = second.errors
    assert offset == 1 and info.type == "ZeroDivisionError" and info.kind == "task-failed"
    call_id, _ = session.call(0.2, [chunk(1)], None)
    error = {
        "type": "error",
        "id": call_id,
        "error": {"type": "E", "message": "m", "traceback": "t"},
    }
    (failed,) = session.receive(0.3, line(error))
    assert isinstance(failed, Failed) and failed.error.traceback == "t"


def test_call_timeout_kills_and_loses_other_calls() -> None:
    session = ready_session(concurrency=2)
    slow, _ = session.call(0.0, [chunk(1)], timeout_s=2.0)
    other, _ = session.call(1.0, [chunk(2)], timeout_s=10.0)
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
    call_id, _ = session.call(0.0, [chunk(1)], None)
    events = session.exited(1.0, -9)
    assert isinstance(events[0], Lost) and events[0].id == call_id
    assert "SIGKILL" in events[0].death.detail
    assert events[-1] == Gone(events[0].death, clean=False)


def test_drain_then_clean_exit() -> None:
    session = ready_session()
    call_id, _ = session.call(0.0, [chunk(1)], None)
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
    call_id, _ = session.call(0.0, [chunk(1)], None)
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
    call_id, _ = session.call(0.0, [chunk(1, 2, 3)], None)
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
    call_id, _ = session.call(0.0, [chunk("x")], None)
    reply = line({"type": "result", "id": call_id, "results": [{"value": "X"}]})
    assert isinstance(session.receive(0.0, reply + reply[:10])[0], Completed)


def test_describe_exit() -> None:
    assert describe_exit(3) == "worker exited with status 3"
    assert describe_exit(-15) == "worker was killed by SIGTERM"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_output_ends_each_call_exactly_once(pieces: list[bytes]) -> None:
    """Whatever a worker writes, then exits: every call ends exactly once."""
    session = Session(concurrency=3, started_at=0.0)
    session.receive(0.0, READY)
    ids = [session.call(0.0, [chunk(i)], 5.0)[0] for i in range(3)]
    ended: list[int] = []
    outputs = []
    for piece in pieces:
        outputs += session.receive(0.0, piece)
    outputs += session.eof(1.0) + session.exited(1.0, 1) + session.tick(10.0)
    for o in outputs:
        if isinstance(o, Completed | Failed | TimedOut | Lost):
            ended.append(o.id)
    assert sorted(ended) == ids
    assert sum(isinstance(o, Gone) for o in outputs) == 1


def test_items_json_cannot_hold_are_unsendable_in_version_1() -> None:
    session = ready_session()
    for item in (float("nan"), b"bytes"):
        with pytest.raises(Unsendable, match="cannot be written as JSON"):
            session.call(0.0, [chunk(1, item)], None)
    assert session.in_flight == 0 and session.spare == 1


# --- version 2 ---


def frame(body: dict[str, Any]) -> bytes:
    return encode_frame(msgspec.msgpack.encode({"v": 2, **body}))


def result(call_id: int, *parts: dict[str, Any]) -> bytes:
    return frame({"type": "result", "id": call_id, "parts": list(parts)})


def v2_session(concurrency: int = 1, **kwargs: Any) -> Session:
    session = Session(concurrency=concurrency, started_at=0.0, **kwargs)
    events = session.receive(0.1, READY_V2)
    assert [type(e) for e in events] == [Send, BecameReady]
    send = events[0]
    assert isinstance(send, Send)
    assert json.loads(send.data) == {"v": 1, "type": "protocol", "version": 2}
    assert session.version == V2 and session.state is State.READY
    return session


def decode_call(data: bytes) -> dict[str, Any]:
    (event,) = FrameDecoder().feed(data)
    body: dict[str, Any] = msgspec.msgpack.decode(event.data)  # type: ignore[union-attr]
    return body


def test_a_worker_that_offers_version_2_is_switched_unless_the_peer_says_no() -> None:
    v2_session()
    session = Session(concurrency=1, started_at=0.0, protocol_max=V1)
    (event,) = session.receive(0.1, READY_V2)
    assert isinstance(event, BecameReady) and event.info["protocols"] == [1, 2]
    assert session.version == V1
    session = Session(concurrency=1, started_at=0.0)
    (event,) = session.receive(0.1, READY)
    assert isinstance(event, BecameReady) and session.version == V1


def test_version_2_call_carries_the_chunks_as_parts_and_results_come_back_per_part() -> None:
    session = v2_session()
    parts = [chunk(1, "two", [3]), chunk({"four": 4})]
    call_id, data = session.call(0.0, parts, timeout_s=5.0)
    assert data[:4] == len(data[4:]).to_bytes(4, "big")
    assert decode_call(data) == {
        "v": 2,
        "type": "call",
        "id": call_id,
        "parts": [[1, "two", [3]], [{"four": 4}]],
    }
    values = [msgspec.msgpack.encode([2, None, 6]), msgspec.msgpack.encode(["x"])]
    boom = {"type": "ValueError", "message": "boom", "traceback": "tb"}
    reply = result(
        call_id, {"values": msgspec.Raw(values[0]), "errors": [[1, boom]]}, {"values": ["x"]}
    )
    (done,) = session.receive(0.5, reply)
    assert isinstance(done, Completed) and session.state is State.READY
    first, second = done.results
    assert first.values == values[0], "values pass through as the bytes they came in"
    assert first.errors[0][0] == 1 and first.errors[0][1].traceback == "tb"
    assert second == ChunkResult(1, values[1])


def test_version_2_reply_byte_by_byte_then_a_part_error_and_a_call_error() -> None:
    session = v2_session()
    call_id, _ = session.call(0.0, [chunk(1, 2), chunk(3)], None)
    reply = result(call_id, {"error": {"type": "TypeError", "message": "batch"}}, {"values": [9]})
    events = []
    for byte in reply:
        events += session.receive(0.1, bytes([byte]))
    (done,) = events
    assert isinstance(done, Completed)
    failed, fine = done.results
    assert failed.values_list() == [None, None] and [o for o, _ in failed.errors] == [0, 1]
    assert fine.values_list() == [9]
    call_id, _ = session.call(0.2, [chunk(1)], None)
    error = frame({"type": "error", "id": call_id, "error": {"type": "E", "message": "m"}})
    (failure,) = session.receive(0.3, error + result(99)[:3])
    assert isinstance(failure, Failed) and failure.error.type == "E"


def test_version_2_shutdown_is_a_frame() -> None:
    session = v2_session()
    data = session.shutdown(1.0)
    assert data is not None and decode_call(data) == {"v": 2, "type": "shutdown"}


def test_version_2_call_larger_than_a_frame_is_refused_before_it_starts() -> None:
    session = v2_session(frame_bytes_max=200)
    with pytest.raises(FrameTooLarge):
        session.call(0.0, [chunk("x" * 100), chunk("y" * 100)], None)
    assert session.in_flight == 0
    call_id, _ = session.call(0.0, [chunk("x" * 100)], None)
    assert call_id == 1


VALUES_2 = msgspec.Raw(msgspec.msgpack.encode([1, 2]))


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (encode_frame(b"\xc1"), "not MessagePack"),
        (encode_frame(msgspec.msgpack.encode([1, 2])), "not a worker message"),
        (frame({"type": "dance", "id": 1}), "not a worker message"),
        (
            encode_frame(msgspec.msgpack.encode({"v": 1, "type": "error", "id": 1, "error": {}})),
            "unsupported protocol version 1",
        ),
        (result(99, {"values": VALUES_2}), "not in flight"),
        (result(1, {"values": VALUES_2}, {"values": VALUES_2}), "2 parts for 1"),
        (result(1, {"values": [1]}), "holds 1 values"),
        (result(1, {"values": {"a": 1}}), "must be an array"),
        (result(1, {"values": VALUES_2, "errors": [[2, {"message": "x"}]]}), "item 2"),
        (result(1, {"values": VALUES_2, "error": {"message": "x"}}), "both an error and"),
        (frame({"type": "result", "id": True, "parts": []}), "id"),
        (b"\x7f\xff\xff\xff", "exceeds"),
        (b"Hello from a print statement\n", "exceeds"),
    ],
)
def test_version_2_protocol_violations_kill_the_worker(reply: bytes, words: str) -> None:
    session = v2_session()
    call_id, _ = session.call(0.0, [chunk(1, 2)], None)
    assert call_id == 1
    events = session.receive(0.1, reply)
    lost = [e for e in events if isinstance(e, Lost)]
    assert lost and lost[0].death.kind is DeathKind.PROTOCOL, events
    assert words in lost[0].death.detail
    assert any(isinstance(e, Kill) for e in events) and session.state is State.DEAD


def test_writing_after_ready_before_the_switch_is_a_violation() -> None:
    session = Session(concurrency=1, started_at=0.0)
    events = session.receive(0.0, READY_V2 + b'{"v":1,"type":"ready"}\n')
    assert session.death is not None and "before reading the protocol switch" in (
        session.death.detail
    )
    assert any(isinstance(e, Kill) for e in events)


def test_an_unfinished_line_after_ready_is_read_as_the_start_of_a_frame() -> None:
    session = Session(concurrency=1, started_at=0.0)
    assert [type(e) for e in session.receive(0.0, READY_V2 + b"\xff\xff")] == [Send, BecameReady]
    session.receive(0.1, b"\xff\xff")
    assert session.death is not None and "exceeds" in session.death.detail


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_any_version_2_output_ends_each_call_exactly_once(pieces: list[bytes]) -> None:
    session = v2_session(concurrency=3)
    ids = [session.call(0.0, [chunk(i)], 5.0)[0] for i in range(3)]
    outputs = []
    for piece in pieces:
        outputs += session.receive(0.0, piece)
    outputs += session.eof(1.0) + session.exited(1.0, 1) + session.tick(10.0)
    ended = [o.id for o in outputs if isinstance(o, Completed | Failed | TimedOut | Lost)]
    assert sorted(ended) == ids
    assert sum(isinstance(o, Gone) for o in outputs) == 1
