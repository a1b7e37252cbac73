"""The client's end of ``/jobs/stream``: one WebSocket per peer, many jobs in flight on it.

``JobStream.run`` sends a job as a frame and waits for its answer; frames that wait are sent
together as one message, and one reader hands each answer to the job it names. A job sent with
``stream: true`` is also told its id (``started``) and each piece of results as the peer accepts
it (``piece``). When the socket breaks, every job in flight on it fails with ``PeerUnreachable``,
which the caller takes as a reason to resubmit elsewhere under the same idempotency key. A frame
of a type this client does not know is ignored (a newer peer may say more).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

from ..errors import DisruptorError, PeerUnreachable, ProtocolError, error_from_problem

# The peer's own bound on one message; a larger job goes by ``POST /jobs`` instead.
MESSAGE_BYTES_MAX = 256 * 1024 * 1024
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class JobStream:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self.url = url
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._opening: asyncio.Lock = asyncio.Lock()
        self._refs = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pieces: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._started: dict[int, Callable[[str], None]] = {}
        self._outgoing: list[dict[str, Any]] = []
        self._send_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.broken: BaseException | None = None

    def is_open(self) -> bool:
        return self._socket is not None and not self._socket.closed and self.broken is None

    async def _ensure_open(self) -> None:
        if self.is_open():
            return
        async with self._opening:
            if self.is_open():
                return
            try:
                self._socket = await self._session.ws_connect(
                    self.url + "/jobs/stream", max_msg_size=MESSAGE_BYTES_MAX, compress=0
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise PeerUnreachable(f"{self.url}: {exc or type(exc).__name__}") from None
            for task in self._tasks:  # the last socket's reader and writer, if any
                task.cancel()
            self.broken = None
            self._tasks = [
                asyncio.create_task(self._read(self._socket)),
                asyncio.create_task(self._write(self._socket)),
            ]

    async def run(
        self,
        job: dict[str, Any],
        key: str,
        on_piece: Callable[[dict[str, Any]], None] | None = None,
        on_started: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Submit ``job`` (a ``JobSpec`` as a map) and wait for its answer.

        ``on_piece`` and ``on_started`` (for a job with ``stream: true``) are called on this
        loop with each piece of results and with the job's id; should one raise, the job fails
        with that error (and is cancelled at the peer).
        """
        await self._ensure_open()
        ref = next(self._refs)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = future
        if on_piece is not None:
            self._pieces[ref] = on_piece
        if on_started is not None:
            self._started[ref] = on_started
        self._send({"op": "submit", "ref": ref, "key": key, "job": job})
        try:
            return await future
        except BaseException:
            # Cancelled by the caller, or a callback failed: the peer need not go on (a cancel
            # of a job it no longer runs, one it refused, is ignored there).
            if self.is_open():
                self._send({"op": "cancel", "ref": ref})
            raise
        finally:
            self._waiting.pop(ref, None)
            self._pieces.pop(ref, None)
            self._started.pop(ref, None)

    def _send(self, frame: dict[str, Any]) -> None:
        self._outgoing.append(frame)
        self._send_ready.set()

    async def _write(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                await self._send_ready.wait()
                self._send_ready.clear()
                if socket.closed:
                    return
                frames, self._outgoing = self._outgoing, []
                if frames:
                    await socket.send_bytes(_encoder.encode(frames))
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            self._break(PeerUnreachable(f"{self.url}: the job stream broke: {exc}"))

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        error: BaseException = PeerUnreachable(f"{self.url}: the job stream closed")
        try:
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.BINARY:
                    break
                for frame in _decoder.decode(message.data):
                    self._deliver(frame)
            if socket.close_code not in (None, 1000, 1001):
                error = PeerUnreachable(f"{self.url}: the job stream closed ({socket.close_code})")
        except msgspec.DecodeError as exc:
            error = ProtocolError(f"{self.url} sent a frame that is not MessagePack: {exc}")
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            error = PeerUnreachable(f"{self.url}: the job stream broke: {exc}")
        self._break(error)

    def _deliver(self, frame: dict[str, Any]) -> None:
        ref = frame.get("ref")
        kind = frame.get("type")
        future = self._waiting.get(ref)  # type: ignore[arg-type]
        if future is None or future.done():
            return
        if kind == "done":
            future.set_result(frame["answer"])
        elif kind == "error":
            future.set_exception(error_from_problem(frame.get("problem") or {}))
        elif kind in ("piece", "started"):
            try:
                if kind == "piece":
                    on_piece = self._pieces.get(ref)  # type: ignore[arg-type]
                    if on_piece is not None:
                        on_piece(frame["piece"])
                else:
                    on_started = self._started.get(ref)  # type: ignore[arg-type]
                    if on_started is not None:
                        on_started(str(frame["id"]))
            except Exception as exc:  # the caller's callback, or a malformed frame
                if not isinstance(exc, DisruptorError):
                    exc = ProtocolError(f"{self.url} sent a {kind} frame this client cannot use")
                future.set_exception(exc)

    def _break(self, error: BaseException) -> None:
        """The socket is gone: every job waiting on it fails (to be resubmitted elsewhere)."""
        self.broken = error
        self._outgoing = []  # their jobs fail below; sent later, they would run unheard
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._send_ready.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._socket is not None:
            await self._socket.close()
        self._break(PeerUnreachable(f"{self.url}: the client closed the job stream"))
