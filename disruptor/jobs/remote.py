"""``TaskCalls``: the calls a coordinating peer makes to the peers it places tasks on.

An attempt of a task on another peer is a ``TaskRequest`` in MessagePack, its chunk of items
carried as the bytes it already is, answered by a ``TaskReply``, its values one encoded array.
It travels on that peer's task stream (``GET /tasks/stream``: one signed WebSocket per peer,
many attempts in flight on it as frames, ``link/frames.py``), so a task costs a frame each way
rather than an HTTP request. ``DELETE /tasks/<job id>`` abandons a job's attempts there. All go
over the peer link, which signs them and maps connection failures to ``PeerUnreachable``; an
error frame or a problem+json reply is the peer's own error. Rule: a reply that is not exactly
one value per item is a ``ProtocolError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import aiohttp
import msgspec

from ..chunks import CHUNK_BYTES_MAX, MSGPACK, Chunk, ChunkResult
from ..errors import DisruptorError, InvalidPayload, ProtocolError
from ..link.frames import FrameStream
from ..link.peer_link import PeerLink
from ..logs import current_request_id
from .model import Work
from .wire import TaskReply, TaskRequest, decode_msgpack, encode_msgpack

TASKS_PATH = "/tasks"
TASK_STREAM_PATH = "/tasks/stream"
# The answer to an abandon is a few bytes of JSON; more than this is not read.
ABANDON_REPLY_BYTES_MAX = 64 * 1024
# A task's reply: its values (bounded like any chunk) and its errors' messages and tracebacks.
TASK_REPLY_BYTES_MAX = 2 * CHUNK_BYTES_MAX


def task_request(
    job_id: str,
    task_id: str,
    attempt: int,
    coordinator: str,
    work: Work,
    chunk: Chunk,
    timeout_s: float | None,
    sources: Sequence[str],
) -> TaskRequest:
    """What ``POST /tasks`` carries: the attempt, the work, its chunk, where to get the bundle."""
    return TaskRequest(
        job=job_id,
        task=task_id,
        attempt=attempt,
        coordinator=coordinator,
        count=chunk.count,
        items=msgspec.Raw(chunk.data),
        bundle=work.bundle,
        snippet=work.snippet,
        snippet_sha1=work.snippet_sha1,
        timeout_s=timeout_s,
        sources=list(sources),
        request_id=current_request_id(),
    )


class TaskCalls:
    def __init__(self, link: PeerLink, connect_timeout_s: float) -> None:
        self.link = link
        self.connect_timeout_s = connect_timeout_s
        self._streams: dict[str, FrameStream] = {}

    def _stream(self, peer: str) -> FrameStream:
        stream = self._streams.get(peer)
        if stream is None:

            async def connect() -> aiohttp.ClientWebSocketResponse:
                return await self.link.websocket(
                    peer, TASK_STREAM_PATH, message_bytes_max=TASK_REPLY_BYTES_MAX
                )

            stream = self._streams[peer] = FrameStream(peer, connect)
        return stream

    async def run_task(self, peer: str, request: TaskRequest) -> ChunkResult:
        """Run one attempt on ``peer``; one value per item comes back, or an error."""
        body = await self._stream(peer).call({"op": "run", "task": request})
        try:
            reply = decode_msgpack(body, TaskReply)
            return ChunkResult.checked(request.count, bytes(reply.values), reply.errors, reply.peer)
        except InvalidPayload as exc:
            raise ProtocolError(f"{peer} answered a task badly: {exc.detail}") from None

    async def run_task_by_request(self, peer: str, request: TaskRequest) -> ChunkResult:
        """The same attempt as one ``POST /tasks`` (for peers reached without a stream)."""
        raw = await self.link.call_bytes(
            "POST",
            peer,
            TASKS_PATH,
            encode_msgpack(request),
            MSGPACK,
            limit_bytes=TASK_REPLY_BYTES_MAX,
            connect_timeout_s=self.connect_timeout_s,
        )
        try:
            reply = decode_msgpack(raw, TaskReply)
            return ChunkResult.checked(request.count, bytes(reply.values), reply.errors, reply.peer)
        except InvalidPayload as exc:
            raise ProtocolError(f"{peer} answered a task badly: {exc.detail}") from None

    def forget(self, peer: str) -> None:
        """A peer left: its stream is closed with the next ``close`` or replaced on next use."""
        self._streams.pop(peer, None)

    async def close(self) -> None:
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            await stream.close()

    async def abandon(self, peer: str, job_id: str, task_id: str | None = None) -> None:
        """Ask ``peer`` to stop the job's attempts (one task's, if named); best effort."""
        target = f"{TASKS_PATH}/{quote(job_id, safe='')}"
        if task_id:
            target += f"?task={quote(task_id, safe='')}"
        try:
            async with self.link.open(
                "DELETE", peer, target, connect_timeout_s=self.connect_timeout_s
            ) as reply:
                await reply.body(ABANDON_REPLY_BYTES_MAX)
        except DisruptorError:
            pass  # the peer is gone (or confused): nothing of ours runs there any more
