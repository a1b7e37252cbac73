"""Putting one chunk's result together from the parts hosts send, and the items the peer blames.

Sans-IO: parts in (``add``), blames in (``fail``), one ``ChunkResult`` out. The values stay
encoded: each part's array is checked by its header and joined to the others without decoding.

Rule: the result has exactly one value slot per item, in order. A part must start where the last
one ended and stay inside the chunk, its error offsets must be increasing, inside the part and
point at a listed error, and the joined values must stay within ``CHUNK_BYTES_MAX``; anything
else is a ``WireError`` (the host broke the protocol), and nothing of the bad part is kept.
"""

from __future__ import annotations

from ..chunks import CHUNK_BYTES_MAX, ChunkResult, array_header, read_array_header
from ..errors import InvalidPayload
from ..outcome import ErrorInfo
from .host_wire import Part, WireError

_NIL = b"\xc0"


class ChunkCollector:
    def __init__(self, count: int, values_bytes_max: int = CHUNK_BYTES_MAX) -> None:
        self.count = count
        self.values_bytes_max = values_bytes_max
        # The first item without a result yet.
        self.next = 0
        self._segments: list[bytes | memoryview] = []
        self._bytes = len(array_header(count))
        self._errors: list[tuple[int, ErrorInfo]] = []

    @property
    def complete(self) -> bool:
        return self.next >= self.count

    @property
    def values_bytes_left(self) -> int:
        """Room for the values of the items still to come."""
        return self.values_bytes_max - self._bytes

    def add(self, part: Part) -> int:
        """Take a host's part; returns how many items it answered."""
        data = memoryview(part.values)
        try:
            found, header = read_array_header(data)
        except InvalidPayload:
            raise WireError("a part's values are not a MessagePack array") from None
        if part.first != self.next:
            raise WireError(f"a part starts at item {part.first}, expected {self.next}")
        end = part.first + found
        if found == 0 or end > self.count:
            raise WireError(f"a part of {found} values does not fit a chunk of {self.count}")
        if self._bytes + len(data) - header > self.values_bytes_max:
            raise WireError(f"a chunk's values exceed {self.values_bytes_max} bytes")
        infos = [
            ErrorInfo(info.kind, info.type, info.message, info.traceback) for info in part.infos
        ]
        errors: list[tuple[int, ErrorInfo]] = []
        last = part.first - 1
        for offset, index in part.errors:
            if not last < offset < end or index >= len(infos):
                raise WireError(f"a part names item {offset} or error {index} wrongly")
            errors.append((offset, infos[index]))
            last = offset
        self._segments.append(data[header:])
        self._bytes += len(data) - header
        self._errors.extend(errors)
        self.next = end
        return found

    def fail(self, error: ErrorInfo, count: int = 1) -> None:
        """The next ``count`` items failed with ``error`` (blamed by the peer, or never run)."""
        count = min(count, self.count - self.next)
        if count <= 0:
            return
        self._segments.append(_NIL * count)
        self._bytes += count
        self._errors.extend((offset, error) for offset in range(self.next, self.next + count))
        self.next += count

    def fail_rest(self, error: ErrorInfo) -> None:
        self.fail(error, self.count - self.next)

    def result(self) -> ChunkResult:
        """The chunk's result (items never answered are failed with a ``no result`` error)."""
        if not self.complete:
            self.fail_rest(ErrorInfo("snippet-budget", "SnippetBudgetExceeded", "no result"))
        values = array_header(self.count) + b"".join(self._segments)
        return ChunkResult(self.count, values, tuple(self._errors))
