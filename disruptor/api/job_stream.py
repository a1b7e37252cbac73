"""``GET /jobs/stream``: one WebSocket that carries many jobs at once, each a frame, not a request.

For clients that send many small jobs (the Python client uses it for every job): the cost of a
tiny job becomes a frame each way instead of an HTTP request. Every WebSocket message, both ways,
is one MessagePack array of frames, so whatever is waiting travels together:

- client -> peer: ``{"op": "submit", "ref": N, "key": IDEMPOTENCY_KEY?, "job": JOB}`` (``JOB`` is
  the ``JobSpec`` of ``POST /jobs``, its items as ``chunks``) and ``{"op": "cancel", "ref": N}``;
- peer -> client: ``{"ref": N, "type": "done", "body": ANSWER}`` (``ANSWER`` as ``POST /jobs``
  answers in MessagePack); for a job with ``stream: true``, first ``{"ref": N, "type":
  "started", "body": {"id": JOB_ID}}`` and then ``{"ref": N, "type": "piece", "body": PIECE}``
  for each piece of results as it is accepted (its ``done`` then carries no results); and
  ``{"ref": N, "type": "error", "problem": PROBLEM}`` for a job refused (the problem+json of the
  same refusal over HTTP). A client ignores frame types it does not know.

Rules: ``ref`` is the client's own number, unique among its jobs in flight on the socket; at most
``JOBS_IN_FLIGHT_MAX`` jobs per socket are running at once (past that the socket is not read
until one ends, so a fast sender is slowed, not buffered); a socket that closes cancels the jobs
it started (their submitter can no longer hear them). A frame that is not valid ends the socket
with a close code and reason.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from aiohttp import web

from ..errors import InvalidPayload
from ..jobs.answer import job_body, piece_body
from ..jobs.job import Job
from ..jobs.wire import IDEMPOTENCY_KEY_CHARS_MAX, JOB_BYTES_MAX, JobSpec
from .frames import Outbox, serve_frames
from .jobs import coordinator_of, submit

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


async def get_job_stream(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(max_msg_size=JOB_BYTES_MAX, heartbeat=30.0, compress=False)
    await socket.prepare(request)
    coordinator = coordinator_of(request)
    jobs: dict[int, Job] = {}  # by ref, while they run

    async def run(frame: StreamFrame, outbox: Outbox) -> None:
        if frame.op != "submit" or frame.job is None:
            raise InvalidPayload(f"frame {frame.ref}: 'op' must be submit (with a job) or cancel")
        job = await submit(coordinator, frame.job, frame.key)
        jobs[frame.ref] = job
        try:
            if frame.job.stream:
                outbox.put({"ref": frame.ref, "type": "started", "body": {"id": job.job_id}})
                async for piece in job.pieces_as_delivered():
                    body = piece_body(piece, binary=True)
                    outbox.put({"ref": frame.ref, "type": "piece", "body": body})
            await job.done.wait()
        except asyncio.CancelledError:
            # The socket closed: nobody is left to hear this job's results.
            if not job.state.finished:
                coordinator.cancel(job.job_id)
            raise
        finally:
            jobs.pop(frame.ref, None)
        answer = job_body(job, results=not frame.job.stream, binary=True)
        outbox.put({"ref": frame.ref, "type": "done", "body": answer})

    def cancel(ref: int) -> None:
        job = jobs.get(ref)
        if job is not None and not job.state.finished:
            coordinator.cancel(job.job_id)  # its done frame (state: cancelled) still goes out

    await serve_frames(
        request, socket, Frames, run, in_flight_max=JOBS_IN_FLIGHT_MAX, on_cancel=cancel
    )
    return socket


def add_routes(app: web.Application) -> None:
    app.router.add_get("/jobs/stream", get_job_stream)
