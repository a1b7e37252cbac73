"""The caller's end of a multiplexed stream reads frames with their bodies still encoded."""

from __future__ import annotations

import msgspec

from disruptor.link.frames import _decoder


def test_frames_keep_their_bodies_encoded_and_tolerate_a_missing_one() -> None:
    body = {"values": [1, 2, 3], "peer": "p:1"}
    message = msgspec.msgpack.encode(
        [
            {"ref": 1, "type": "done", "body": body},
            {"ref": 2, "type": "error", "problem": {"type": "urn:disruptor:problem:overloaded"}},
            {"ref": 3, "type": "piece", "body": [1]},
        ]
    )
    done, error, piece = _decoder.decode(message)
    assert msgspec.msgpack.decode(bytes(done.body)) == body
    assert error.type == "error" and bytes(error.body) == b"" and error.problem is not None
    assert piece.ref == 3 and msgspec.msgpack.decode(bytes(piece.body)) == [1]
