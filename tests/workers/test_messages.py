"""The worker messages: encoded calls as the worker sees them, and any frame body checked into a
message or refused with ``BadMessage``, nothing else."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disruptor.chunks import Chunk
from disruptor.workers.messages import (
    MESSAGE_CHARS_MAX,
    TRACEBACK_CHARS_MAX,
    V2,
    BadMessage,
    CallError,
    PartsResult,
    Ready,
    call_body,
    parse_inbound,
    parse_inbound_v2,
    protocol_frame,
    shutdown_body,
)


def test_a_call_embeds_its_parts_as_they_are() -> None:
    parts = [Chunk.of([1, "a"]), Chunk.of([{"b": [None]}])]
    body = call_body(9, [p.data for p in parts])
    assert msgspec.msgpack.decode(body) == {
        "v": 2,
        "type": "call",
        "id": 9,
        "parts": [[1, "a"], [{"b": [None]}]],
    }
    assert parts[0].data in body and parts[1].data in body
    assert msgspec.msgpack.decode(shutdown_body()) == {"v": 2, "type": "shutdown"}
    assert protocol_frame(2) == {"v": 1, "type": "protocol", "version": 2}


def test_ready_lists_the_versions_a_worker_speaks() -> None:
    ready = parse_inbound({"v": 1, "type": "ready", "pid": 3, "protocols": [1, 2]})
    assert isinstance(ready, Ready) and ready.protocols == (1, 2)
    plain = parse_inbound({"v": 1, "type": "ready"})
    assert isinstance(plain, Ready) and plain.protocols == (1,)
    for bad in ("2", [], [True], ["2"], list(range(17))):
        with pytest.raises(BadMessage, match="protocols"):
            parse_inbound({"v": 1, "type": "ready", "protocols": bad})


def test_a_result_keeps_its_values_encoded_and_cuts_long_errors() -> None:
    values = msgspec.msgpack.encode([1, None])
    long = {"type": "E" * 500, "message": "m" * 10_000, "traceback": "t" * 100_000}
    body = msgspec.msgpack.encode(
        {
            "v": 2,
            "type": "result",
            "id": 4,
            "future_field": {"ignored": True},
            "parts": [{"values": msgspec.Raw(values), "errors": [[1, long]]}, {"error": {}}],
        }
    )
    message = parse_inbound_v2(body)
    assert isinstance(message, PartsResult) and message.id == 4
    first, second = message.parts
    assert first.values == values and first.count == 2
    ((offset, error),) = first.errors
    assert offset == 1 and len(error.type) == 200
    assert len(error.message) == MESSAGE_CHARS_MAX and len(error.traceback or "") == (
        TRACEBACK_CHARS_MAX
    )
    assert second.values is None and second.error is not None and second.error.type == "Error"
    failed = parse_inbound_v2(
        msgspec.msgpack.encode({"v": 2, "type": "error", "id": 5, "error": {"message": "m"}})
    )
    assert isinstance(failed, CallError) and failed.error.message == "m"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"v": 2, "type": "result", "id": 1}, "parts"),
        ({"v": 2, "type": "result", "id": -1, "parts": [{"values": 5}]}, "must be an array"),
        ({"v": 2, "type": "result", "id": 1, "parts": [{"errors": [[0]]}]}, "errors"),
        ({"v": 2, "type": "result", "id": 1, "parts": [{"error": {"type": 3}}]}, "type"),
        ({"v": 2, "type": "ready"}, "not a worker message"),
        ({"v": 3, "type": "error", "id": 1, "error": {}}, "version 3"),
    ],
)
def test_malformed_version_2_messages_are_refused(body: dict[str, Any], words: str) -> None:
    with pytest.raises(BadMessage, match=words):
        parse_inbound_v2(msgspec.msgpack.encode(body))


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(["v", "type", "id", "parts", "values", "errors", "error", "message"])
near_messages = st.dictionaries(
    keys,
    msgpack_values
    | st.sampled_from(["result", "error", "call"])
    | st.just(V2)
    | st.lists(st.dictionaries(keys, msgpack_values, max_size=3), max_size=3),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(near_messages)
def test_any_map_gives_a_message_or_bad_message(body: dict[str, Any]) -> None:
    try:
        message = parse_inbound_v2(msgspec.msgpack.encode(body))
    except BadMessage:
        return
    assert isinstance(message, PartsResult | CallError)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_message_or_bad_message(data: bytes) -> None:
    try:
        message = parse_inbound_v2(data)
    except BadMessage:
        return
    assert isinstance(message, PartsResult | CallError)
