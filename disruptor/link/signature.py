"""The peer signature: a call signed with the cluster secret, good for one body, once.

A peer calling another sends ``X-Disruptor-Peer: v1.<unix ts>.<nonce>.<body sha256>.<hmac>``,
the HMAC-SHA256 (cluster secret) of the method, the request target (path and query, as sent), the
time, the nonce and the body's SHA-256. The receiver checks, in this order, so that nothing costs
it memory before the caller has shown the secret:

1. the header's shape, and its time within ``PEER_AUTH_WINDOW_S`` of the receiver's clock;
2. the HMAC over what the header claims (method and target are the request's own);
3. the body it then reads against the digest the HMAC covers;
4. the nonce against the ones seen inside the window (``NonceWindow``).

Rule: a captured header is worth nothing: another body fails 3, the same body again fails 4, and
after the window it fails 1. Memory for seen nonces is bounded (``NONCES_MAX``); when it is full of
nonces still inside the window, calls are refused as ``Overloaded`` rather than remembered less.
Sans-IO: time, nonces and bodies are passed in.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from dataclasses import dataclass

from ..errors import Overloaded, Unauthorized

PEER_AUTH_HEADER = "X-Disruptor-Peer"
SIGNATURE_VERSION = "v1"
# A signed call is accepted this long either side of its time (clocks of peers drift a little).
PEER_AUTH_WINDOW_S = 60.0
# Random bytes per nonce (hex on the wire): collisions between honest calls never happen.
NONCE_BYTES = 16
# Nonces remembered at once, at most: 200,000 is about 3,300 peer calls a second held for the
# window, a few tens of MB at worst. Past it calls are refused until old nonces expire.
NONCES_MAX = 200_000
# Seconds a caller is asked to wait when the nonce memory is full.
NONCES_FULL_RETRY_AFTER_S = 1.0

_NONCE = re.compile(rf"[0-9a-f]{{{2 * NONCE_BYTES}}}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class PeerSignature:
    """One call's signature: when, which nonce, which body, and the HMAC over all of it."""

    timestamp: int
    nonce: str
    body_sha256: str
    mac: str

    def to_header(self) -> str:
        return ".".join(
            (SIGNATURE_VERSION, str(self.timestamp), self.nonce, self.body_sha256, self.mac)
        )

    @classmethod
    def parse(cls, value: str) -> PeerSignature | None:
        """The signature a header carries, or None if it is not one in shape."""
        parts = value.strip().split(".")
        if len(parts) != 5 or parts[0] != SIGNATURE_VERSION or not parts[1].isdigit():
            return None
        _, ts_text, nonce, digest, mac = parts
        if len(ts_text) > 12 or not _NONCE.fullmatch(nonce):
            return None
        if not _HEX64.fullmatch(digest) or not _HEX64.fullmatch(mac):
            return None
        return cls(int(ts_text), nonce, digest, mac)


def _mac(secret: bytes, method: str, target: str, timestamp: int, nonce: str, digest: str) -> str:
    message = "\n".join((method.upper(), target, str(timestamp), nonce, digest)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, target: str, body: bytes, now_s: float, nonce: str) -> str:
    """The ``X-Disruptor-Peer`` value for one call; ``target`` is the path and query as sent."""
    timestamp = int(now_s)
    digest = body_digest(body)
    mac = _mac(secret, method, target, timestamp, nonce, digest)
    return PeerSignature(timestamp, nonce, digest, mac).to_header()


class NonceWindow:
    """The nonces seen inside the window, each kept until its call's time leaves the window."""

    def __init__(self, window_s: float = PEER_AUTH_WINDOW_S, capacity: int = NONCES_MAX) -> None:
        self.window_s = window_s
        self.capacity = capacity
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []  # a heap: (when it may be forgotten, nonce)

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, nonce: str, timestamp: float, now_s: float) -> bool:
        """True the first time ``nonce`` is offered inside the window, False after that."""
        while self._expiry and self._expiry[0][0] < now_s:
            _, old = heapq.heappop(self._expiry)
            self._seen.discard(old)
        if nonce in self._seen:
            return False
        if len(self._seen) >= self.capacity:
            raise Overloaded(
                "too many peer calls inside the replay window; try again shortly",
                retry_after_s=NONCES_FULL_RETRY_AFTER_S,
            )
        self._seen.add(nonce)
        # After this its timestamp is out of the window, so the time check refuses it anyway.
        heapq.heappush(self._expiry, (timestamp + self.window_s, nonce))
        return True


class PeerCallCheck:
    """The receiving side: is this call signed by a holder of the secret, for this body, once?"""

    def __init__(
        self,
        secret: bytes,
        window_s: float = PEER_AUTH_WINDOW_S,
        nonces_max: int = NONCES_MAX,
    ) -> None:
        self._secret = secret
        self.window_s = window_s
        self.nonces = NonceWindow(window_s, nonces_max)

    def check_head(self, value: str, method: str, target: str, now_s: float) -> PeerSignature:
        """Steps 1 and 2: shape, time and HMAC, before anything of the body is read."""
        signature = PeerSignature.parse(value)
        if signature is None:
            raise Unauthorized("the peer signature is malformed")
        if abs(now_s - signature.timestamp) > self.window_s:
            raise Unauthorized("the peer signature has expired (or the clocks differ)")
        s = signature
        expected = _mac(self._secret, method, target, s.timestamp, s.nonce, s.body_sha256)
        if not hmac.compare_digest(expected, signature.mac):
            raise Unauthorized("the peer signature does not match this call")
        return signature

    def admit(self, signature: PeerSignature, body: bytes, now_s: float) -> None:
        """Steps 3 and 4: the body is the one signed, and the call has not been seen before."""
        if not hmac.compare_digest(body_digest(body), signature.body_sha256):
            raise Unauthorized("the body is not the one the peer signature covers")
        if not self.nonces.admit(signature.nonce, signature.timestamp, now_s):
            raise Unauthorized("this peer call was already received (a replay)")
