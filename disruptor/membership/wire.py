"""The binary building blocks of the gossip wire format: varints, peer names, bounded reads.

Gossip rumours are packed densely so a datagram carries many of them (a join storm is N rumours
to every peer): an unsigned integer is a LEB128 varint (one byte below 128), and a peer name
``HOST:PORT`` is 7 bytes for IPv4 (a tag, the four address bytes, the port), 19 for IPv6, and a
tag, a length and the text for a host name. Rule: a ``Reader`` never reads past its end, never
returns a value out of the bounds asked for, and raises ``CodecError`` (and nothing else) on any
input that is not exactly well formed, so a decoder built on it needs no other check.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from ..address import Address
from ..errors import DisruptorError

# A peer name is HOST:PORT; ``[v6 address]:port`` is at most 47 characters.
NAME_CHARS_MAX = 64
# Longest varint accepted: 10 bytes hold 64 bits.
VARINT_BYTES_MAX = 10

_HOSTNAME = re.compile(r"[A-Za-z0-9_.-]{1,63}")
_TAG_HOSTNAME = 0
_TAG_IPV4 = 4
_TAG_IPV6 = 6


class CodecError(ValueError):
    """A frame or body that must be dropped; ``reason`` names the drop counter."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def varint(value: int) -> bytes:
    """``value`` (>= 0) as LEB128."""
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(0x80)]


def varint_size(value: int) -> int:
    return 1 if value < 0x80 else (value.bit_length() + 6) // 7


@lru_cache(maxsize=65536)
def encode_name(name: str) -> bytes:
    """A peer name packed: IPv4 and IPv6 literals as bytes, anything else as text."""
    host, _, port_text = name.rpartition(":")
    port = int(port_text).to_bytes(2, "big")
    if host.startswith("[") and host.endswith("]"):
        try:
            v6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            v6 = None
        if v6 is not None and str(v6) == host[1:-1]:
            return bytes([_TAG_IPV6]) + v6.packed + port
    else:
        try:
            v4 = ipaddress.IPv4Address(host)
        except ValueError:
            v4 = None
        if v4 is not None and str(v4) == host:
            return bytes([_TAG_IPV4]) + v4.packed + port
    text = host.encode("ascii", "replace")
    return bytes([_TAG_HOSTNAME, len(text)]) + text + port


def name_size(name: str) -> int:
    return len(encode_name(name))


@lru_cache(maxsize=65536)
def _decode_name(raw: bytes) -> str:
    tag = raw[0]
    port = int.from_bytes(raw[-2:], "big")
    if tag == _TAG_IPV4:
        text = f"{ipaddress.IPv4Address(raw[1:5])}:{port}"
    elif tag == _TAG_IPV6:
        text = f"[{ipaddress.IPv6Address(raw[1:17])}]:{port}"
    else:
        host = raw[2:-2].decode("ascii")
        if not _HOSTNAME.fullmatch(host):
            raise CodecError("malformed", "host names are letters, digits, dots, dashes")
        text = f"{host}:{port}"
    try:
        canonical = str(Address.parse(text))
    except DisruptorError:
        canonical = ""
    if canonical != text or port == 0 or len(text) > NAME_CHARS_MAX:
        raise CodecError("malformed", "peer names are HOST:PORT")
    return text


class Reader:
    """Reads the fields of one frame or body, front to back, within bounds."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)

    def done(self) -> bool:
        return self.pos >= self.end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise CodecError("malformed", "ends early")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > self.end:
            raise CodecError("malformed", "ends early")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def varint(self, maximum: int, reason: str = "malformed") -> int:
        data, pos = self.data, self.pos
        if pos < self.end and data[pos] < 0x80:
            value = data[pos]
            self.pos = pos + 1
        else:
            value = shift = 0
            for i in range(VARINT_BYTES_MAX):
                if pos + i >= self.end:
                    raise CodecError("malformed", "ends early")
                b = data[pos + i]
                value |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    self.pos = pos + i + 1
                    break
            else:
                raise CodecError("malformed", "varint too long")
        if value > maximum:
            raise CodecError(reason, f"value {value} over {maximum}")
        return value

    def name(self) -> str:
        start = self.pos
        tag = self.byte()
        if tag == _TAG_IPV4:
            self.take(6)
        elif tag == _TAG_IPV6:
            self.take(18)
        elif tag == _TAG_HOSTNAME:
            self.take(self.byte() + 2)
        else:
            raise CodecError("malformed", "unknown name form")
        try:
            return _decode_name(self.data[start : self.pos])
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, CodecError):
                raise
            raise CodecError("malformed", "peer names are HOST:PORT") from None
