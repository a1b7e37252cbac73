"""The job layer's messages: every bad field refused with its name and range; chunks untouched."""

from __future__ import annotations

import json

import msgspec
import pytest

from disruptor.chunks import Chunk
from disruptor.errors import InvalidPayload
from disruptor.jobs.wire import (
    JobSpec,
    TaskReply,
    TaskRequest,
    decode_json,
    decode_msgpack,
    encode_msgpack,
)
from disruptor.outcome import ErrorInfo

SHA1 = "a" * 40


def test_a_plain_json_job_decodes_with_defaults() -> None:
    spec = decode_json(
        json.dumps({"snippet": "def handle(x): return x", "items": [1]}).encode(), JobSpec
    )
    assert spec.items == [1] and spec.policy == "least-loaded" and spec.retries == 1
    assert spec.wait is True and spec.timeout_s is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            b'{"bundle": "' + SHA1.encode() + b'", "timeout_s": 1e999}',
            "timeout_s' must be a number",
        ),
        (b'{"bundle": "' + SHA1.encode() + b'", "timeout_s": 100000}', "at most 86400"),
        (b'{"bundle": "' + SHA1.encode() + b'", "timeout_s": -1}', "above 0"),
        (b'{"bundle": "' + SHA1.encode() + b'", "retries": 11}', "from 0 to 10"),
        (b'{"bundle": "' + SHA1.encode() + b'", "polcy": "x"}', "unknown field `polcy`"),
        (b'{"bundle": "xyz"}', "40 lowercase hex digits"),
        (b'{"bundle": "' + SHA1.encode() + b'", "items": 5}', "'items' must be an array"),
        (b'{"bundle": "' + SHA1.encode() + b'", "timeout_s": Infinity}', "not valid JSON"),
        (b'{"bundle": "aa', "not valid JSON"),
        (b"[1, 2]", "Expected `object`"),
    ],
)
def test_bad_fields_are_refused_naming_the_field_and_range(body: bytes, says: str) -> None:
    with pytest.raises(InvalidPayload, match=says.replace("(", r"\(")):
        decode_json(body, JobSpec)


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_deep_nesting_is_a_clear_refusal(depth: int) -> None:
    body = b'{"snippet": "x", "items": [' + b"[" * depth + b"]" * depth + b"]}"
    with pytest.raises(InvalidPayload, match="nests deeper"):
        decode_json(body, JobSpec)
    packed = b"\x82\xa7snippet\xa1x\xa5items\x91" + b"\x91" * depth + b"\x90"
    with pytest.raises(InvalidPayload, match="nests deeper"):
        decode_msgpack(packed, JobSpec)


def test_chunks_travel_as_raw_bytes() -> None:
    chunk = Chunk.of(list(range(50)))
    body = encode_msgpack({"bundle": SHA1, "chunks": [msgspec.Raw(chunk.data)]})
    spec = decode_msgpack(body, JobSpec)
    assert spec.chunks is not None and bytes(spec.chunks[0]) == chunk.data


def test_task_request_and_reply_round_trip() -> None:
    chunk = Chunk.of(["a", "b"])
    request = TaskRequest(
        job="j1",
        task="j1.0",
        attempt=1,
        coordinator="127.0.0.1:1111",
        count=2,
        items=msgspec.Raw(chunk.data),
        bundle=SHA1,
    )
    back = decode_msgpack(encode_msgpack(request), TaskRequest)
    assert back.count == 2 and bytes(back.items) == chunk.data and back.bundle == SHA1
    error = ErrorInfo("task-failed", "ValueError", "no", "Traceback...")
    reply = TaskReply(count=2, values=msgspec.Raw(b"\x92\x01\xc0"), errors=[(1, error)], peer="p:1")
    again = decode_msgpack(encode_msgpack(reply), TaskReply)
    assert again.errors == [(1, error)] and bytes(again.values) == b"\x92\x01\xc0"
