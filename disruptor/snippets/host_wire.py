"""The wire between a peer and its snippet hosts: length-prefixed MessagePack frames, as data.

Sans-IO: bytes in, frames out (``FrameReader``), frames in, bytes out (``encode_frame``); the
host's blocking read of one request (``read_frame``) is the only function that touches a stream.

A frame is a 4-byte big-endian body length, one byte of wire version, then the body: one
MessagePack array ``[tag, field...]`` (a msgspec ``Struct``, ``array_like``, tagged with an
explicit, append-only number). A reply's values travel as ``msgspec.Raw``, the MessagePack array
exactly as the host encoded it, so the peer never decodes them.

Peer -> host: ``Run`` (one chunk, or a fold's values, carried as MessagePack ``bin``: opaque bytes
the peer never looks into and the host decodes itself, so a malformed chunk is the host's
``BadItems``, not a broken frame). Host -> peer: ``Ready`` once at start, then
per ``Run``: ``Rejected`` or ``BadItems`` (and nothing else), or ``Started``, ``Part``... ,
``Done``. A ``Part`` answers the items ``first .. first + n - 1`` of the chunk: ``values`` is one
MessagePack array of ``n`` values (nil where an item failed), ``errors`` pairs an item's offset in
the chunk with an index into ``infos``, the distinct errors of the part (items failing alike share
one).

Rule: every frame is bounded before it is read (``REQUEST_BYTES_MAX``, ``REPLY_BYTES_MAX``);
anything that is not a well-formed frame of the current version is a ``WireError``, never an
exception of another kind, so the peer can kill the host that sent it and carry on.
"""

from __future__ import annotations

import enum
import struct
from typing import IO, Annotated, Any, TypeVar

import msgspec

from ..chunks import CHUNK_BYTES_MAX

WIRE_VERSION = 1
HEADER = struct.Struct(">IB")
# A request: one chunk (at most CHUNK_BYTES_MAX) or a fold's values, plus the snippet's source.
REQUEST_BYTES_MAX = 64 * 1024 * 1024
# A reply part: its values (the host keeps a chunk's values within CHUNK_BYTES_MAX) and its
# errors (the host sends a part early once its distinct errors pass PART_ERRORS_BYTES).
REPLY_BYTES_MAX = CHUNK_BYTES_MAX + 4 * 1024 * 1024
PART_ERRORS_BYTES = 1024 * 1024
# Sizes of the text fields of an error (the host cuts longer ones).
ERROR_TEXT_MAX = 4096
TRACEBACK_CHARS_MAX = 16 * 1024
DETAIL_CHARS_MAX = 64 * 1024

# A part goes out at least this often while a chunk runs, so the peer sees progress.
PART_INTERVAL_S = 0.1


class WireError(Exception):
    """Bytes that are not a well-formed frame of this wire (the other side broke the protocol)."""


class Mode(enum.IntEnum):
    """What a ``Run`` asks for. Wire numbers: append only."""

    MAP = 1  # handle(item) for each item
    REDUCE = 2  # reduce(values) once
    COMBINE = 3  # combine(acc, value) folded over the values
    FOLD = 4  # reduce if the snippet has it, else combine
    CHECK = 5  # compile only


Text = Annotated[str, msgspec.Meta(max_length=ERROR_TEXT_MAX)]
Offset = Annotated[int, msgspec.Meta(ge=0)]


NIL = b"\xc0"


class Run(msgspec.Struct, array_like=True, frozen=True, tag=16):
    """Run a snippet over ``count`` items (``items``: their MessagePack array), from ``first``."""

    sha1: Annotated[str, msgspec.Meta(max_length=40)]
    source: Annotated[str, msgspec.Meta(max_length=REQUEST_BYTES_MAX)]
    mode: Mode
    timeout_s: Annotated[float, msgspec.Meta(gt=0)]
    count: Offset
    items: bytes
    first: Offset = 0
    # One part per item, so that a watchdog kill names the item that hung.
    flush_each: bool = False
    # Room left in the chunk's values array (the peer's share of it already answered).
    values_bytes_max: Offset = CHUNK_BYTES_MAX
    # COMBINE only: the fold's start (a MessagePack value), if ``has_initial``.
    has_initial: bool = False
    initial: bytes = NIL


class Ready(msgspec.Struct, array_like=True, frozen=True, tag=1):
    pid: int


class Rejected(msgspec.Struct, array_like=True, frozen=True, tag=2):
    """The snippet does not compile or lacks its function."""

    detail: Annotated[str, msgspec.Meta(max_length=DETAIL_CHARS_MAX)]


class BadItems(msgspec.Struct, array_like=True, frozen=True, tag=3):
    """The items are not a MessagePack array of ``count`` values."""

    detail: Text


class Started(msgspec.Struct, array_like=True, frozen=True, tag=4):
    cached: bool


class ErrorWire(msgspec.Struct, array_like=True, frozen=True):
    kind: Annotated[str, msgspec.Meta(max_length=64)]
    type: Text
    message: Text
    traceback: Annotated[str, msgspec.Meta(max_length=TRACEBACK_CHARS_MAX)] | None = None


class Part(msgspec.Struct, array_like=True, frozen=True, tag=5):
    first: Offset
    values: msgspec.Raw
    # (offset in the chunk, index into ``infos``), offsets increasing.
    errors: list[tuple[Offset, Offset]] = []
    infos: list[ErrorWire] = []


class Done(msgspec.Struct, array_like=True, frozen=True, tag=6):
    # The host saw a MemoryError and exits: the next run gets a fresh interpreter.
    recycle: bool = False


HostFrame = Ready | Rejected | BadItems | Started | Part | Done

_encoder = msgspec.msgpack.Encoder()
_reply_decoder = msgspec.msgpack.Decoder(HostFrame)
_request_decoder = msgspec.msgpack.Decoder(Run)
F = TypeVar("F")


def encode_frame(message: msgspec.Struct) -> bytes:
    """One frame: header, then the message's MessagePack body."""
    buffer = bytearray(HEADER.size)
    _encoder.encode_into(message, buffer, HEADER.size)
    HEADER.pack_into(buffer, 0, len(buffer) - HEADER.size, WIRE_VERSION)
    return bytes(buffer)


def _decode(decoder: msgspec.msgpack.Decoder[F], body: bytes) -> F:
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise WireError(f"not a frame of this wire: {exc}") from None


def _check_header(header: bytes | bytearray | memoryview, bytes_max: int) -> int:
    length, version = HEADER.unpack_from(header)
    if version != WIRE_VERSION:
        raise WireError(f"wire version {version}, expected {WIRE_VERSION}")
    if length > bytes_max:
        raise WireError(f"a frame of {length} bytes exceeds {bytes_max}")
    return int(length)


class FrameReader:
    """Bytes from a host in, its frames out (the peer's side; fed as the pipe gives bytes)."""

    def __init__(self, bytes_max: int = REPLY_BYTES_MAX) -> None:
        self.bytes_max = bytes_max
        self._buffer = bytearray()
        self._start = 0
        self.broken = False

    def feed(self, data: bytes) -> None:
        if self._start and self._start * 2 >= len(self._buffer):
            # Drop what was already read once it is most of the buffer (amortised O(1)).
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer) - self._start

    def next_frame(self) -> HostFrame | None:
        """The next complete frame, or None until more bytes come; ``WireError`` for garbage.

        After a ``WireError`` the stream is out of step for good: every later call raises too.
        """
        if self.broken:
            raise WireError("the stream broke earlier")
        start = self._start
        if len(self._buffer) - start < HEADER.size:
            return None
        try:
            header = bytes(self._buffer[start : start + HEADER.size])
            length = _check_header(header, self.bytes_max)
            end = start + HEADER.size + length
            if len(self._buffer) < end:
                return None
            with memoryview(self._buffer) as view:  # one copy, and the buffer stays resizable
                body = bytes(view[start + HEADER.size : end])
            self._start = end
            return _decode(_reply_decoder, body)
        except WireError:
            self.broken = True
            raise


def decode_reply(frame: bytes) -> HostFrame:
    """One whole frame from a host (for tests and tools)."""
    reader = FrameReader()
    reader.feed(frame)
    found = reader.next_frame()
    if found is None or reader.pending_bytes:
        raise WireError("not exactly one frame")
    return found


def read_frame(stream: IO[bytes], bytes_max: int = REQUEST_BYTES_MAX) -> Run | None:
    """The host's side: block for the next request; None at a clean end of the stream."""
    header = stream.read(HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise WireError("the stream ended inside a frame header")
    length = _check_header(header, bytes_max)
    body = stream.read(length)
    if len(body) < length:
        raise WireError("the stream ended inside a frame")
    return _decode(_request_decoder, body)


def encode_raw(value: Any) -> msgspec.Raw:
    """A value as a MessagePack ``Raw`` (for a fold's start)."""
    return msgspec.Raw(_encoder.encode(value))
