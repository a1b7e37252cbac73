"""Calls from a coordinating peer to the peers it places tasks on (a thin HTTP adapter).

``POST /tasks`` runs one attempt of a task on another peer and returns its outcomes; ``DELETE
/tasks/<job id>`` abandons a job's attempts there. Each call is signed with the cluster secret
(``X-Disruptor-Peer``). Rule: foreign failures are translated here, once — a connection that cannot
be made or breaks becomes ``PeerUnreachable``; a problem+json reply becomes the peer's own error.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from ..api.auth import PEER_AUTH_HEADER, peer_auth_header
from ..client.transport import read_problem
from ..errors import PeerUnreachable, ProtocolError
from ..logs import forward_headers
from ..outcome import ItemOutcome


class PeerCalls:
    def __init__(self, secret: bytes, connect_timeout_s: float = 5.0) -> None:
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=64),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, method: str, path: str) -> dict[str, str]:
        return {PEER_AUTH_HEADER: peer_auth_header(self._secret, method, path), **forward_headers()}

    async def run_task(self, peer: str, body: dict[str, Any], count: int) -> list[ItemOutcome]:
        """Run one attempt on ``peer``; exactly ``count`` outcomes come back, or an error."""
        path = "/tasks"
        headers = {**self._headers("POST", path), "Content-Type": "application/json"}
        try:
            async with self.session.post(
                f"http://{peer}{path}", data=json.dumps(body).encode(), headers=headers
            ) as response:
                if response.status >= 400:
                    raise await read_problem(response)
                reply = await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise PeerUnreachable(f"{peer}: {exc or type(exc).__name__}") from None
        results = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(results, list) or len(results) != count:
            raise ProtocolError(f"{peer} answered a task of {count} items with a bad result list")
        try:
            return [ItemOutcome.from_json(r) for r in results]
        except (AttributeError, TypeError) as exc:
            raise ProtocolError(f"{peer} sent a malformed outcome: {exc}") from None

    async def abandon(self, peer: str, job_id: str, task_id: str | None = None) -> None:
        """Ask ``peer`` to stop the job's attempts (one task's, if named); best effort."""
        path = f"/tasks/{job_id}"
        params = {"task": task_id} if task_id else None
        try:
            async with self.session.delete(
                f"http://{peer}{path}", headers=self._headers("DELETE", path), params=params
            ) as response:
                await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass  # the peer is gone: nothing of ours runs there any more

    async def get_json(self, peer: str, path: str, params: dict[str, str] | None = None) -> Any:
        """A signed GET to another peer (cluster views); ``PeerUnreachable`` if it cannot answer."""
        try:
            async with self.session.get(
                f"http://{peer}{path}", headers=self._headers("GET", path), params=params
            ) as response:
                if response.status >= 400:
                    raise await read_problem(response)
                return await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise PeerUnreachable(f"{peer}: {exc or type(exc).__name__}") from None

    async def send_json(self, peer: str, method: str, path: str, body: Any) -> Any:
        """A signed call with a JSON body to another peer; its JSON reply (None if empty)."""
        headers = {**self._headers(method, path), "Content-Type": "application/json"}
        try:
            async with self.session.request(
                method, f"http://{peer}{path}", data=json.dumps(body).encode(), headers=headers
            ) as response:
                if response.status >= 400:
                    raise await read_problem(response)
                raw = await response.read()
                return json.loads(raw) if raw else None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise PeerUnreachable(f"{peer}: {exc or type(exc).__name__}") from None
