"""Reply parts: a slot per item, shared error entries, tripped items failed, room kept."""

from __future__ import annotations

from typing import Any

import msgspec

from disruptor.snippets.host_parts import PartBuffer, PartWriter, error_wire, failed_part
from disruptor.snippets.host_wire import TRACEBACK_CHARS_MAX, ErrorWire, Part

BOOM = error_wire("task-failed", "ValueError", "boom")


def writer(sent: list[Any], count: int = 100, room: int = 1 << 20) -> PartWriter:
    return PartWriter(sent.append, count, 0, room, item_bytes_max=1000, timeout_s=2.0)


def decoded(part: Part) -> tuple[list[Any], dict[int, ErrorWire]]:
    values = msgspec.msgpack.decode(part.values)
    return values, {offset: part.infos[index] for offset, index in part.errors}


def test_a_part_holds_values_and_its_errors_once_each() -> None:
    sent: list[Part] = []
    buffer = PartBuffer(0)
    buffer.values += [1, 2]
    buffer.fail(BOOM)
    buffer.values.append(4)
    buffer.fail(BOOM)
    writer(sent).send(buffer)
    (part,) = sent
    values, errors = decoded(part)
    assert values == [1, 2, None, 4, None]
    assert errors == {2: BOOM, 4: BOOM} and part.infos == [BOOM]


def test_an_item_whose_budget_ran_out_fails_even_if_it_returned() -> None:
    sent: list[Part] = []
    buffer = PartBuffer(10)
    buffer.values += ["a", "escaped", "c"]
    writer(sent).send(buffer, tripped=[11, 99])
    values, errors = decoded(sent[0])
    assert values == ["a", None, "c"]
    assert errors[11].kind == "snippet-budget" and "2s" in errors[11].message


def test_values_that_are_not_data_fail_alone() -> None:
    sent: list[Part] = []
    buffer = PartBuffer(0)
    buffer.values += [1, object(), "x" * 2000, [1, 2]]
    writer(sent).send(buffer)
    values, errors = decoded(sent[0])
    assert values == [1, None, None, [1, 2]]
    assert "object" in errors[1].message and "larger than" in errors[2].message


def test_values_past_the_chunks_room_fail_and_later_small_ones_still_fit() -> None:
    sent: list[Part] = []
    # Three items: a nil each is reserved (3 bytes), plus 12 bytes of room beyond that.
    out = writer(sent, count=3, room=3 + 12)
    buffer = PartBuffer(0)
    buffer.values += ["x" * 10, "y" * 10, 7]
    out.send(buffer)
    values, errors = decoded(sent[0])
    assert values == ["x" * 10, None, 7]
    assert list(errors) == [1] and "exceed" in errors[1].message


def test_a_failed_run_shares_one_error_entry() -> None:
    values, errors = decoded(failed_part(5, 1000, BOOM))
    assert values == [None] * 1000 and sorted(errors) == list(range(5, 1005))


def test_errors_are_cut_to_the_wire_sizes_keeping_the_end() -> None:
    long = error_wire("task-failed", "E" * 10_000, "m" * 10_000, "t" * 100_000 + "THE END")
    assert len(long.type) <= 4096 and len(long.message) <= 4096
    assert long.traceback is not None and len(long.traceback) <= TRACEBACK_CHARS_MAX
    assert long.traceback.endswith("THE END")
