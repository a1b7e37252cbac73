"""Bytes <-> messages: a dense binary encoding inside an AES-GCM envelope, with a version and
size limits.

Frame: ``version (1 byte) | nonce (12 bytes) | AES-256-GCM(ciphertext + 16-byte tag)``. The
plaintext is ``sender name | session (8 bytes) | seq | sent_at_ms | message...``; each message is a
type byte and its fields (varints and packed names, see ``wire.py``), so an alive rumour about an
IPv4 peer is about 10 bytes and a datagram carries over a hundred. The associated data binds the
version and the cluster name, so a frame from another cluster (or another version) fails
authentication even under the same secret. Keys are derived from the cluster secret with HKDF; a
``Keyring`` seals with its primary key and opens with the primary or any secondary, so the secret
can be rotated without a restart.

Rule: nothing here trusts its input. Decoding raises ``CodecError`` (with a short reason used as a
drop counter) for anything out of shape or out of bounds; it never raises anything else. The nonce
is passed in (random bytes from the caller), so this module is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .messages import (
    INCARNATION_MAX,
    NAME_CHARS_MAX,
    SEQ_MAX,
    WIRE_VERSION,
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MemberRecord,
    MemberState,
    Message,
    MessageType,
    Meta,
    Nack,
    Packet,
    Ping,
    Suspect,
    SyncState,
)
from .meta import decode_digest, encode_digest
from .wire import CodecError, Reader, encode_name, varint

__all__ = ["CodecError"]

NONCE_BYTES = 12
TAG_BYTES = 16
# Bytes a frame adds around its plaintext: version byte, nonce, GCM tag.
FRAME_OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES
# Room reserved for the packet header (sender, session, seq, clock): the messages of a packet
# may use the rest of the datagram.
PACKET_HEADER_BYTES_MAX = NAME_CHARS_MAX + 8 + 10 + 10
# Members in one push-pull body, at most.
SYNC_MEMBERS_MAX = 100_000
_KDF_INFO = b"disruptor membership v2"
_STATES = tuple(MemberState)


def derive_key(secret: bytes) -> bytes:
    """The 256-bit gossip key for a cluster secret (separate from the HTTP HMAC's use of it)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO)
    return hkdf.derive(secret)


class Keyring:
    """The primary key seals; the primary and the secondaries open (for rotation)."""

    def __init__(
        self, cluster_name: str, primary: bytes, secondaries: Sequence[bytes] = ()
    ) -> None:
        self.aad = bytes([WIRE_VERSION]) + b"disruptor-gossip:" + cluster_name.encode()
        self._primary = AESGCM(derive_key(primary))
        self._secondaries = [AESGCM(derive_key(s)) for s in secondaries]

    def rotate(self, primary: bytes, secondaries: Sequence[bytes] = ()) -> None:
        """Switch keys in place (``install new as secondary -> make it primary -> drop old``)."""
        self._primary = AESGCM(derive_key(primary))
        self._secondaries = [AESGCM(derive_key(s)) for s in secondaries]

    def seal(self, plaintext: bytes, nonce: bytes) -> bytes:
        if len(nonce) != NONCE_BYTES:
            raise ValueError("nonce must be 12 bytes")
        return bytes([WIRE_VERSION]) + nonce + self._primary.encrypt(nonce, plaintext, self.aad)

    def open(self, frame: bytes) -> bytes:
        if len(frame) < FRAME_OVERHEAD_BYTES:
            raise CodecError("truncated")
        if frame[0] != WIRE_VERSION:
            raise CodecError("version", f"wire version {frame[0]} is not {WIRE_VERSION}")
        nonce, body = frame[1 : 1 + NONCE_BYTES], frame[1 + NONCE_BYTES :]
        for key in (self._primary, *self._secondaries):
            try:
                return key.decrypt(nonce, body, self.aad)
            except InvalidTag:
                continue
        raise CodecError("auth", "no key authenticates this frame (wrong key or tampered)")


# --- messages ---


def encode_message(m: Message) -> bytes:
    kind = type(m)
    if kind is Alive:
        return b"\x06" + varint(m.incarnation) + encode_name(m.node)  # type: ignore[union-attr]
    if kind is Suspect or kind is Dead:
        tag = b"\x05" if kind is Suspect else b"\x07"
        return tag + varint(m.incarnation) + encode_name(m.node) + encode_name(m.sender)  # type: ignore[union-attr]
    if isinstance(m, Meta):
        return b"\x08" + encode_name(m.node) + encode_digest(m.digest)
    if isinstance(m, Ping):
        return b"\x01" + varint(m.seq) + encode_name(m.target)
    if isinstance(m, IndirectPing):
        return (
            b"\x02"
            + varint(m.seq)
            + encode_name(m.target)
            + encode_name(m.requester)
            + bytes([int(m.want_nack)])
        )
    if isinstance(m, Ack):
        return b"\x03" + varint(m.seq)
    assert isinstance(m, Nack)
    return b"\x04" + varint(m.seq)


def decode_message(r: Reader) -> Message:
    kind = r.byte()
    if kind == MessageType.ALIVE:
        return Alive(r.varint(INCARNATION_MAX, "incarnation"), r.name())
    if kind == MessageType.SUSPECT:
        return Suspect(r.varint(INCARNATION_MAX, "incarnation"), r.name(), r.name())
    if kind == MessageType.DEAD:
        return Dead(r.varint(INCARNATION_MAX, "incarnation"), r.name(), r.name())
    if kind == MessageType.META:
        return Meta(r.name(), decode_digest(r, INCARNATION_MAX))
    if kind == MessageType.PING:
        return Ping(r.varint(SEQ_MAX), r.name())
    if kind == MessageType.INDIRECT_PING:
        seq, target, requester, nack = r.varint(SEQ_MAX), r.name(), r.name(), r.byte()
        if nack > 1:
            raise CodecError("malformed", "want_nack is 0 or 1")
        return IndirectPing(seq, target, requester, bool(nack))
    if kind == MessageType.ACK:
        return Ack(r.varint(SEQ_MAX))
    if kind == MessageType.NACK:
        return Nack(r.varint(SEQ_MAX))
    raise CodecError("malformed", f"unknown message type {kind}")


# --- packets ---


def encode_packet(packet: Packet, encoded_messages: Sequence[bytes] | None = None) -> bytes:
    """The plaintext of a packet (pass ``encoded_messages`` to reuse already-encoded rumours)."""
    parts = encoded_messages or [encode_message(m) for m in packet.messages]
    header = (
        encode_name(packet.sender)
        + packet.session.to_bytes(8, "big")
        + varint(packet.seq)
        + varint(packet.sent_at_ms)
    )
    return header + b"".join(parts)


def decode_packet(plaintext: bytes) -> Packet:
    r = Reader(plaintext)
    sender = r.name()
    session = int.from_bytes(r.take(8), "big")
    if session > SEQ_MAX:
        raise CodecError("malformed", "sessions are 63-bit")
    seq = r.varint(SEQ_MAX)
    sent_at_ms = r.varint(SEQ_MAX)
    messages = []
    while not r.done():
        messages.append(decode_message(r))
    if not messages:
        raise CodecError("malformed", "a packet carries at least one message")
    return Packet(sender, session, seq, sent_at_ms, tuple(messages))


# --- push-pull bodies (HTTP; not encrypted here: the HTTP call is authenticated) ---


def encode_sync(state: SyncState) -> bytes:
    flags = int(state.join) | (int(state.summary) << 1)
    parts = [
        bytes([WIRE_VERSION, flags]),
        encode_name(state.sender),
        state.table_hash.to_bytes(8, "big"),
        varint(len(state.members)),
    ]
    for m in state.members:
        parts.append(
            encode_name(m.node)
            + varint(m.incarnation)
            + bytes([int(m.state)])
            + encode_digest(m.meta)
        )
    return b"".join(parts)


def decode_sync(body: bytes, bytes_max: int) -> SyncState:
    if len(body) > bytes_max:
        raise CodecError("oversized", f"push-pull body over {bytes_max} bytes")
    if not body or body[0] != WIRE_VERSION:
        raise CodecError("version", f"push-pull body must be version {WIRE_VERSION}")
    r = Reader(body, 1)
    flags = r.byte()
    if flags > 3:
        raise CodecError("malformed", "unknown push-pull flags")
    sender = r.name()
    table_hash = int.from_bytes(r.take(8), "big")
    count = r.varint(SYNC_MEMBERS_MAX)
    members = []
    for _ in range(count):
        node = r.name()
        incarnation = r.varint(INCARNATION_MAX, "incarnation")
        state = r.byte()
        if state >= len(_STATES):
            raise CodecError("malformed", "unknown member state")
        members.append(
            MemberRecord(node, incarnation, _STATES[state], decode_digest(r, INCARNATION_MAX))
        )
    if not r.done():
        raise CodecError("malformed", "trailing bytes after the members")
    return SyncState(sender, bool(flags & 1), tuple(members), table_hash, bool(flags & 2))
