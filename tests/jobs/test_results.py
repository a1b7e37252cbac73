"""The result table: each item's first result kept, whole chunks kept whole, answers in order."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from disruptor.chunks import ChunkResult
from disruptor.jobs.results import PeerResults, ResultTable
from disruptor.outcome import ErrorInfo

BOOM = ErrorInfo("task-failed", "ValueError", "boom")


def values(start: int, count: int) -> ChunkResult:
    return ChunkResult.of([i * 2 for i in range(start, start + count)], peer=f"p{start}:1")


def test_whole_ranges_are_kept_whole_and_joined_without_decoding() -> None:
    table = ResultTable(10)
    second = table.offer(range(5, 10), values(5, 5))
    first = table.offer(range(0, 5), values(0, 5))
    assert first is not None and second is not None
    assert first.result is not None and table.complete
    assert table.packed_values() == msgspec.msgpack.encode([i * 2 for i in range(10)])
    assert table.values() == [i * 2 for i in range(10)]
    assert [(list(ix), peer) for ix, peer in table.runs()] == [
        (list(range(5)), "p0:1"),
        (list(range(5, 10)), "p5:1"),
    ]


def test_a_duplicate_is_dropped_and_an_overlap_keeps_only_what_is_new() -> None:
    table = ResultTable(6)
    assert table.offer(range(0, 3), values(0, 3)) is not None
    assert table.offer(range(0, 3), values(0, 3)) is None
    piece = table.offer((2, 3, 4, 5), ChunkResult.of(["x", "y", "z", "w"], peer="q:1"))
    assert piece is not None and list(piece.indexes) == [3, 4, 5]
    assert table.values() == [0, 2, 4, "y", "z", "w"]
    assert table.progress.done == 6
    # Not tiled by whole ranges any more: the values are re-encoded in item order.
    assert msgspec.msgpack.decode(table.packed_values()) == [0, 2, 4, "y", "z", "w"]


def test_errors_come_in_item_order_with_their_peer() -> None:
    table = ResultTable(4)
    table.offer(range(2, 4), ChunkResult.of([None, 1], [(0, BOOM)], peer="b:1"))
    table.offer(range(0, 2), ChunkResult.of([None, 5], [(0, BOOM)], peer="a:1"))
    assert [(i, p) for i, _, p in table.errors()] == [(0, "a:1"), (2, "b:1")]
    assert table.progress.failed == 2 and table.failed_indexes() == {0, 2}
    outcomes = table.outcomes()
    assert outcomes[1] is not None and outcomes[1].value == 5 and outcomes[1].peer == "a:1"
    assert outcomes[2] is not None and outcomes[2].error == BOOM


def test_an_offer_of_the_wrong_size_is_a_bug() -> None:
    with pytest.raises(ValueError):
        ResultTable(3).offer(range(0, 3), values(0, 2))


@given(st.lists(st.tuples(st.integers(0, 49), st.integers(1, 20)), max_size=40))
def test_every_item_is_accepted_exactly_once_whatever_is_offered(
    offers: list[tuple[int, int]],
) -> None:
    table = ResultTable(50)
    accepted: list[int] = []
    for start, count in offers:
        stop = min(50, start + count)
        piece = table.offer(range(start, stop), ChunkResult.of(list(range(start, stop))))
        if piece is not None:
            accepted += list(piece.indexes)
    assert len(accepted) == len(set(accepted)) == table.progress.done
    kept = table.values()
    assert all(kept[i] == i for i in accepted)


def test_broadcast_keeps_one_result_per_peer() -> None:
    table = PeerResults(["a:1", "b:1"])
    assert table.offer("a:1", values(0, 3)) is not None
    assert table.offer("a:1", values(0, 3)) is None
    assert table.offer("c:1", values(0, 3)) is None
    assert not table.complete
    table.offer("b:1", ChunkResult.failed(3, BOOM, "b:1"))
    assert table.complete and table.progress.failed == 1
