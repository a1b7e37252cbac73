"""The host wire: frames whole, byte by byte, back to back; garbage is a WireError, nothing else."""

from __future__ import annotations

import contextlib
import io
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disruptor.snippets.host_wire import (
    HEADER,
    REPLY_BYTES_MAX,
    REQUEST_BYTES_MAX,
    WIRE_VERSION,
    BadItems,
    Done,
    ErrorWire,
    FrameReader,
    HostFrame,
    Mode,
    Part,
    Ready,
    Rejected,
    Run,
    Started,
    WireError,
    decode_reply,
    encode_frame,
    encode_raw,
    read_frame,
)

REPLIES: list[HostFrame] = [
    Ready(pid=4242),
    Rejected("snippet rejected: Line 1: SyntaxError"),
    BadItems("the items are not an array of 3 values"),
    Started(cached=True),
    Part(
        first=3,
        values=encode_raw([1, None, "x", None]),
        errors=[(4, 0), (6, 0)],
        infos=[ErrorWire("task-failed", "ZeroDivisionError", "division by zero (line 2)", "tb")],
    ),
    Done(recycle=False),
]


def stream_of(frames: list[HostFrame]) -> bytes:
    return b"".join(encode_frame(f) for f in frames)


def read_all(reader: FrameReader) -> list[HostFrame]:
    found = []
    while (frame := reader.next_frame()) is not None:
        found.append(frame)
    return found


def same(a: HostFrame, b: HostFrame) -> bool:
    """Frames are equal (a Raw compares by its bytes)."""
    if isinstance(a, Part) and isinstance(b, Part):
        return (a.first, bytes(a.values), a.errors, a.infos) == (
            b.first,
            bytes(b.values),
            b.errors,
            b.infos,
        )
    return a == b


def test_every_reply_round_trips_whole() -> None:
    reader = FrameReader()
    reader.feed(stream_of(REPLIES))
    found = read_all(reader)
    assert len(found) == len(REPLIES) and all(map(same, found, REPLIES))
    assert reader.pending_bytes == 0


def test_replies_fed_one_byte_at_a_time() -> None:
    reader = FrameReader()
    found = []
    for byte in stream_of(REPLIES):
        reader.feed(bytes([byte]))
        found += read_all(reader)
    assert len(found) == len(REPLIES) and all(map(same, found, REPLIES))


def test_a_frame_and_part_of_the_next_give_one_frame_and_wait() -> None:
    data = stream_of(REPLIES[:2])
    reader = FrameReader()
    reader.feed(data[:-3])
    assert read_all(reader) == [REPLIES[0]]
    assert reader.pending_bytes > 0
    reader.feed(data[-3:])
    assert read_all(reader) == [REPLIES[1]]


def test_the_header_carries_length_and_version() -> None:
    frame = encode_frame(Done(recycle=True))
    length, version = HEADER.unpack_from(frame)
    assert version == WIRE_VERSION and length == len(frame) - HEADER.size
    assert decode_reply(frame) == Done(recycle=True)


def test_another_version_is_refused() -> None:
    frame = bytearray(encode_frame(Done()))
    frame[4] = WIRE_VERSION + 1
    with pytest.raises(WireError, match="version"):
        decode_reply(bytes(frame))


def test_an_oversized_frame_is_refused_from_its_header_alone() -> None:
    reader = FrameReader()
    reader.feed(struct.pack(">IB", REPLY_BYTES_MAX + 1, WIRE_VERSION))
    with pytest.raises(WireError, match="exceeds"):
        reader.next_frame()
    # Out of step for good: no later bytes can make it read frames again.
    reader.feed(encode_frame(Done()))
    with pytest.raises(WireError):
        reader.next_frame()


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # a reserved byte
        msgspec.msgpack.encode([99, 1]),  # an unknown tag
        msgspec.msgpack.encode([1]),  # Ready without its pid
        msgspec.msgpack.encode([1, "four"]),  # a pid of the wrong type
        msgspec.msgpack.encode({"pid": 1}),  # a map, not an array
        msgspec.msgpack.encode([5, -1, [], [], []]),  # a negative offset
        msgspec.msgpack.encode([6, False]) + b"\x00",  # trailing bytes inside the frame
        msgspec.msgpack.encode([2, "x" * 70_000]),  # a rejection's detail too long
        b"\x91" * 5000 + b"\x90",  # deep nesting
        b"\x95\x05\x00" + b"\x91" * 500_000 + b"\x90\x90\x90",  # deep nesting inside a Raw
    ],
)
def test_malformed_bodies_are_wire_errors(body: bytes) -> None:
    with pytest.raises(WireError):
        decode_reply(HEADER.pack(len(body), WIRE_VERSION) + body)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_gives_frames_or_a_wire_error_and_nothing_else(data: bytes) -> None:
    reader = FrameReader()
    reader.feed(data)
    with contextlib.suppress(WireError):
        read_all(reader)


@settings(max_examples=100)
@given(st.binary(max_size=40), st.integers(0, 5))
def test_garbage_after_good_frames_keeps_the_good_ones(garbage: bytes, count: int) -> None:
    reader = FrameReader()
    reader.feed(stream_of(REPLIES[:count]) + garbage)
    found: list[HostFrame] = []
    try:
        while (frame := reader.next_frame()) is not None:
            found.append(frame)
    except WireError:
        pass
    assert all(map(same, found[:count], REPLIES[:count]))


def test_the_host_reads_one_request_at_a_time() -> None:
    run = Run("a" * 40, "def handle(item):\n    return 1\n", Mode.MAP, 1.5, 2, b"\x92\x01\x02")
    stream = io.BytesIO(encode_frame(run) * 2)
    first = read_frame(stream)
    assert first is not None and first.sha1 == run.sha1 and first.items == run.items
    assert read_frame(stream) is not None
    assert read_frame(stream) is None  # a clean end of the stream


@pytest.mark.parametrize("cut", [1, HEADER.size, HEADER.size + 3])
def test_a_request_cut_short_is_a_wire_error(cut: int) -> None:
    frame = encode_frame(Run("a" * 40, "x = 1\n", Mode.CHECK, 1.0, 0, b"\x90"))
    with pytest.raises(WireError):
        read_frame(io.BytesIO(frame[:cut]))


def test_a_request_over_its_limit_is_refused_before_its_body_is_read() -> None:
    header = HEADER.pack(REQUEST_BYTES_MAX + 1, WIRE_VERSION)
    with pytest.raises(WireError, match="exceeds"):
        read_frame(io.BytesIO(header))


def test_a_reply_is_not_a_request() -> None:
    with pytest.raises(WireError):
        read_frame(io.BytesIO(encode_frame(Done())))
