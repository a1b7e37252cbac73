"""``FrameStream``: many calls in flight on one WebSocket, each a MessagePack frame with a ref.

The caller's end of the two multiplexed streams: a client's jobs (``/jobs/stream``) and a
coordinator's tasks on another peer (``/tasks/stream``). Every WebSocket message, both ways, is
one MessagePack array of frames, so whatever waits travels together. A call sends ``{..., "ref":
N}`` and ends with a frame ``{"ref": N, "type": "done", "body": BODY}`` (its result) or ``{"ref":
N, "type": "error", "problem": PROBLEM}`` (raised as the error of the problem+json); frames of
other types on the way (``piece``, ``started``...) hand their type and body to the call's
``on_frame``; should it raise, the call fails with that error (and is cancelled at the other
end). Bodies are
handed over still encoded (``bytes``), so each caller decodes them into its own types and a
peer forwarding values never turns them into objects.

Rule: when the socket breaks, every call in flight on it fails with ``PeerUnreachable``, and a
frame not yet sent is dropped with its call (sent later, it would run unheard); the next call
opens a new socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from ..errors import DisruptorError, PeerUnreachable, ProtocolError, error_from_problem

Frame = dict[str, Any]


class Inbound(msgspec.Struct):
    """A frame from the serving end; its body left encoded."""

    ref: int | None = None
    type: str | None = None
    body: msgspec.Raw = msgspec.Raw()  # empty when the frame has none
    problem: dict[str, Any] | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Inbound])


class FrameStream:
    def __init__(
        self, name: str, connect: Callable[[], Awaitable[aiohttp.ClientWebSocketResponse]]
    ) -> None:
        self.name = name
        self._connect = connect
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._opening = asyncio.Lock()
        self._refs = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[bytes]] = {}
        self._listeners: dict[int, Callable[[str, bytes], None]] = {}
        self._outgoing: list[Frame] = []
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
                self._socket = await self._connect()
            except DisruptorError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise PeerUnreachable(f"{self.name}: {exc or type(exc).__name__}") from None
            for task in self._tasks:  # the last socket's reader and writer, if any
                task.cancel()
            self.broken = None
            self._tasks = [
                asyncio.create_task(self._read(self._socket)),
                asyncio.create_task(self._write(self._socket)),
            ]

    async def call(
        self, frame: Frame, on_frame: Callable[[str, bytes], None] | None = None
    ) -> bytes:
        """Send ``frame`` (a ref is added) and wait for the frame that ends it: its body."""
        await self._ensure_open()
        ref = next(self._refs)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = future
        if on_frame is not None:
            self._listeners[ref] = on_frame
        self.send({**frame, "ref": ref})
        try:
            return await future
        except BaseException:
            # Cancelled by the caller, or its ``on_frame`` failed: the other end need not go on
            # (a cancel of a call it has already ended is ignored there).
            if self.is_open():
                self.send({"op": "cancel", "ref": ref})
            raise
        finally:
            self._waiting.pop(ref, None)
            self._listeners.pop(ref, None)

    def send(self, frame: Frame) -> None:
        """Queue a frame that expects no answer (a cancel...); dropped if the socket is down."""
        self._outgoing.append(frame)
        self._send_ready.set()

    async def _write(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                await self._send_ready.wait()
                # One turn of the loop first: frames queued in it travel in the same message.
                await asyncio.sleep(0)
                self._send_ready.clear()
                if socket.closed:
                    return
                frames, self._outgoing = self._outgoing, []
                if frames:
                    await socket.send_bytes(_encoder.encode(frames))
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            self._break(PeerUnreachable(f"{self.name}: the stream broke: {exc}"))

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        error: BaseException = PeerUnreachable(f"{self.name}: the stream closed")
        try:
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.BINARY:
                    break
                for frame in _decoder.decode(message.data):
                    self._deliver(frame)
            if socket.close_code not in (None, 1000, 1001):
                error = PeerUnreachable(f"{self.name}: the stream closed ({socket.close_code})")
        except msgspec.DecodeError as exc:
            error = ProtocolError(f"{self.name} sent a frame that is not one: {exc}")
        except (aiohttp.ClientError, OSError, ConnectionError) as exc:
            error = PeerUnreachable(f"{self.name}: the stream broke: {exc}")
        self._break(error)

    def _deliver(self, frame: Inbound) -> None:
        if frame.ref is None:
            return
        body = bytes(frame.body)
        future = self._waiting.get(frame.ref)
        if future is None or future.done():
            return
        if frame.type not in ("done", "error"):
            listener = self._listeners.get(frame.ref)
            if listener is None:
                return
            try:
                listener(frame.type or "", body)
            except Exception as exc:  # the caller's callback, or a body it cannot read
                if not isinstance(exc, DisruptorError):
                    exc = ProtocolError(f"{self.name} sent a {frame.type} frame that is unusable")
                future.set_exception(exc)
            return
        if frame.type == "done":
            future.set_result(body)
        else:
            future.set_exception(error_from_problem(frame.problem or {}))

    def _break(self, error: BaseException) -> None:
        """The socket is gone: every call waiting on it fails (to be made again elsewhere)."""
        self.broken = error
        self._outgoing = []
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
        self._break(PeerUnreachable(f"{self.name}: the stream was closed"))
