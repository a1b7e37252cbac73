"""Chunks: a run of a job's items, and what running them gave, each as one encoded array.

The fast path's unit. A chunk's items travel from the client to the handler as one MessagePack
array, and its results come back as one array of values (``nil`` where an item failed) plus a
sparse list of per-item errors, with the peer named once. Peers move these bytes without
building an object per item; they decode a chunk only where they must (a reduce, a JSON client,
a re-split after a failure, a worker that speaks only the JSON protocol).

Rules this module keeps:

- a ``ChunkResult`` has exactly one value slot per item of its chunk, and at most one error per
  offset, sorted by offset, every offset below ``count``;
- every chunk and every values array is bounded by ``CHUNK_BYTES_MAX``; the array header is
  checked against the count a chunk claims, so a short or long array is refused at once;
- encoding failures (a value MessagePack cannot hold) become per-item errors, never exceptions
  that lose the other items' results.

MessagePack carries what JSON carries and a little more (bytes, NaN, non-string keys); a JSON
client receives values converted as ``msgspec.json`` converts them (bytes as base64, NaN and
infinities as null).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from .errors import InvalidPayload, TaskFailed
from .outcome import ErrorInfo, ItemOutcome

# The media type of MessagePack bodies on the HTTP API (also accepted: the vnd. and x- forms).
MSGPACK = "application/msgpack"
MSGPACK_TYPES = frozenset({MSGPACK, "application/vnd.msgpack", "application/x-msgpack"})
# One chunk's items, or one chunk's values, encoded: the same bound as one worker frame.
CHUNK_BYTES_MAX = 16 * 1024 * 1024
# Items in one chunk. Large enough that a million items cost a thousand chunks, small enough that
# a lost chunk costs little to run again.
CHUNK_ITEMS_MAX = 100_000
# How deep a decoded value may nest. Deeper input is refused with a clear error instead of
# exhausting the C stack (the decoders' own recursion limit is the interpreter's).
NESTING_MAX = 256

_NIL = b"\xc0"
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


def array_header(count: int) -> bytes:
    """The MessagePack header of an array of ``count`` elements."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 0x10000:
        return b"\xdc" + struct.pack(">H", count)
    return b"\xdd" + struct.pack(">I", count)


def read_array_header(data: bytes | memoryview) -> tuple[int, int]:
    """``(count, header bytes)`` of the MessagePack array ``data`` starts with.

    Raises ``InvalidPayload`` when ``data`` does not start with an array header.
    """
    if not data:
        raise InvalidPayload("a chunk is empty: expected a MessagePack array")
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, 1
    if first == 0xDC and len(data) >= 3:
        return struct.unpack_from(">H", data, 1)[0], 3
    if first == 0xDD and len(data) >= 5:
        return struct.unpack_from(">I", data, 1)[0], 5
    raise InvalidPayload("a chunk must be a MessagePack array")


def join_arrays(arrays: Sequence[bytes]) -> bytes:
    """One MessagePack array holding the elements of ``arrays`` in turn, without decoding them."""
    if len(arrays) == 1:
        return arrays[0]
    total = 0
    bodies: list[memoryview] = []
    for data in arrays:
        count, header = read_array_header(data)
        total += count
        bodies.append(memoryview(data)[header:])
    return array_header(total) + b"".join(bodies)


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def decode(data: bytes | memoryview) -> Any:
    """Decode MessagePack; malformed or too deeply nested input is ``InvalidPayload``."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidPayload(f"not valid MessagePack: {exc}") from None


@dataclass(frozen=True, slots=True)
class Chunk:
    """``count`` items as one MessagePack array."""

    count: int
    data: bytes

    @classmethod
    def of(cls, items: Sequence[Any], first_index: int = 0) -> Chunk:
        """Encode ``items``; an item MessagePack cannot hold is ``InvalidPayload`` naming it
        (by its index in the job, when ``first_index`` says where the chunk starts)."""
        try:
            data = _encoder.encode(items)
        except (TypeError, OverflowError, ValueError):
            for offset, item in enumerate(items):
                try:
                    _encoder.encode(item)
                except (TypeError, OverflowError, ValueError) as exc:
                    index = first_index + offset
                    raise InvalidPayload(f"item {index} cannot be encoded: {exc}") from None
            raise
        if len(data) > CHUNK_BYTES_MAX:
            raise InvalidPayload(f"a chunk of {len(items)} items exceeds {CHUNK_BYTES_MAX} bytes")
        return cls(len(items), data)

    @classmethod
    def from_bytes(cls, data: bytes, count: int | None = None) -> Chunk:
        """A chunk received as bytes: its header checked (and against ``count``, if given)."""
        if len(data) > CHUNK_BYTES_MAX:
            raise InvalidPayload(f"a chunk exceeds {CHUNK_BYTES_MAX} bytes")
        found, _ = read_array_header(data)
        if count is not None and found != count:
            raise InvalidPayload(f"a chunk said to hold {count} items holds {found}")
        if found > CHUNK_ITEMS_MAX:
            raise InvalidPayload(f"a chunk holds {found} items; at most {CHUNK_ITEMS_MAX}")
        return cls(found, data)

    def items(self) -> list[Any]:
        items = decode(self.data)
        if not isinstance(items, list) or len(items) != self.count:
            raise InvalidPayload(f"a chunk said to hold {self.count} items does not")
        return items

    def take(self, offsets: Iterable[int]) -> Chunk:
        """The items at ``offsets`` as a chunk (decodes this one: for re-splits only)."""
        items = self.items()
        return Chunk.of([items[i] for i in offsets])

    def split(self, size: int) -> list[Chunk]:
        """Chunks of at most ``size`` items, in order (this one alone when it is small enough)."""
        if self.count <= size:
            return [self]
        items = self.items()
        return [Chunk.of(items[i : i + size]) for i in range(0, self.count, size)]


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """What running a chunk gave: every value in one array, failures apart, the peer once."""

    count: int
    values: bytes  # MessagePack array of ``count`` values, nil where the item failed
    errors: tuple[tuple[int, ErrorInfo], ...] = ()
    peer: str | None = None

    @classmethod
    def of(
        cls,
        values: Sequence[Any],
        errors: Sequence[tuple[int, ErrorInfo]] = (),
        peer: str | None = None,
    ) -> ChunkResult:
        """Encode ``values``; a value that cannot be encoded becomes that item's error."""
        try:
            data = _encoder.encode(values)
        except (TypeError, OverflowError, ValueError):
            data, errors = _encode_each(values, errors)
        result = cls(len(values), data, tuple(sorted(errors, key=_offset)), peer)
        if len(data) > CHUNK_BYTES_MAX:
            too_big = ErrorInfo(
                TaskFailed.slug, "ValueError", f"results exceed {CHUNK_BYTES_MAX} bytes"
            )
            return cls.failed(len(values), too_big, peer)
        return result

    @classmethod
    def failed(cls, count: int, error: ErrorInfo, peer: str | None = None) -> ChunkResult:
        """Every item of a chunk failed the same way."""
        values = array_header(count) + _NIL * count
        return cls(count, values, tuple((i, error) for i in range(count)), peer)

    @classmethod
    def from_outcomes(cls, outcomes: Sequence[ItemOutcome], peer: str | None = None) -> ChunkResult:
        values = [o.value if o.error is None else None for o in outcomes]
        errors = [(i, o.error) for i, o in enumerate(outcomes) if o.error is not None]
        return cls.of(values, errors, peer)

    @classmethod
    def checked(
        cls,
        count: int,
        values: bytes,
        errors: Sequence[tuple[int, ErrorInfo]],
        peer: str | None = None,
    ) -> ChunkResult:
        """A result received from elsewhere: its shape checked against the chunk it answers."""
        found, _ = read_array_header(values)
        if found != count:
            raise InvalidPayload(f"a result for {count} items holds {found} values")
        seen: set[int] = set()
        for offset, _error in errors:
            if not 0 <= offset < count or offset in seen:
                raise InvalidPayload(f"a result names item {offset} of {count} twice or wrongly")
            seen.add(offset)
        return cls(count, values, tuple(sorted(errors, key=_offset)), peer)

    @property
    def failures(self) -> int:
        return len(self.errors)

    def with_peer(self, peer: str) -> ChunkResult:
        return ChunkResult(self.count, self.values, self.errors, peer)

    def values_list(self) -> list[Any]:
        values = decode(self.values)
        if not isinstance(values, list) or len(values) != self.count:
            raise InvalidPayload(f"a result said to hold {self.count} values does not")
        return values

    def outcomes(self) -> list[ItemOutcome]:
        """One ``ItemOutcome`` per item (builds an object per item: not for the hot path)."""
        values = self.values_list()
        outcomes = [ItemOutcome(value=v, peer=self.peer) for v in values]
        for offset, error in self.errors:
            outcomes[offset] = ItemOutcome(error=error, peer=self.peer)
        return outcomes

    def take(self, offsets: Sequence[int]) -> ChunkResult:
        """The results of the items at ``offsets`` (in that order), as a result of its own."""
        values = self.values_list()
        by_offset = dict(self.errors)
        errors = [(n, by_offset[i]) for n, i in enumerate(offsets) if i in by_offset]
        return ChunkResult.of([values[i] for i in offsets], errors, self.peer)


def _offset(entry: tuple[int, ErrorInfo]) -> int:
    return entry[0]


def _encode_each(
    values: Sequence[Any], errors: Sequence[tuple[int, ErrorInfo]]
) -> tuple[bytes, list[tuple[int, ErrorInfo]]]:
    """Encode value by value; those that fail become errors (the slow path after a failure)."""
    parts = [array_header(len(values))]
    found = dict(errors)
    for offset, value in enumerate(values):
        try:
            parts.append(_encoder.encode(value))
        except (TypeError, OverflowError, ValueError) as exc:
            parts.append(_NIL)
            found[offset] = ErrorInfo(
                TaskFailed.slug, "TypeError", f"result cannot be encoded: {exc}"
            )
    return b"".join(parts), sorted(found.items())
