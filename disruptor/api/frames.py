"""The serving end of the multiplexed streams (``/jobs/stream``, ``/tasks/stream``).

``Outbox`` gathers the frames a stream's handlers answer with and sends all that wait as one
message (one MessagePack array), so answers finishing together travel together. ``serve_frames``
reads the caller's messages, each an array of typed frames, and hands each frame to the stream's
own handler; a message that does not decode ends the socket with a close code saying why.
Rule: the handler runs each call as a task of its own, the number in flight is bounded (past
the bound the socket is not read until one ends), and when the socket closes every call still
running is cancelled (nobody is left to hear it). The sockets open are known to the application
(``OPEN_STREAMS``): its shutdown closes them, so a stopping peer does not wait for its callers to
hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from ..errors import DisruptorError, InvalidPayload
from ..jobs.wire import decode_msgpack

log = logging.getLogger("disruptor.api")
_encoder = msgspec.msgpack.Encoder()


class OpenStreams:
    """The stream sockets open now (the application's shutdown closes them)."""

    def __init__(self) -> None:
        self.sockets: set[web.WebSocketResponse] = set()


OPEN_STREAMS = web.AppKey("open_streams", OpenStreams)


def add_shutdown(app: web.Application) -> None:
    """Keep the set of open stream sockets, and close them all when the application shuts down."""
    app[OPEN_STREAMS] = OpenStreams()

    async def close_streams(app: web.Application) -> None:
        for socket in list(app[OPEN_STREAMS].sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"the peer is stopping")

    app.on_shutdown.append(close_streams)


class Outbox:
    """Frames waiting to go out; one writer sends all that wait as one message."""

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self.ready = asyncio.Event()

    def put(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        self.ready.set()

    def error(self, ref: int, error: DisruptorError) -> None:
        self.put({"ref": ref, "type": "error", "problem": error.to_problem()})

    async def run(self) -> None:
        while True:
            await self.ready.wait()
            # One turn of the loop first: answers finishing in it travel in the same message.
            await asyncio.sleep(0)
            self.ready.clear()
            frames, self.frames = self.frames, []
            if frames and not self.socket.closed:
                await self.socket.send_bytes(_encoder.encode(frames))


class Framed(Protocol):
    op: str
    ref: int


F = TypeVar("F", bound=Framed)
Call = Callable[[Any, Outbox], Awaitable[None]]


async def serve_frames(
    request: web.Request,
    socket: web.WebSocketResponse,
    frames_type: type[list[F]],
    run: Callable[[F, Outbox], Awaitable[None]],
    *,
    in_flight_max: int,
    on_cancel: Callable[[int], None] | None = None,
) -> None:
    """Read ``socket`` until it closes: each ``run`` frame becomes a call of ``run``; a
    ``cancel`` frame cancels the call with its ref."""
    open_streams = request.app[OPEN_STREAMS].sockets
    open_streams.add(socket)
    outbox = Outbox(socket)
    writer = asyncio.create_task(outbox.run(), name="stream-writer")
    slots = asyncio.Semaphore(in_flight_max)
    running: dict[int, asyncio.Task[None]] = {}

    async def one(frame: F) -> None:
        try:
            await run(frame, outbox)
        except DisruptorError as error:
            outbox.error(frame.ref, error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stream %s: call %d failed unexpectedly", socket, frame.ref)
            outbox.error(frame.ref, DisruptorError("the peer failed to carry out this call"))
        finally:
            running.pop(frame.ref, None)
            slots.release()

    try:
        async for message in socket:
            if message.type is not WSMsgType.BINARY:
                await socket.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"binary frames only")
                break
            try:
                frames = decode_msgpack(message.data, frames_type)
            except InvalidPayload as error:
                await socket.close(
                    code=WSCloseCode.UNSUPPORTED_DATA, message=error.detail.encode()[:120]
                )
                break
            for frame in frames:
                if frame.op == "cancel":
                    task = running.get(frame.ref)
                    if on_cancel is not None:
                        on_cancel(frame.ref)
                    elif task is not None:
                        task.cancel()
                    continue
                if frame.ref in running:
                    outbox.error(frame.ref, InvalidPayload(f"ref {frame.ref} is in flight"))
                    continue
                await slots.acquire()
                running[frame.ref] = asyncio.create_task(one(frame))
    finally:
        open_streams.discard(socket)
        for task in list(running.values()):
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        with contextlib.suppress(Exception):
            await socket.close()
