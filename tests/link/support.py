"""Signing a peer call by hand, as another peer of the cluster would."""

from __future__ import annotations

import secrets
import time

from disruptor.link.signature import NONCE_BYTES, PEER_AUTH_HEADER, sign


def peer_headers(secret: bytes, method: str, target: str, body: bytes = b"") -> dict[str, str]:
    """The ``X-Disruptor-Peer`` header for one call, with a fresh nonce."""
    nonce = secrets.token_hex(NONCE_BYTES)
    return {PEER_AUTH_HEADER: sign(secret, method, target, body, time.time(), nonce)}
