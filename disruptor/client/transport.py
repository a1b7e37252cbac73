"""The client's HTTP transport: auth, failover across peers, problem+json back into exceptions.

Rule: every request the client makes goes through ``Transport.request``. It adds the bearer token
(read from the data directory unless given), turns a problem+json reply into the same exception
class the peer raised, honours ``Retry-After`` on 429/503 a bounded number of times, and on a
connection failure moves on to the next peer it was given.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec

from ..address import Address
from ..chunks import MSGPACK, MSGPACK_TYPES
from ..errors import (
    DisruptorError,
    Overloaded,
    PeerUnreachable,
    ProtocolError,
    Unavailable,
    error_from_reply,
)
from ..home import Home

RETRY_AFTER_ATTEMPTS_MAX = 5
RETRY_AFTER_S_MAX = 10.0


def peer_urls(peers: str | Sequence[str]) -> list[str]:
    """Normalise ``"host:port"``, ``"http://host:port"`` or a list of them to base URLs."""
    items = [peers] if isinstance(peers, str) else list(peers)
    return [Address.parse(p).url for p in items]


class Transport:
    def __init__(
        self,
        peers: str | Sequence[str],
        *,
        token: str | None = None,
        home: Home | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self.urls = peer_urls(peers)
        if not self.urls:
            raise ValueError("a client needs at least one peer")
        self._token = token if token is not None else (home or Home.from_env()).api_token()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=5.0)
        self._session: aiohttp.ClientSession | None = None
        self._current = 0

    @property
    def url(self) -> str:
        return self.urls[self._current]

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token}"},
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        failover: bool = True,
    ) -> aiohttp.ClientResponse:
        """Send one request and return the (successful, unread) response.

        The caller reads the body and releases the response. A non-2xx reply is raised as the
        peer's exception; the response is released first.
        """
        body = json.dumps(json_body).encode() if json_body is not None else data
        send_headers = dict(headers or {})
        if json_body is not None:
            send_headers.setdefault("Content-Type", "application/json")
        attempts = len(self.urls) if failover else 1
        last_error: Exception | None = None
        for _ in range(attempts):
            try:
                return await self._request_one(method, path, body, send_headers, params)
            except (TimeoutError, aiohttp.ClientConnectionError, PeerUnreachable) as exc:
                last_error = exc
                if not failover or isinstance(body, aiohttp.StreamReader):
                    break
                self._current = (self._current + 1) % len(self.urls)
        raise PeerUnreachable(f"no peer answered {method} {path}: {last_error}")

    async def _request_one(
        self,
        method: str,
        path: str,
        body: Any,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        for attempt in range(RETRY_AFTER_ATTEMPTS_MAX + 1):
            response = await self.session.request(
                method, self.url + path, data=body, headers=headers, params=params
            )
            if response.status < 400:
                return response
            error = await read_problem(response)
            retryable = isinstance(error, Overloaded | Unavailable) and not isinstance(
                error, PeerUnreachable
            )
            if not retryable or attempt == RETRY_AFTER_ATTEMPTS_MAX or not _replayable(body):
                raise error
            delay = min(RETRY_AFTER_S_MAX, float(response.headers.get("Retry-After", "1") or 1))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def request_msgpack(
        self,
        method: str,
        path: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        failover: bool = True,
    ) -> Any:
        """Send a MessagePack body, asking for a MessagePack answer; the answer decoded."""
        send = {"Content-Type": MSGPACK, "Accept": MSGPACK, **(headers or {})}
        response = await self.request(method, path, data=body, headers=send, failover=failover)
        async with response:
            raw = await response.read()
            if response.content_type in MSGPACK_TYPES:
                try:
                    return msgspec.msgpack.decode(raw)
                except msgspec.DecodeError as exc:
                    raise ProtocolError(f"the peer's answer is not MessagePack: {exc}") from None
            return json.loads(raw) if raw else None

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        failover: bool = True,
    ) -> Any:
        """Any API call; its JSON answer (None for 204)."""
        response = await self.request(
            method,
            path,
            json_body=json_body,
            data=data,
            headers=headers,
            params=params,
            failover=failover,
        )
        async with response:
            if response.status == 204:
                return None
            return await response.json(content_type=None)


def _replayable(body: Any) -> bool:
    return body is None or isinstance(body, bytes | bytearray | str)


async def read_problem(response: aiohttp.ClientResponse) -> DisruptorError:
    """Turn a failed response into the exception the peer raised (releases the response)."""
    async with response:
        raw = await response.read()
    content_type = response.headers.get("Content-Type", "")
    return error_from_reply(response.status, content_type, raw, response.reason or "")
