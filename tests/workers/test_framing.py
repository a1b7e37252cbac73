"""Both framings (NDJSON lines, length-prefixed frames): whole, byte by byte, with trailing
data, and garbage."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disruptor.workers.framing import (
    FRAME_HEADER_BYTES,
    BinaryFrame,
    Event,
    Frame,
    FrameDecoder,
    FrameTooLarge,
    LineDecoder,
    LineTooLong,
    Unsendable,
    Violation,
    decode_line,
    encode_frame,
    encode_line,
)

MESSAGES = [
    {"v": 1, "type": "ready", "pid": 7},
    {"v": 1, "type": "result", "id": 1, "results": [{"value": "héllo \u2603"}]},
    {"v": 1, "type": "error", "id": 2, "error": {"type": "E", "message": "line\nbreak"}},
]
STREAM = b"".join(encode_line(m) for m in MESSAGES)


def frames(events: list[Event]) -> list[dict[str, object]]:
    assert all(isinstance(e, Frame) for e in events), events
    return [e.body for e in events if isinstance(e, Frame)]


def test_stream_fed_whole() -> None:
    assert frames(LineDecoder().feed(STREAM)) == MESSAGES


def test_stream_fed_byte_by_byte() -> None:
    decoder = LineDecoder()
    events = []
    for i in range(len(STREAM)):
        events += decoder.feed(STREAM[i : i + 1])
    assert frames(events) == MESSAGES
    assert decoder.end() == []


def test_trailing_partial_line_waits_then_is_a_violation_at_end() -> None:
    decoder = LineDecoder()
    assert frames(decoder.feed(STREAM + b'{"v":1,"ty')) == MESSAGES
    assert decoder.buffered_bytes == len(b'{"v":1,"ty')
    (event,) = decoder.end()
    assert isinstance(event, Violation)
    assert "no final newline" in event.reason


def test_trailing_data_completes_on_next_feed() -> None:
    decoder = LineDecoder()
    first = decoder.feed(STREAM[:-5])
    rest = decoder.feed(STREAM[-5:])
    assert frames(first + rest) == MESSAGES


def test_crlf_lines_are_accepted() -> None:
    assert frames(LineDecoder().feed(b'{"a":1}\r\n')) == [{"a": 1}]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"hello", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[1, 2]", "not an object"),
        (b'"text"', "not an object"),
        (b"", "empty line"),
        (b'{"x": NaN}', "not JSON"),
        (b"[" * 100_000, "JSON"),
    ],
)
def test_garbage_lines_are_violations(line: bytes, reason: str) -> None:
    event = decode_line(line)
    assert isinstance(event, Violation)
    assert reason in event.reason


def test_over_long_line_is_one_violation_then_decoder_resynchronises() -> None:
    decoder = LineDecoder(line_bytes_max=100)
    events = decoder.feed(b"x" * 60)
    events += decoder.feed(b"y" * 60)  # crosses the limit here, with no newline yet
    events += decoder.feed(b"z" * 1000)  # still the same line: discarded, no new event
    events += decoder.feed(b'\n{"ok":true}\n')
    assert len(events) == 2
    assert isinstance(events[0], Violation) and "longer than 100" in events[0].reason
    assert events[1] == Frame({"ok": True})
    assert decoder.buffered_bytes == 0


def test_over_long_line_in_one_chunk() -> None:
    decoder = LineDecoder(line_bytes_max=10)
    events = decoder.feed(b"a" * 50 + b'\n{"b":2}\n')
    assert isinstance(events[0], Violation)
    assert events[1:] == [Frame({"b": 2})]


def test_line_exactly_at_the_limit_is_accepted() -> None:
    body = {"k": "x" * 20}
    line = encode_line(body)
    decoder = LineDecoder(line_bytes_max=len(line) - 1)
    assert frames(decoder.feed(line)) == [body]


def test_encode_refuses_lines_over_the_limit() -> None:
    with pytest.raises(LineTooLong):
        encode_line({"k": "x" * 100}, line_bytes_max=50)


def test_data_after_end_is_a_violation() -> None:
    decoder = LineDecoder()
    decoder.end()
    (event,) = decoder.feed(b"{}\n")
    assert isinstance(event, Violation)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_garbage_gives_events_never_exceptions(data: bytes, chunk: int) -> None:
    """The fuzz invariant: any bytes in any chunking give frames or violations, nothing else,
    and the buffer never outgrows the line limit."""
    decoder = LineDecoder(line_bytes_max=256)
    events = []
    for i in range(0, len(data), chunk):
        events += decoder.feed(data[i : i + chunk])
        assert decoder.buffered_bytes <= 256
    events += decoder.end()
    assert all(isinstance(e, Frame | Violation) for e in events)
    # Every newline-terminated line produced exactly one event (over-long ones included).
    complete_lines = data.count(b"\n")
    assert len(events) >= min(1, complete_lines)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=8),
    st.integers(min_value=1, max_value=17),
)
def test_any_objects_round_trip_in_any_chunking(
    bodies: list[dict[str, object]], chunk: int
) -> None:
    data = b"".join(encode_line(b) for b in bodies)
    decoder = LineDecoder()
    events = []
    for i in range(0, len(data), chunk):
        events += decoder.feed(data[i : i + chunk])
    assert frames(events) == [json.loads(json.dumps(b)) for b in bodies]


# --- version 2: length-prefixed frames ---

BODIES = [b"\x81\xa1v\x02", b"x" * 300, bytes(range(256))]
FRAMES = b"".join(encode_frame(b) for b in BODIES)


def bodies(events: list[Event]) -> list[bytes]:
    assert all(isinstance(e, BinaryFrame) for e in events), events
    return [e.data for e in events if isinstance(e, BinaryFrame)]


def test_frames_fed_whole() -> None:
    decoder = FrameDecoder()
    assert bodies(decoder.feed(FRAMES)) == BODIES
    assert decoder.buffered_bytes == 0 and decoder.end() == []


def test_frames_fed_byte_by_byte() -> None:
    decoder = FrameDecoder()
    events: list[Event] = []
    for i in range(len(FRAMES)):
        events += decoder.feed(FRAMES[i : i + 1])
    assert bodies(events) == BODIES
    assert decoder.end() == []


def test_trailing_partial_frame_waits_then_is_a_violation_at_end() -> None:
    decoder = FrameDecoder()
    partial = encode_frame(b"abcdef")[:7]
    assert bodies(decoder.feed(FRAMES + partial)) == BODIES
    assert decoder.buffered_bytes == 7
    assert bodies(decoder.feed(b"")) == []
    (event,) = decoder.end()
    assert isinstance(event, Violation) and "inside a frame" in event.reason
    (after,) = decoder.feed(b"more")
    assert isinstance(after, Violation) and "after end" in after.reason


def test_trailing_frame_completes_on_next_feed() -> None:
    decoder = FrameDecoder()
    first = decoder.feed(FRAMES[:-5])
    assert decoder.buffered_bytes > 0
    rest = decoder.feed(FRAMES[-5:])
    assert bodies(first + rest) == BODIES and decoder.buffered_bytes == 0


def test_frame_exactly_at_the_limit_is_accepted_and_one_more_byte_is_not() -> None:
    assert bodies(FrameDecoder(frame_bytes_max=10).feed(encode_frame(b"0123456789"))) == [
        b"0123456789"
    ]
    decoder = FrameDecoder(frame_bytes_max=10)
    (event,) = decoder.feed(struct.pack(">I", 11) + b"x" * 11 + encode_frame(b"ok"))
    assert isinstance(event, Violation) and "11 bytes exceeds the 10-byte limit" in event.reason
    # The boundaries are lost: nothing more is read, and nothing is kept.
    assert decoder.feed(encode_frame(b"ok")) == [] and decoder.buffered_bytes == 0
    assert decoder.end() == []


def test_an_empty_frame_is_a_violation() -> None:
    (event,) = FrameDecoder().feed(b"\x00\x00\x00\x00")
    assert isinstance(event, Violation) and event.reason == "empty frame"


def test_a_huge_length_is_refused_before_anything_is_buffered() -> None:
    decoder = FrameDecoder()
    (event,) = decoder.feed(b"\xff\xff\xff\xff" + b"x" * 100)
    assert isinstance(event, Violation) and decoder.buffered_bytes == 0


def test_encode_frame_refuses_frames_over_the_limit() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 11, frame_bytes_max=10)
    assert issubclass(FrameTooLarge, Unsendable) and issubclass(LineTooLong, Unsendable)


def test_a_line_decoder_hands_over_its_unfinished_line() -> None:
    decoder = LineDecoder()
    assert frames(decoder.feed(b'{"a":1}\n\x00\x00')) == [{"a": 1}]
    assert decoder.take_pending() == b"\x00\x00"
    assert decoder.buffered_bytes == 0 and decoder.end() == []


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_frame_garbage_gives_events_never_exceptions(data: bytes, chunk: int) -> None:
    """The fuzz invariant for version 2: any bytes in any chunking give frames or at most one
    violation, nothing else, and the buffer never outgrows a frame and its header."""
    decoder = FrameDecoder(frame_bytes_max=256)
    events: list[Event] = []
    for i in range(0, len(data), chunk):
        events += decoder.feed(data[i : i + chunk])
        assert decoder.buffered_bytes <= 256 + FRAME_HEADER_BYTES + chunk
    events += decoder.end()
    assert all(isinstance(e, BinaryFrame | Violation) for e in events)
    # At most one violation, and nothing after it.
    assert all(isinstance(e, BinaryFrame) for e in events[:-1])
    # Every frame read is exactly what its header said, back to back from the start.
    read = [e.data for e in events if isinstance(e, BinaryFrame)]
    assert data.startswith(b"".join(encode_frame(b, 256) for b in read))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.integers(1, 17))
def test_any_frames_round_trip_in_any_chunking(payloads: list[bytes], chunk: int) -> None:
    data = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder()
    events: list[Event] = []
    for i in range(0, len(data), chunk):
        events += decoder.feed(data[i : i + chunk])
    assert bodies(events) == payloads and decoder.end() == []
