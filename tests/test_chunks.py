"""Chunks and chunk results: encoded arrays whose shape is checked, joined without decoding."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from disruptor.chunks import (
    CHUNK_BYTES_MAX,
    Chunk,
    ChunkResult,
    array_header,
    decode,
    join_arrays,
    read_array_header,
)
from disruptor.errors import InvalidPayload
from disruptor.outcome import ErrorInfo, ItemOutcome

BOOM = ErrorInfo("task-failed", "ValueError", "boom")


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536, 70000])
def test_array_header_matches_msgpack_at_every_size_class(count: int) -> None:
    encoded = msgspec.msgpack.encode([None] * count)
    header = array_header(count)
    assert encoded.startswith(header)
    assert read_array_header(encoded) == (count, len(header))


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x80", b"\xdc\x00", b"\xdd\x00\x00"])
def test_read_array_header_refuses_what_is_not_an_array(data: bytes) -> None:
    with pytest.raises(InvalidPayload):
        read_array_header(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.lists(st.lists(json_values, max_size=20), max_size=6))
def test_join_arrays_is_concatenation(parts: list[list[object]]) -> None:
    arrays = [msgspec.msgpack.encode(p) for p in parts] or [array_header(0)]
    joined = decode(join_arrays(arrays))
    assert joined == [x for p in parts for x in p]


def test_chunk_round_trip_and_split_keep_order() -> None:
    items = list(range(1000))
    chunk = Chunk.of(items)
    assert chunk.count == 1000
    assert chunk.items() == items
    parts = chunk.split(300)
    assert [p.count for p in parts] == [300, 300, 300, 100]
    assert [x for p in parts for x in p.items()] == items
    assert chunk.split(1000) == [chunk]
    assert chunk.take([5, 1, 999]).items() == [5, 1, 999]


def test_chunk_from_bytes_checks_the_claimed_count() -> None:
    data = msgspec.msgpack.encode([1, 2, 3])
    assert Chunk.from_bytes(data).count == 3
    with pytest.raises(InvalidPayload, match="said to hold 4"):
        Chunk.from_bytes(data, count=4)
    with pytest.raises(InvalidPayload, match="array"):
        Chunk.from_bytes(msgspec.msgpack.encode({"a": 1}))


def test_chunk_of_an_item_that_cannot_be_encoded_names_it() -> None:
    with pytest.raises(InvalidPayload, match="item 2"):
        Chunk.of([1, 2, object(), 4])
    with pytest.raises(InvalidPayload, match="item 0"):
        Chunk.of([2**70])


def test_chunk_larger_than_the_limit_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="exceeds"):
        Chunk.of(["x" * (CHUNK_BYTES_MAX // 2)] * 3)


def test_deeply_nested_input_is_invalid_payload_not_a_crash() -> None:
    deep = b"\x91" * 200_000 + b"\x90"
    with pytest.raises(InvalidPayload, match="MessagePack"):
        decode(deep)
    with pytest.raises(InvalidPayload):
        decode(b"\xc1")  # a reserved byte


def test_result_of_values_and_sparse_errors() -> None:
    result = ChunkResult.of([1, None, 3], [(1, BOOM)], peer="p:1")
    assert result.count == 3 and result.failures == 1
    assert result.values_list() == [1, None, 3]
    outcomes = result.outcomes()
    assert outcomes[0] == ItemOutcome(value=1, peer="p:1")
    assert outcomes[1] == ItemOutcome(error=BOOM, peer="p:1")
    assert result.take([2, 1]).outcomes() == [
        ItemOutcome(value=3, peer="p:1"),
        ItemOutcome(error=BOOM, peer="p:1"),
    ]


def test_a_value_that_cannot_be_encoded_fails_alone() -> None:
    result = ChunkResult.of([1, object(), math.nan, 2**70])
    assert result.values_list()[0] == 1
    assert math.isnan(result.values_list()[2])
    failed = dict(result.errors)
    assert sorted(failed) == [1, 3]
    assert failed[1].type == "TypeError"


def test_failed_result_has_one_error_per_item() -> None:
    result = ChunkResult.failed(20, BOOM)
    assert result.values_list() == [None] * 20
    assert [offset for offset, _ in result.errors] == list(range(20))


def test_checked_refuses_a_result_of_the_wrong_shape() -> None:
    values = msgspec.msgpack.encode([1, 2])
    assert ChunkResult.checked(2, values, [(1, BOOM)]).errors == ((1, BOOM),)
    with pytest.raises(InvalidPayload):
        ChunkResult.checked(3, values, [])
    with pytest.raises(InvalidPayload):
        ChunkResult.checked(2, values, [(2, BOOM)])
    with pytest.raises(InvalidPayload):
        ChunkResult.checked(2, values, [(0, BOOM), (0, BOOM)])


def test_from_outcomes_round_trips() -> None:
    outcomes = [ItemOutcome(value="a"), ItemOutcome(error=BOOM), ItemOutcome(value=[1])]
    assert [o.value for o in ChunkResult.from_outcomes(outcomes).outcomes()] == ["a", None, [1]]
    assert ChunkResult.from_outcomes(outcomes).outcomes()[1].error == BOOM
