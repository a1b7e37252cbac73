"""``PeerLink``: the one HTTP client a peer uses to call other peers.

Membership push-pull, bundle fetches, remote tasks and cluster-wide calls all go through it: one
``aiohttp.ClientSession`` per peer process (connections to a peer are reused by every part), every
call signed (``signature.sign``: method, target, body digest, a fresh nonce) and carrying the
request id of the call it serves.

Rule: foreign exceptions are mapped to the error tree here, once, like the problem+json replies:
a connection that cannot be made, breaks, or times out is ``PeerUnreachable``; a reply of 400 or
more is the peer's own exception (``PeerReply.error``). Callers never see aiohttp.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from ..address import Address
from ..errors import (
    DisruptorError,
    PayloadTooLarge,
    PeerUnreachable,
    ProtocolError,
    error_from_reply,
)
from ..logs import forward_headers
from .signature import NONCE_BYTES, PEER_AUTH_HEADER, sign

# A peer that does not accept a TCP connection within this long is unreachable (callers may say
# otherwise per call).
CONNECT_TIMEOUT_S = 5.0
# Connections kept to one peer at once (all parts together); unlimited peers.
CONNECTIONS_PER_PEER_MAX = 64
# A JSON reply larger than this is refused: a safety bound, far above any reply a peer sends
# (results of one task included), not a tuning knob.
JSON_REPLY_BYTES_MAX = 1024 * 1024 * 1024
# Problem bodies are short; more than this of one is not read.
PROBLEM_BYTES_MAX = 64 * 1024
READ_CHUNK_BYTES = 256 * 1024

_FOREIGN = (aiohttp.ClientError, OSError, TimeoutError)


@contextlib.contextmanager
def _mapped(peer: str) -> Iterator[None]:
    """The one place where what aiohttp and the OS raise becomes ``PeerUnreachable``."""
    try:
        yield
    except _FOREIGN as exc:
        raise PeerUnreachable(f"{peer}: {exc or type(exc).__name__}") from None


class PeerReply:
    """A peer's answer: status, headers, and its body read with a bound."""

    def __init__(self, peer: str, response: aiohttp.ClientResponse) -> None:
        self.peer = peer
        self._response = response
        self.status = response.status

    def header(self, name: str) -> str | None:
        return self._response.headers.get(name)

    async def body(self, limit_bytes: int) -> bytes:
        """The whole body; ``PayloadTooLarge`` as soon as more than ``limit_bytes`` arrive."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks(READ_CHUNK_BYTES):
            size += len(chunk)
            if size > limit_bytes:
                raise PayloadTooLarge(f"{self.peer} sent more than {limit_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body as it arrives, ``size`` bytes at most at a time."""
        iterator = self._response.content.iter_chunked(size)
        while True:
            with _mapped(self.peer):
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            yield chunk

    async def json(self, limit_bytes: int = JSON_REPLY_BYTES_MAX) -> Any:
        """The body as JSON (None when empty)."""
        raw = await self.body(limit_bytes)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ProtocolError(f"{self.peer} sent a reply that is not JSON: {exc}") from None

    async def error(self) -> DisruptorError:
        """The exception the peer raised, from its problem+json reply."""
        try:
            raw = await self.body(PROBLEM_BYTES_MAX)
        except PayloadTooLarge:
            raw = b""
        content_type = self.header("Content-Type") or ""
        return error_from_reply(self.status, content_type, raw, self._response.reason or "")


class PeerLink:
    """Signed calls to other peers over one shared session; ``close`` when the peer stops."""

    def __init__(
        self,
        secret: bytes,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self.connect_timeout_s = connect_timeout_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (aiohttp requires one).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_PEER_MAX),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def headers_for(self, method: str, target: str, body: bytes) -> dict[str, str]:
        """The signed header (and the request id) for one call to another peer."""
        nonce = secrets.token_hex(NONCE_BYTES)
        value = sign(self._secret, method, target, body, self._clock(), nonce)
        return {PEER_AUTH_HEADER: value, **forward_headers()}

    @contextlib.asynccontextmanager
    async def open(
        self,
        method: str,
        peer: Address | str,
        target: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
    ) -> AsyncIterator[PeerReply]:
        """Make one call; the reply is readable inside the block, whatever its status.

        ``target`` is the path and query exactly as sent (already encoded): it is what is signed.
        """
        name = str(peer)
        url = URL(f"http://{name}{target}", encoded=True)
        send = {**self.headers_for(method, target, body), **(headers or {})}
        timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=connect_timeout_s or self.connect_timeout_s
        )
        session = self._session_now()
        with _mapped(name):
            response = await session.request(
                method, url, data=body or None, headers=send, timeout=timeout
            )
        try:
            yield PeerReply(name, response)
        finally:
            response.release()

    async def call_json(
        self,
        method: str,
        peer: Address | str,
        target: str,
        body: Any = None,
        *,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
    ) -> Any:
        """A call with a JSON body (if any); its JSON reply, or the peer's error raised."""
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if body is not None else None
        async with self.open(
            method,
            peer,
            target,
            body=data,
            headers=headers,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
        ) as reply:
            if reply.status >= 400:
                raise await reply.error()
            return await reply.json()

    async def websocket(
        self, peer: Address | str, target: str, *, message_bytes_max: int
    ) -> aiohttp.ClientWebSocketResponse:
        """A signed WebSocket to another peer (its upgrade request carries the peer header)."""
        name = str(peer)
        url = URL(f"http://{name}{target}", encoded=True)
        with _mapped(name):
            return await self._session_now().ws_connect(
                url,
                headers=self.headers_for("GET", target, b""),
                max_msg_size=message_bytes_max,
                compress=0,
                heartbeat=30.0,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            )

    async def call_bytes(
        self,
        method: str,
        peer: Address | str,
        target: str,
        body: bytes,
        content_type: str,
        *,
        limit_bytes: int,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
    ) -> bytes:
        """A call with an encoded body (MessagePack between peers); its reply's bytes, or the
        peer's error raised."""
        async with self.open(
            method,
            peer,
            target,
            body=body,
            headers={"Content-Type": content_type, "Accept": content_type},
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
        ) as reply:
            if reply.status >= 400:
                raise await reply.error()
            return await reply.body(limit_bytes)
