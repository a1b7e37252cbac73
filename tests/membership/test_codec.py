"""The codec: round trips, limits, and every kind of bad frame dropped with a named reason."""

from __future__ import annotations

import contextlib
import random

import pytest

from disruptor.membership.codec import (
    FRAME_OVERHEAD_BYTES,
    CodecError,
    Keyring,
    decode_packet,
    decode_sync,
    encode_packet,
    encode_sync,
)
from disruptor.membership.messages import (
    INCARNATION_MAX,
    WIRE_VERSION,
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MemberRecord,
    MemberState,
    Nack,
    Packet,
    Ping,
    Suspect,
    SyncState,
)
from disruptor.membership.meta import PeerLoad, PeerMeta

NONCE = bytes(12)
META = PeerMeta(PeerLoad(1, 2, 3), ("a" * 40,), "0.1.0")
ALL = (
    Ping(1, "h:1"),
    IndirectPing(2, "h:2", "h:3", True),
    Ack(3),
    Nack(4),
    Suspect(5, "h:4", "h:5"),
    Alive(6, "h:6", META),
    Dead(7, "h:7", "h:7"),
)


def packet(*messages: object) -> Packet:
    return Packet("127.0.0.1:1111", 42, 7, 1_700_000_000_000, tuple(messages))  # type: ignore[arg-type]


def test_every_message_round_trips_through_a_sealed_frame() -> None:
    ring = Keyring("c", b"secret")
    frame = ring.seal(encode_packet(packet(*ALL)), NONCE)
    assert frame[0] == WIRE_VERSION
    assert decode_packet(ring.open(frame)) == packet(*ALL)


def test_wrong_key_other_cluster_and_tampering_fail_authentication() -> None:
    frame = Keyring("c", b"secret").seal(encode_packet(packet(Ack(1))), NONCE)
    for ring in (Keyring("c", b"other"), Keyring("other-cluster", b"secret")):
        with pytest.raises(CodecError) as info:
            ring.open(frame)
        assert info.value.reason == "auth"
    tampered = bytearray(frame)
    tampered[-1] ^= 1
    with pytest.raises(CodecError) as info:
        Keyring("c", b"secret").open(bytes(tampered))
    assert info.value.reason == "auth"


def test_secondary_key_opens_during_rotation() -> None:
    old = Keyring("c", b"old")
    rotating = Keyring("c", b"new", secondaries=[b"old"])
    frame = old.seal(b"[]", NONCE)
    assert rotating.open(frame) == b"[]"
    rotating.rotate(b"new")
    with pytest.raises(CodecError):
        rotating.open(frame)


def test_wrong_version_and_truncated_frames() -> None:
    ring = Keyring("c", b"secret")
    frame = ring.seal(b"[]", NONCE)
    with pytest.raises(CodecError) as info:
        ring.open(bytes([WIRE_VERSION + 1]) + frame[1:])
    assert info.value.reason == "version"
    for cut in range(FRAME_OVERHEAD_BYTES):
        with pytest.raises(CodecError):
            ring.open(frame[:cut])


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"[]",
        b'["h:1", 1, 1, 1, []]',
        b'["h:1", 1, 1, 1, [[99]]]',
        b'["h:1", 1, 1, 1, [[1, -1, "h:1"]]]',
        b'["h:1", 1, 1, 1, [[6, 1, "h:1", [[1,2,3],["nothex"],""]]]]',
        b'["x", 1, 1, 1, [[3, 1]]]',
        b'["h:1", true, 1, 1, [[3, 1]]]',
        b"[" * 100000,
    ],
)
def test_malformed_plaintexts_raise_codec_error_only(plaintext: bytes) -> None:
    with pytest.raises(CodecError):
        decode_packet(plaintext)


def test_absurd_incarnation_is_rejected_at_decode() -> None:
    raw = f'["h:1",1,1,1,[[5,{INCARNATION_MAX + 1},"h:2","h:3"]]]'.encode()
    with pytest.raises(CodecError) as info:
        decode_packet(raw)
    assert info.value.reason == "incarnation"


def test_random_bytes_never_raise_anything_but_codec_error() -> None:
    rng = random.Random(5)
    ring = Keyring("c", b"secret")
    for _ in range(2000):
        blob = rng.randbytes(rng.randrange(0, 200))
        with pytest.raises(CodecError):
            ring.open(blob)
        with contextlib.suppress(CodecError):
            decode_packet(blob)


def test_sync_round_trip_and_limits() -> None:
    state = SyncState("h:1", True, (MemberRecord("h:2", 3, MemberState.LEFT, META),))
    body = encode_sync(state)
    assert decode_sync(body, 10_000) == state
    with pytest.raises(CodecError) as info:
        decode_sync(body, len(body) - 1)
    assert info.value.reason == "oversized"
    with pytest.raises(CodecError):
        decode_sync(body.replace(b'"version":1', b'"version":2'), 10_000)
    with pytest.raises(CodecError):
        decode_sync(b'{"version":1,"sender":"h:1","members":[["h:2",1,9,[[0,0,0],[],""]]]}', 10_000)
