"""Putting a chunk's result together: parts joined without decoding, blames, and what is refused."""

from __future__ import annotations

import msgspec
import pytest

from disruptor.chunks import ChunkResult
from disruptor.outcome import ErrorInfo
from disruptor.snippets.collector import ChunkCollector
from disruptor.snippets.host_wire import ErrorWire, Part, WireError, encode_raw

BOOM = ErrorWire("task-failed", "ValueError", "boom (line 2)", "Traceback...")
KILLED = ErrorInfo("snippet-budget", "SnippetBudgetExceeded", "stopped by watchdog")


def part(first: int, values: list[object], errors: dict[int, ErrorWire] | None = None) -> Part:
    infos = list(dict.fromkeys((errors or {}).values()))
    pairs = [(offset, infos.index(info)) for offset, info in sorted((errors or {}).items())]
    return Part(first, encode_raw(values), pairs, infos)


def test_parts_and_blames_make_one_value_per_item_in_order() -> None:
    collector = ChunkCollector(7)
    assert collector.add(part(0, [10, None, 30], {1: BOOM})) == 3
    collector.fail(KILLED)  # the peer blamed item 3
    collector.add(part(4, [50, 60]))
    assert not collector.complete
    collector.fail_rest(KILLED)
    result = collector.result()
    assert result.values_list() == [10, None, 30, None, 50, 60, None]
    assert [(o, e.kind) for o, e in result.errors] == [
        (1, "task-failed"),
        (3, "snippet-budget"),
        (6, "snippet-budget"),
    ]
    assert result.errors[0][1] == ErrorInfo(
        "task-failed", "ValueError", "boom (line 2)", "Traceback..."
    )


def test_the_result_equals_the_chunk_layers_own_encoding() -> None:
    collector = ChunkCollector(40)
    collector.add(part(0, list(range(15))))
    collector.add(part(15, [str(i) for i in range(25)]))
    expected = ChunkResult.of(list(range(15)) + [str(i) for i in range(25)])
    assert collector.result() == expected


def test_a_result_never_answered_is_failed_not_left_short() -> None:
    result = ChunkCollector(3).result()
    assert result.values_list() == [None] * 3 and result.failures == 3


@pytest.mark.parametrize(
    "bad",
    [
        part(1, [1]),  # does not start where the last part ended
        part(0, [1, 2, 3, 4, 5]),  # longer than the chunk
        part(0, []),  # answers nothing
        Part(0, msgspec.Raw(msgspec.msgpack.encode({"a": 1}))),  # not an array
        Part(0, encode_raw([1, 2]), [(2, 0)], [BOOM]),  # an error outside the part
        Part(0, encode_raw([1, 2]), [(1, 0), (0, 0)], [BOOM]),  # offsets not increasing
        Part(0, encode_raw([1, 2]), [(1, 0), (1, 0)], [BOOM]),  # one offset twice
        Part(0, encode_raw([1, 2]), [(1, 1)], [BOOM]),  # no such error entry
    ],
)
def test_a_part_that_breaks_the_rules_is_a_wire_error_and_changes_nothing(bad: Part) -> None:
    collector = ChunkCollector(4)
    with pytest.raises(WireError):
        collector.add(bad)
    assert collector.next == 0
    collector.add(part(0, [1, 2, 3, 4]))
    assert collector.result().values_list() == [1, 2, 3, 4]


def test_values_beyond_the_chunk_limit_are_a_wire_error() -> None:
    collector = ChunkCollector(2, values_bytes_max=20)
    collector.add(part(0, ["x" * 10]))
    assert collector.values_bytes_left == 20 - 1 - 11  # the array header, then "x" * 10
    with pytest.raises(WireError, match="exceed"):
        collector.add(part(1, ["y" * 10]))
