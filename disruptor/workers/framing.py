"""The worker protocol's two framings: bytes in, frames or protocol violations out; never an
exception.

Version 1 (``LineDecoder``): one JSON object per ``\\n``-terminated UTF-8 line, no longer than
``LINE_BYTES_MAX``. A line that is too long, not UTF-8, not JSON, or not an object becomes one
``Violation`` event and the decoder resynchronises at the next newline.

Version 2 (``FrameDecoder``): a 4-byte big-endian length, then that many bytes (one MessagePack
map, checked by ``messages``), no longer than ``FRAME_BYTES_MAX``. A length over the limit (or
zero) is one ``Violation``; there is no delimiter to resynchronise on, so the decoder says nothing
more after it (the session kills the worker anyway).

Either way, whatever a worker writes, the reader's memory stays bounded by the limit. No IO here:
the caller feeds bytes and acts on the events.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

# The largest line either side may write, newline excluded. Large enough for a batch of sizeable
# items; small enough that a runaway writer cannot make the peer buffer much.
LINE_BYTES_MAX = 16 * 1024 * 1024
# The largest version 2 frame either side may write, its 4-byte length excluded: the same bound
# as a line, so one chunk (``chunks.CHUNK_BYTES_MAX``) fits with a little to spare or is split.
FRAME_BYTES_MAX = 16 * 1024 * 1024
FRAME_HEADER_BYTES = 4
# How much of a bad line a violation quotes (for the error message and the log).
EXCERPT_BYTES = 80


@dataclass(frozen=True)
class Frame:
    """One well-formed line: a JSON object."""

    body: dict[str, Any]


@dataclass(frozen=True)
class BinaryFrame:
    """One whole version 2 frame: its body, not yet decoded."""

    data: bytes


@dataclass(frozen=True)
class Violation:
    """The other side broke the framing rules; ``reason`` says how, ``excerpt`` shows a bit."""

    reason: str
    excerpt: bytes = b""


Event = Frame | BinaryFrame | Violation


class LineDecoder:
    """Incremental decoder of NDJSON lines with a bound on every line."""

    def __init__(self, line_bytes_max: int = LINE_BYTES_MAX) -> None:
        self.line_bytes_max = line_bytes_max
        self._buffer = bytearray()
        # True while skipping the rest of an over-long line up to its newline.
        self._discarding = False
        self._ended = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        """Take the next chunk of the stream and return the events it completes."""
        if self._ended:
            return [Violation("data after end of stream")] if data else []
        events: list[Event] = []
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            if self._discarding:
                if newline >= 0:
                    self._discarding = False
                start = end + 1
                continue
            if len(self._buffer) + (end - start) > self.line_bytes_max:
                events.append(
                    Violation(
                        f"line longer than {self.line_bytes_max} bytes",
                        bytes(self._buffer[:EXCERPT_BYTES] or data[start : start + EXCERPT_BYTES]),
                    )
                )
                self._buffer.clear()
                self._discarding = newline < 0
                start = end + 1
                continue
            self._buffer += data[start:end]
            if newline < 0:
                break
            line = bytes(self._buffer)
            self._buffer.clear()
            events.append(decode_line(line))
            start = newline + 1
        return events

    def end(self) -> list[Event]:
        """The stream closed: an unterminated last line is a violation, not a message."""
        self._ended = True
        if self._buffer:
            excerpt = bytes(self._buffer[:EXCERPT_BYTES])
            self._buffer.clear()
            return [Violation("stream ended inside a line (no final newline)", excerpt)]
        return []

    def take_pending(self) -> bytes:
        """Hand over the bytes of an unfinished line (the stream changes framing here)."""
        pending = b"" if self._discarding else bytes(self._buffer)
        self._buffer.clear()
        self._discarding = False
        return pending


def decode_line(line: bytes) -> Event:
    """One line (without its newline) to a ``Frame`` or a ``Violation``."""
    excerpt = line[:EXCERPT_BYTES]
    if line.endswith(b"\r"):
        line = line[:-1]  # tolerate CRLF writers: the CR is not part of the JSON
    if not line.strip():
        return Violation("empty line", excerpt)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Violation(f"line is not UTF-8 ({exc.reason} at byte {exc.start})", excerpt)
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        return Violation(f"line is not JSON ({exc})", excerpt)
    except RecursionError:
        return Violation("line nests JSON too deeply", excerpt)
    if not isinstance(body, dict):
        return Violation(f"line is JSON {type(body).__name__}, not an object", excerpt)
    return Frame(body)


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; accepting them would only move the failure downstream.
    raise ValueError(f"{name} is not JSON")


class Unsendable(ValueError):
    """A call that cannot be written to this worker: too large, or items its framing cannot hold."""


class LineTooLong(Unsendable):
    """We were asked to write a line over the limit (a local bug or an oversized item)."""


class FrameTooLarge(Unsendable):
    """We were asked to write a version 2 frame over the limit."""


def encode_line(body: dict[str, Any], line_bytes_max: int = LINE_BYTES_MAX) -> bytes:
    """One JSON object as one compact UTF-8 line with its newline."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(data) > line_bytes_max:
        raise LineTooLong(f"a {len(data)}-byte line exceeds the {line_bytes_max}-byte limit")
    return data + b"\n"


class FrameDecoder:
    """Incremental decoder of length-prefixed frames with a bound on every frame."""

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX) -> None:
        self.frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        # After a violation the frame boundaries are lost: nothing more is read.
        self._broken = False
        self._ended = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Event]:
        """Take the next chunk of the stream and return the events it completes."""
        if self._ended:
            return [Violation("data after end of stream")] if data else []
        if self._broken or not data:
            return []
        # The common case, whole frames in one read, is parsed straight from ``data``; only an
        # unfinished frame is kept, and it is appended to rather than copied again on each read.
        buffered = bool(self._buffer)
        if buffered:
            self._buffer += data
        source: bytes | bytearray = self._buffer if buffered else data
        events: list[Event] = []
        start = 0
        size = len(source)
        while size - start >= FRAME_HEADER_BYTES:
            (length,) = struct.unpack_from(">I", source, start)
            if length == 0 or length > self.frame_bytes_max:
                reason = (
                    "empty frame"
                    if length == 0
                    else f"frame of {length} bytes exceeds the {self.frame_bytes_max}-byte limit"
                )
                events.append(Violation(reason, bytes(source[start : start + EXCERPT_BYTES])))
                self._broken = True
                self._buffer.clear()
                return events
            end = start + FRAME_HEADER_BYTES + length
            if end > size:
                break
            events.append(BinaryFrame(bytes(source[start + FRAME_HEADER_BYTES : end])))
            start = end
        if buffered:
            del self._buffer[:start]
        elif start < size:
            self._buffer += data[start:]
        return events

    def end(self) -> list[Event]:
        """The stream closed: an unfinished last frame is a violation, not a message."""
        self._ended = True
        if self._buffer and not self._broken:
            excerpt = bytes(self._buffer[:EXCERPT_BYTES])
            self._buffer.clear()
            return [Violation("stream ended inside a frame", excerpt)]
        return []


def encode_frame(body: bytes, frame_bytes_max: int = FRAME_BYTES_MAX) -> bytes:
    """One frame: the body's length as 4 big-endian bytes, then the body."""
    if len(body) > frame_bytes_max:
        raise FrameTooLarge(f"a {len(body)}-byte frame exceeds the {frame_bytes_max}-byte limit")
    return struct.pack(">I", len(body)) + body
