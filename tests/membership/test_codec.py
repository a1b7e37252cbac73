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
    Meta,
    Nack,
    Packet,
    Ping,
    Suspect,
    SyncState,
)
from disruptor.membership.meta import MetaDigest, PeerLoad, PeerMeta
from disruptor.membership.sections import LocalSections
from disruptor.membership.wire import encode_name, varint

NONCE = bytes(12)
_LOCAL = LocalSections(3)
BUNDLES = tuple(f"{i:040x}" for i in range(16))
_LOCAL.update(PeerMeta(PeerLoad(1, 2, 3), BUNDLES, "0.1.0").sections(), 3)
DIGEST = _LOCAL.digest
ALL = (
    Ping(1, "h:1"),
    IndirectPing(2, "[::1]:2", "10.0.0.3:3", True),
    Ack(3),
    Nack(4),
    Suspect(5, "h:4", "10.1.2.3:5"),
    Alive(6, "10.0.0.6:1111"),
    Dead(7, "h:7", "h:7"),
    Meta("10.0.0.8:8", DIGEST),
    Alive(INCARNATION_MAX, "name.example.org:65535"),
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
    frame = old.seal(b"xyz", NONCE)
    assert rotating.open(frame) == b"xyz"
    rotating.rotate(b"new")
    with pytest.raises(CodecError):
        rotating.open(frame)


def test_wrong_version_and_truncated_frames() -> None:
    ring = Keyring("c", b"secret")
    frame = ring.seal(b"xyz", NONCE)
    with pytest.raises(CodecError) as info:
        ring.open(bytes([WIRE_VERSION + 1]) + frame[1:])
    assert info.value.reason == "version"
    for cut in range(FRAME_OVERHEAD_BYTES):
        with pytest.raises(CodecError):
            ring.open(frame[:cut])


HEADER = encode_name("h:1") + bytes(8) + varint(1) + varint(1)


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\x00",
        HEADER,  # no message
        HEADER + b"\x63",  # unknown type
        HEADER + b"\x03",  # ack without its seq
        HEADER + b"\x03" + b"\xff" * 11,  # varint too long
        HEADER + b"\x06\x01\x09",  # unknown name form
        HEADER + b"\x06\x01\x00\x02xy",  # name cut short
        HEADER + b"\x02\x01" + encode_name("h:2") + encode_name("h:3") + b"\x05",  # nack flag 5
        encode_name("0.0.0.0:0")[:-2] + b"\x00\x00" + bytes(8) + b"\x01\x01\x03\x01",  # port 0
        b"\x00\x03x y\x00\x01" + bytes(8) + b"\x01\x01\x03\x01",  # a space in a host name
        HEADER + b"\x08" + encode_name("h:2") + b"\x00\x01\x11",  # 17 sections
        HEADER + b"\x08" + encode_name("h:2") + b"\x00\x01\x01\x01\x01\x01\x30" + b"x" * 48,
    ],
)
def test_malformed_plaintexts_raise_codec_error_only(plaintext: bytes) -> None:
    with pytest.raises(CodecError):
        decode_packet(plaintext)


def test_absurd_incarnation_is_rejected_at_decode() -> None:
    raw = HEADER + b"\x05" + varint(INCARNATION_MAX + 1) + encode_name("h:2") + encode_name("h:3")
    with pytest.raises(CodecError) as info:
        decode_packet(raw)
    assert info.value.reason == "incarnation"


def test_rumours_are_packed_densely() -> None:
    # An alive rumour about an IPv4 peer is a few bytes, so a datagram carries over a hundred.
    assert len(encode_packet(packet(Alive(3, "10.0.0.6:1111")))) - len(encode_packet(packet())) <= 9
    assert (
        len(encode_packet(packet(Meta("10.0.0.8:8", DIGEST)))) - len(encode_packet(packet())) <= 48
    )


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
    rows = (
        MemberRecord("h:2", 3, MemberState.LEFT, DIGEST),
        MemberRecord("10.0.0.9:1", 0, MemberState.ALIVE, MetaDigest()),
    )
    state = SyncState("h:1", True, rows, table_hash=2**64 - 1)
    body = encode_sync(state)
    assert decode_sync(body, 10_000) == state
    summary = SyncState("h:1", False, (), table_hash=5, summary=True)
    assert decode_sync(encode_sync(summary), 100) == summary
    with pytest.raises(CodecError) as info:
        decode_sync(body, len(body) - 1)
    assert info.value.reason == "oversized"
    with pytest.raises(CodecError):
        decode_sync(bytes([WIRE_VERSION + 1]) + body[1:], 10_000)
    for cut in range(len(body)):
        with pytest.raises(CodecError):
            decode_sync(body[:cut], 10_000)
    with pytest.raises(CodecError):
        decode_sync(body + b"\x00", 10_000)


def test_a_ten_thousand_peer_table_is_under_a_megabyte() -> None:
    rows = tuple(
        MemberRecord(f"10.{i // 250}.{i % 250}.1:1111", 5, MemberState.ALIVE, DIGEST)
        for i in range(10_000)
    )
    body = encode_sync(SyncState("10.0.0.1:1111", False, rows))
    assert len(body) < 1_000_000
    assert len(decode_sync(body, 4 * 1024 * 1024).members) == 10_000
