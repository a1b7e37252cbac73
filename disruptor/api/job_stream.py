"""``GET /jobs/stream``: one WebSocket that carries many jobs at once, each a frame, not a request.

For clients that send many small jobs (the Python client uses it for every job): the cost of a
tiny job becomes a frame each way instead of an HTTP request. Every WebSocket message, both ways,
is one MessagePack array of frames, so whatever is waiting travels together:

- client -> peer: ``{"op": "submit", "ref": N, "key": IDEMPOTENCY_KEY?, "job": JOB}`` (``JOB`` is
  the ``JobSpec`` of ``POST /jobs``, its items as ``chunks``) and ``{"op": "cancel", "ref": N}``;
- peer -> client: ``{"ref": N, "type": "done", "answer": ANSWER}`` (``ANSWER`` as ``POST /jobs``
  answers in MessagePack); for a job with ``stream: true``, first ``{"ref": N, "type": "started",
  "id": JOB_ID}`` and then ``{"ref": N, "type": "piece", "piece": PIECE}`` for each piece of
  results as it is accepted (its ``done`` then carries no results); and ``{"ref": N, "type":
  "error", "problem": PROBLEM}`` for a job refused (the problem+json of the same refusal over
  HTTP). A client ignores frame types it does not know.

Rules: ``ref`` is the client's own number, unique among its jobs in flight on the socket; at most
``JOBS_IN_FLIGHT_MAX`` jobs per socket are running at once (past that the socket is not read
until one ends, so a fast sender is slowed, not buffered); a socket that closes cancels the jobs
it started (their submitter can no longer hear them). A frame that is not valid ends the socket
with a close code and reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from ..errors import DisruptorError, InvalidPayload
from ..jobs.answer import job_body, piece_body
from ..jobs.job import Job
from ..jobs.wire import IDEMPOTENCY_KEY_CHARS_MAX, JOB_BYTES_MAX, JobSpec, decode_msgpack
from .jobs import coordinator_of, submit

log = logging.getLogger("disruptor.api")

JOBS_IN_FLIGHT_MAX = 1024
FRAMES_PER_MESSAGE_MAX = 4096


class StreamFrame(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    op: str
    ref: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=IDEMPOTENCY_KEY_CHARS_MAX)] | None = (
        None
    )
    job: JobSpec | None = None


Frames = Annotated[list[StreamFrame], msgspec.Meta(max_length=FRAMES_PER_MESSAGE_MAX)]
_encoder = msgspec.msgpack.Encoder()


class _Outbox:
    """Frames waiting to go out; one writer sends all that wait as one message."""

    def __init__(self, socket: web.WebSocketResponse) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self.ready = asyncio.Event()

    def put(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        self.ready.set()

    async def run(self) -> None:
        while True:
            await self.ready.wait()
            self.ready.clear()
            frames, self.frames = self.frames, []
            if frames and not self.socket.closed:
                await self.socket.send_bytes(_encoder.encode(frames))


async def get_job_stream(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(max_msg_size=JOB_BYTES_MAX, heartbeat=30.0, compress=False)
    await socket.prepare(request)
    coordinator = coordinator_of(request)
    outbox = _Outbox(socket)
    writer = asyncio.create_task(outbox.run(), name="job-stream-writer")
    slots = asyncio.Semaphore(JOBS_IN_FLIGHT_MAX)
    running: dict[int, tuple[asyncio.Task[None], Job | None]] = {}

    async def run_one(frame: StreamFrame) -> None:
        job: Job | None = None
        try:
            assert frame.job is not None
            job = await submit(coordinator, frame.job, frame.key)
            running[frame.ref] = (running[frame.ref][0], job)
            if frame.job.stream:
                outbox.put({"ref": frame.ref, "type": "started", "id": job.job_id})
                async for piece in job.pieces_as_delivered():
                    outbox.put(
                        {"ref": frame.ref, "type": "piece", "piece": piece_body(piece, True)}
                    )
            await job.done.wait()
            answer = job_body(job, results=not frame.job.stream, binary=True)
            outbox.put({"ref": frame.ref, "type": "done", "answer": answer})
        except DisruptorError as error:
            outbox.put({"ref": frame.ref, "type": "error", "problem": error.to_problem()})
        except Exception:
            log.exception("job stream: job %d failed unexpectedly", frame.ref)
            problem = DisruptorError("the peer failed to run this job").to_problem()
            outbox.put({"ref": frame.ref, "type": "error", "problem": problem})
        finally:
            running.pop(frame.ref, None)
            slots.release()

    try:
        async for message in socket:
            if message.type is not WSMsgType.BINARY:
                await socket.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"binary frames only")
                break
            try:
                frames = decode_msgpack(message.data, Frames)
            except InvalidPayload as error:
                reason = error.detail.encode()[:120]
                await socket.close(code=WSCloseCode.UNSUPPORTED_DATA, message=reason)
                break
            for frame in frames:
                if frame.op == "cancel":
                    entry = running.get(frame.ref)
                    if entry is not None and entry[1] is not None:
                        coordinator.cancel(entry[1].job_id)
                    continue
                if frame.op != "submit" or frame.job is None or frame.ref in running:
                    problem = InvalidPayload(
                        f"frame {frame.ref}: 'op' must be submit (with a job and a new ref) "
                        "or cancel"
                    ).to_problem()
                    outbox.put({"ref": frame.ref, "type": "error", "problem": problem})
                    continue
                await slots.acquire()
                task = asyncio.create_task(run_one(frame))
                running[frame.ref] = (task, None)
    finally:
        for task, job in list(running.values()):
            if job is not None and not job.state.finished:
                coordinator.cancel(job.job_id)
            task.cancel()
        await asyncio.gather(*(task for task, _ in running.values()), return_exceptions=True)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        with contextlib.suppress(Exception):
            await socket.close()
    return socket


def add_routes(app: web.Application) -> None:
    app.router.add_get("/jobs/stream", get_job_stream)
