"""Bytes <-> messages: compact JSON inside an AES-GCM envelope, with a version and size limits.

Frame: ``version (1 byte) | nonce (12 bytes) | AES-256-GCM(ciphertext + 16-byte tag)``. The
plaintext is a JSON array ``[sender, session, seq, sent_at_ms, [message...]]``; each message is
``[type number, fields...]``. The associated data binds the version and the cluster name, so a
frame from another cluster (or another version) fails authentication even under the same secret.
Keys are derived from the cluster secret with HKDF; a ``Keyring`` seals with its primary key and
opens with the primary or any secondary, so the secret can be rotated without a restart.

Rule: nothing here trusts its input. Decoding raises ``CodecError`` (with a short reason used as a
drop counter) for anything out of shape or out of bounds; it never raises anything else. The nonce
is passed in (random bytes from the caller), so this module is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..address import Address
from ..errors import DisruptorError
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
    Nack,
    Packet,
    Ping,
    Suspect,
    SyncState,
)
from .meta import PeerMeta

NONCE_BYTES = 12
TAG_BYTES = 16
# Bytes a frame adds around its plaintext: version byte, nonce, GCM tag.
FRAME_OVERHEAD_BYTES = 1 + NONCE_BYTES + TAG_BYTES
# Room reserved for the packet header (sender, session, seq, clock, brackets): the messages of a
# packet may use the rest of the datagram.
PACKET_HEADER_BYTES_MAX = 2 * NAME_CHARS_MAX
# Members in one push-pull body, at most.
SYNC_MEMBERS_MAX = 10_000
_KDF_INFO = b"disruptor membership v1"


class CodecError(ValueError):
    """A frame or body that must be dropped; ``reason`` names the drop counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


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


def message_to_wire(m: Message) -> list[Any]:
    if isinstance(m, Ping):
        return [MessageType.PING, m.seq, m.target]
    if isinstance(m, IndirectPing):
        return [MessageType.INDIRECT_PING, m.seq, m.target, m.requester, int(m.want_nack)]
    if isinstance(m, Ack):
        return [MessageType.ACK, m.seq]
    if isinstance(m, Nack):
        return [MessageType.NACK, m.seq]
    if isinstance(m, Suspect):
        return [MessageType.SUSPECT, m.incarnation, m.node, m.sender]
    if isinstance(m, Alive):
        return [MessageType.ALIVE, m.incarnation, m.node, m.meta.to_wire()]
    return [MessageType.DEAD, m.incarnation, m.node, m.sender]


def encode_message(m: Message) -> bytes:
    return _dumps(message_to_wire(m))


def message_from_wire(raw: Any) -> Message:
    if not isinstance(raw, list) or not raw or not _is_int(raw[0]):
        raise CodecError("malformed", "a message is [type, fields...]")
    kind, fields = raw[0], raw[1:]
    try:
        if kind == MessageType.PING and len(fields) == 2:
            return Ping(_seq(fields[0]), _name(fields[1]))
        if kind == MessageType.INDIRECT_PING and len(fields) == 4:
            seq, target, requester, nack = fields
            return IndirectPing(_seq(seq), _name(target), _name(requester), bool(_seq(nack)))
        if kind == MessageType.ACK and len(fields) == 1:
            return Ack(_seq(fields[0]))
        if kind == MessageType.NACK and len(fields) == 1:
            return Nack(_seq(fields[0]))
        if kind == MessageType.SUSPECT and len(fields) == 3:
            return Suspect(_incarnation(fields[0]), _name(fields[1]), _name(fields[2]))
        if kind == MessageType.ALIVE and len(fields) == 3:
            return Alive(_incarnation(fields[0]), _name(fields[1]), PeerMeta.from_wire(fields[2]))
        if kind == MessageType.DEAD and len(fields) == 3:
            return Dead(_incarnation(fields[0]), _name(fields[1]), _name(fields[2]))
    except CodecError:
        raise
    except ValueError as exc:
        raise CodecError("malformed", str(exc)) from None
    raise CodecError("malformed", f"unknown message type {kind} or wrong field count")


# --- packets ---


def encode_packet(packet: Packet, encoded_messages: Sequence[bytes] | None = None) -> bytes:
    """The plaintext of a packet (pass ``encoded_messages`` to reuse already-encoded rumours)."""
    parts = encoded_messages or [encode_message(m) for m in packet.messages]
    header = _dumps([packet.sender, packet.session, packet.seq, packet.sent_at_ms])
    return header[:-1] + b",[" + b",".join(parts) + b"]]"


def decode_packet(plaintext: bytes) -> Packet:
    raw = _loads(plaintext)
    if not isinstance(raw, list) or len(raw) != 5 or not isinstance(raw[4], list):
        raise CodecError("malformed", "a packet is [sender, session, seq, sent_at_ms, messages]")
    sender, session, seq, sent_at_ms, messages = raw
    if not messages:
        raise CodecError("malformed", "a packet carries at least one message")
    return Packet(
        _name(sender),
        _seq(session),
        _seq(seq),
        _seq(sent_at_ms),
        tuple(message_from_wire(m) for m in messages),
    )


# --- push-pull bodies (HTTP; not encrypted here: the HTTP call is authenticated) ---


def encode_sync(state: SyncState) -> bytes:
    rows = [[r.node, r.incarnation, int(r.state), r.meta.to_wire()] for r in state.members]
    return _dumps(
        {"version": WIRE_VERSION, "sender": state.sender, "join": state.join, "members": rows}
    )


def decode_sync(body: bytes, bytes_max: int) -> SyncState:
    if len(body) > bytes_max:
        raise CodecError("oversized", f"push-pull body over {bytes_max} bytes")
    raw = _loads(body)
    if not isinstance(raw, dict) or raw.get("version") != WIRE_VERSION:
        raise CodecError("version", f"push-pull body must be version {WIRE_VERSION}")
    rows = raw.get("members")
    if not isinstance(rows, list) or len(rows) > SYNC_MEMBERS_MAX:
        raise CodecError("malformed", "members must be a list of bounded length")
    members = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise CodecError("malformed", "a member row is [node, incarnation, state, meta]")
        node, inc, state, meta = row
        try:
            members.append(
                MemberRecord(
                    _name(node), _incarnation(inc), MemberState(state), PeerMeta.from_wire(meta)
                )
            )
        except ValueError as exc:
            raise CodecError("malformed", str(exc)) from None
    return SyncState(_name(raw.get("sender")), bool(raw.get("join")), tuple(members))


# --- helpers ---


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode()


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise CodecError("malformed", "not JSON") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _seq(v: Any) -> int:
    if not _is_int(v) or not 0 <= v <= SEQ_MAX:
        raise CodecError("malformed", "sequence numbers are non-negative 63-bit integers")
    return int(v)


def _incarnation(v: Any) -> int:
    if not _is_int(v) or not 0 <= v <= INCARNATION_MAX:
        raise CodecError("incarnation", "incarnation outside 0..2**32-1")
    return int(v)


def _name(v: Any) -> str:
    if not isinstance(v, str) or not 3 <= len(v) <= NAME_CHARS_MAX or ":" not in v:
        raise CodecError("malformed", "peer names are HOST:PORT")
    try:
        canonical = str(Address.parse(v))
    except DisruptorError:
        canonical = ""
    if canonical != v or v.startswith(("http:", "https:")):
        raise CodecError("malformed", "peer names are HOST:PORT")
    return v
