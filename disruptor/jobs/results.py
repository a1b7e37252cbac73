"""A job's results as they arrive: whole chunk results kept as they came, each item once.

Execution is at-least-once (a task lost with its peer runs again elsewhere), so the rule this
module keeps is on the other side: the first result offered for an item wins and later ones are
dropped, and every accepted result is handed back as a ``Piece`` to deliver (stream) once.

The common case costs nothing per item: a task's result covers a contiguous range of items none
of which has a result yet, so it is kept whole (its values stay one encoded array) and the range
is marked in a byte per item. Only a retry of a few items, or a duplicate that overlaps results
already accepted, splits a result apart. Broadcast jobs have one result per peer instead
(``PeerResults``). No IO, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..chunks import ChunkResult, encode, join_arrays
from ..outcome import ErrorInfo, ItemOutcome


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0  # items whose result is an error

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "done": self.done, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class Piece:
    """Results accepted together: item ``indexes`` (a range, or a retry's few) and theirs."""

    indexes: Sequence[int]
    result: ChunkResult

    @property
    def start(self) -> int:
        return self.indexes[0] if len(self.indexes) else 0

    @property
    def contiguous(self) -> bool:
        return isinstance(self.indexes, range) and self.indexes.step == 1

    def errors(self) -> Iterator[tuple[int, ErrorInfo]]:
        """``(item index, error)`` for this piece's failed items."""
        for offset, error in self.result.errors:
            yield self.indexes[offset], error


class ResultTable:
    """One result per item of a job; ``offer`` keeps the first and says what it accepted."""

    def __init__(self, total: int) -> None:
        self._filled = bytearray(total)
        self.pieces: list[Piece] = []
        self.progress = Progress(total)

    def __len__(self) -> int:
        return len(self._filled)

    @property
    def complete(self) -> bool:
        return self.progress.done == self.progress.total

    def has(self, index: int) -> bool:
        return self._filled[index] != 0

    def offer(self, indexes: Sequence[int], result: ChunkResult) -> Piece | None:
        """Accept ``result`` for the items at ``indexes`` that have none yet; None if none."""
        if len(indexes) != result.count:
            raise ValueError(f"a result of {result.count} items offered for {len(indexes)}")
        if not indexes:
            return None
        if (
            isinstance(indexes, range)
            and indexes.step == 1
            and self._filled.find(1, indexes.start, indexes.stop) == -1
        ):
            self._filled[indexes.start : indexes.stop] = b"\x01" * len(indexes)
            return self._accept(Piece(indexes, result))
        keep = [n for n, index in enumerate(indexes) if not self._filled[index]]
        if not keep:
            return None
        if len(keep) == len(indexes):
            piece = Piece(indexes, result)
        else:
            piece = Piece(tuple(indexes[n] for n in keep), result.take(keep))
        for index in piece.indexes:
            self._filled[index] = 1
        return self._accept(piece)

    def _accept(self, piece: Piece) -> Piece:
        self.pieces.append(piece)
        self.progress.done += piece.result.count
        self.progress.failed += piece.result.failures
        return piece

    def missing(self, indexes: Sequence[int]) -> list[int]:
        return [index for index in indexes if not self._filled[index]]

    # --- the whole job's results, for answers ------------------------------------------------

    def values(self) -> list[Any]:
        """Every item's value in item order (None where it failed or has no result)."""
        values: list[Any] = [None] * len(self._filled)
        for piece in self.pieces:
            decoded = piece.result.values_list()
            if piece.contiguous:
                values[piece.indexes[0] : piece.indexes[0] + len(decoded)] = decoded
            else:
                for index, value in zip(piece.indexes, decoded, strict=True):
                    values[index] = value
        return values

    def packed_values(self) -> bytes:
        """Every value as one MessagePack array in item order, joined without decoding when the
        pieces are whole ranges that tile the job (the usual case)."""
        pieces = sorted(self.pieces, key=_start)
        position = 0
        for piece in pieces:
            if not piece.contiguous or piece.indexes[0] != position:
                return encode(self.values())
            position += len(piece.indexes)
        if position != len(self._filled):
            return encode(self.values())
        if not pieces:
            return encode([])
        return join_arrays([p.result.values for p in pieces])

    def errors(self) -> list[tuple[int, ErrorInfo, str | None]]:
        """``(item index, error, peer)`` for every failed item, in item order."""
        found = [(i, e, p.result.peer) for p in self.pieces for i, e in p.errors()]
        return sorted(found, key=lambda entry: entry[0])

    def runs(self) -> list[tuple[Sequence[int], str | None]]:
        """Which peer gave which items: ``(indexes, peer)`` per piece, in item order."""
        return [(p.indexes, p.result.peer) for p in sorted(self.pieces, key=_start)]

    def failed_indexes(self) -> set[int]:
        return {index for p in self.pieces for index, _ in p.errors()}

    def outcomes(self) -> list[ItemOutcome | None]:
        """One ``ItemOutcome`` per item (an object per item: for small jobs and tests)."""
        outcomes: list[ItemOutcome | None] = [None] * len(self._filled)
        for piece in self.pieces:
            for index, outcome in zip(piece.indexes, piece.result.outcomes(), strict=True):
                outcomes[index] = outcome
        return outcomes


class PeerResults:
    """A broadcast job's results: each peer's result for the whole item list, once."""

    def __init__(self, peers: Sequence[str]) -> None:
        self.peers = list(peers)
        self.by_peer: dict[str, ChunkResult] = {}
        self.progress = Progress(len(self.peers))

    @property
    def complete(self) -> bool:
        return self.progress.done == self.progress.total

    def has_peer(self, peer: str) -> bool:
        return peer in self.by_peer

    def offer(self, peer: str, result: ChunkResult) -> Piece | None:
        if peer in self.by_peer or peer not in self.peers:
            return None
        self.by_peer[peer] = result
        self.progress.done += 1
        if result.failures:
            self.progress.failed += 1
        return Piece(range(result.count), result)


def _start(piece: Piece) -> int:
    return piece.start
