"""A deadline on request heads, which aiohttp does not have: slow header tricklers are dropped.

aiohttp closes a connection that sits idle for the keep-alive timeout, but a client that sends a
request head one byte at a time keeps its connection (and a slot of memory) for that whole time.
``HeaderTimeoutAppRunner`` serves the app with ``HeaderTimeoutHandler``: when a connection opens,
and whenever the first bytes of a new request head arrive on an idle keep-alive connection, a
timer starts; the head must be complete before it fires or the connection is closed. Bodies are
held to their own pace by ``body_limits.body_pace_middleware``.

The same handler keeps the ``connections.ConnectionTable``: a connection past the per-client or
total bound is answered a canned 503 and closed as soon as it opens. The runner lifts the soft
descriptor limit to the hard one when it starts (``connections.raise_descriptor_limit``).

Rule: the guard only watches, counts and closes; it never parses, so aiohttp's HTTP handling stays
exactly as it is. It relies on two attributes of aiohttp's ``RequestHandler`` (``_request_count``
and ``_waiter``); ``tests/api/test_header_timeout.py`` pins that behaviour.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from aiohttp import web
from aiohttp.web_log import AccessLogger
from aiohttp.web_protocol import RequestHandler

from .connections import ConnectionTable, connections_max, raise_descriptor_limit, refusal_bytes

log = logging.getLogger("disruptor.api")

# A refused connection is logged once in this many, so a flood cannot flood the log too.
REFUSALS_LOGGED_EVERY = 1000


class HeaderTimeoutHandler(RequestHandler):
    def __init__(
        self,
        manager: web.Server,
        *,
        header_timeout_s: float,
        connections: ConnectionTable | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None
        self._connections = connections
        self._client: str | None = None  # set once the table admitted this connection
        self.header_timeouts = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        table = self._connections
        if table is not None:
            peername = transport.get_extra_info("peername")
            client = str(peername[0]) if isinstance(peername, tuple) and peername else "local"
            if not table.open(client):
                if table.refused % REFUSALS_LOGGED_EVERY == 1:
                    log.warning(
                        "refusing connections (%d so far): %s holds its share or the peer its "
                        "limit of %d",
                        table.refused,
                        client,
                        table.total_max,
                    )
                # uvloop's transports have the shape of asyncio's, not its classes.
                cast(asyncio.WriteTransport, transport).write(refusal_bytes())
                self.force_close()
                return
            self._client = client
        self._arm()

    def data_received(self, data: bytes) -> None:
        heads_before = self._request_count
        super().data_received(data)
        if self._request_count != heads_before:
            self._disarm()  # a whole head arrived; its body is the handler's business
        elif data and self._header_timer is None and self._idle():
            self._arm()  # the first bytes of the next head on a keep-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self._connections is not None and self._client is not None:
            self._connections.close(self._client)
            self._client = None
        super().connection_lost(exc)

    def _idle(self) -> bool:
        # ``_waiter`` is pending only while the handler waits for the next request's head.
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm(self) -> None:
        if self._header_timeout_s > 0:
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(self._header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        log.info("closing a connection whose request head took over %ss", self._header_timeout_s)
        self.force_close()


class HeaderTimeoutServer(web.Server):
    def __init__(
        self,
        *args: Any,
        header_timeout_s: float,
        connections: ConnectionTable | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self.connection_table = connections
        self._handler_kwargs = {
            k: v for k, v in kwargs.items() if k not in {"request_factory", "handler_cancellation"}
        }
        self._handler_kwargs.pop("loop", None)

    def __call__(self) -> RequestHandler:
        return HeaderTimeoutHandler(
            self,
            loop=asyncio.get_running_loop(),
            header_timeout_s=self._header_timeout_s,
            connections=self.connection_table,
            **self._handler_kwargs,
        )


class HeaderTimeoutAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections must deliver each request head in time, and which
    holds at most ``connections_per_client_max`` connections per client address and its
    descriptor limit less ``descriptors_reserved`` in all (no bound when those are None)."""

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout_s: float,
        connections_per_client_max: int | None = None,
        descriptors_reserved: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("access_log_class", AccessLogger)
        super().__init__(app, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._per_client_max = connections_per_client_max
        self._descriptors_reserved = descriptors_reserved
        self._handler_kwargs = {k: v for k, v in kwargs.items() if k != "handle_signals"}
        self.connection_table: ConnectionTable | None = None

    async def _make_server(self) -> web.Server:
        # aiohttp's own server runs the app's start-up and fixes the request handler; ours keeps
        # those and only changes which protocol class serves each connection.
        plain = await super()._make_server()
        if self._per_client_max is not None or self._descriptors_reserved is not None:
            raise_descriptor_limit()
            total = connections_max(self._descriptors_reserved or 0)
            self.connection_table = ConnectionTable(self._per_client_max or total, total)
        return HeaderTimeoutServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            header_timeout_s=self._header_timeout_s,
            connections=self.connection_table,
            **self._handler_kwargs,
        )
