"""The host's reply parts: a run of results, encoded once, with its sparse, shared errors.

Rule: a part answers a contiguous run of items, one value slot each (nil where the item failed);
its values are encoded by ``convert.encode_values`` (exact types only, one encode in the common
case); an item whose value is not data, or whose time budget ran out even though it returned,
fails alone; and the chunk's values never outgrow the room the peer gave (``values_bytes_max``):
a nil is reserved for every item up front, so a failure always fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..chunks import array_header, read_array_header
from .convert import encode_values
from .host_wire import ERROR_TEXT_MAX, TRACEBACK_CHARS_MAX, ErrorWire, Part

_NIL = b"\xc0"


def error_wire(kind: str, type_: str, message: str, traceback: str | None = None) -> ErrorWire:
    """An error cut to the wire's sizes (a traceback keeps its end, where the error is)."""
    if traceback is not None and len(traceback) > TRACEBACK_CHARS_MAX:
        traceback = "...\n" + traceback[-(TRACEBACK_CHARS_MAX - 4) :]
    return ErrorWire(kind[:64], type_[:ERROR_TEXT_MAX], message[:ERROR_TEXT_MAX], traceback)


def _text_bytes(info: ErrorWire) -> int:
    return len(info.type) + len(info.message) + len(info.traceback or "") + 16


class PartBuffer:
    """Results of the items ``first``, ``first + 1``... not yet sent."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.values: list[Any] = []
        self.errors: dict[int, ErrorWire] = {}
        # Size of the distinct errors held: a part is sent early once they grow large.
        self.error_bytes = 0

    @property
    def end(self) -> int:
        return self.first + len(self.values)

    def fail(self, info: ErrorWire) -> None:
        """The next item failed."""
        self.errors[self.end] = info
        self.values.append(None)
        self.error_bytes += _text_bytes(info)


class PartWriter:
    """Turns buffers into ``Part`` frames for one run, within the chunk's room for values."""

    def __init__(
        self,
        emit: Callable[[msgspec.Struct], None],
        count: int,
        first: int,
        values_bytes_max: int,
        item_bytes_max: int,
        timeout_s: float,
    ) -> None:
        self.emit = emit
        self.item_bytes_max = item_bytes_max
        self.tripped = error_wire(
            "snippet-budget",
            "SnippetBudgetExceeded",
            f"ran longer than its time budget of {timeout_s:g}s",
        )
        # Room beyond one byte per item: every item's nil is reserved from the start.
        self.extra_bytes_left = values_bytes_max - (count - first)

    def send(self, buffer: PartBuffer, tripped: Sequence[int] = ()) -> None:
        """Send what ``buffer`` holds; ``tripped``: items whose budget ran out (they may have
        caught the stop and returned: they fail all the same)."""
        if not buffer.values:
            return
        for position in tripped:
            if buffer.first <= position < buffer.end and position not in buffer.errors:
                buffer.values[position - buffer.first] = None
                buffer.errors[position] = self.tripped
        data, bad = encode_values(buffer.values, self.item_bytes_max)
        for index, reason in bad:
            buffer.errors[buffer.first + index] = error_wire("task-failed", "TypeError", reason)
        _, header = read_array_header(data)
        extra = len(data) - header - len(buffer.values)
        if extra > self.extra_bytes_left:
            data = self._fit(buffer)
        else:
            self.extra_bytes_left -= extra
        self.emit(_part(buffer.first, data, buffer.errors))

    def _fit(self, buffer: PartBuffer) -> bytes:
        """Keep the values that still fit the chunk's room, in order; fail the others."""
        parts = [array_header(len(buffer.values))]
        for index, value in enumerate(buffer.values):
            offset = buffer.first + index
            data = _NIL
            if offset not in buffer.errors:
                encoded, bad = encode_values([value], self.item_bytes_max)
                item = encoded[1:]  # an array of one: a one-byte header
                if bad:
                    buffer.errors[offset] = error_wire("task-failed", "TypeError", bad[0][1])
                elif len(item) - 1 <= self.extra_bytes_left:
                    self.extra_bytes_left -= len(item) - 1
                    data = item
                else:
                    buffer.errors[offset] = error_wire(
                        "task-failed", "ValueError", "the chunk's results exceed their size limit"
                    )
            parts.append(data)
        return b"".join(parts)


def _part(first: int, data: bytes, errors: dict[int, ErrorWire]) -> Part:
    """A ``Part`` frame; items failing with the same error share one entry of ``infos``."""
    infos: list[ErrorWire] = []
    index_of: dict[ErrorWire, int] = {}
    pairs: list[tuple[int, int]] = []
    for offset in sorted(errors):
        info = errors[offset]
        index = index_of.get(info)
        if index is None:
            index = index_of[info] = len(infos)
            infos.append(info)
        pairs.append((offset, index))
    return Part(first, msgspec.Raw(data), pairs, infos)


def failed_part(first: int, count: int, info: ErrorWire) -> Part:
    """Items ``first .. first + count - 1`` all failed with ``info`` (one entry, shared)."""
    values = array_header(count) + _NIL * count
    return Part(first, msgspec.Raw(values), [(first + i, 0) for i in range(count)], [info])
