"""``GET /tasks/stream``: a coordinator's tasks on this peer, many in flight on one WebSocket.

What ``POST /tasks`` does, without an HTTP request per task: the coordinating peer opens the
socket once (the upgrade request carries its signed peer header, checked as any peer call's) and
sends each attempt as a frame ``{"op": "run", "ref": N, "task": TASK}`` (``TASK`` the
``TaskRequest`` of ``POST /tasks``, its chunk as bytes), answered by ``{"ref": N, "type":
"done", "body": REPLY}`` (the ``TaskReply``) or ``{"ref": N, "type": "error", "problem":
PROBLEM}``. ``{"op": "cancel", "ref": N}`` abandons an attempt; a socket that closes abandons
every attempt it carried (the coordinator is gone or has moved on). Frames travel as
``api/frames.py`` says; the bound on attempts in flight is the task server's own.
"""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from aiohttp import web

from ..errors import InvalidPayload
from ..jobs.wire import JOB_BYTES_MAX, TaskReply, TaskRequest, work_of
from ..logs import accept_request_id, request_context
from .context import PARTS
from .frames import Outbox, serve_frames

log = logging.getLogger("disruptor.tasks")

FRAMES_PER_MESSAGE_MAX = 4096
# Attempts in flight on one socket; the task server refuses past its own bound (Overloaded).
ATTEMPTS_IN_FLIGHT_MAX = 1024


class TaskFrame(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    op: str
    ref: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    task: TaskRequest | None = None


Frames = Annotated[list[TaskFrame], msgspec.Meta(max_length=FRAMES_PER_MESSAGE_MAX)]


async def get_task_stream(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(max_msg_size=JOB_BYTES_MAX, heartbeat=30.0, compress=False)
    await socket.prepare(request)
    parts = request.app[PARTS]
    server = parts.tasks
    here = str(parts.address)

    async def run(frame: TaskFrame, outbox: Outbox) -> None:
        if frame.op != "run" or frame.task is None:
            raise InvalidPayload(f"frame {frame.ref}: 'op' must be run (with a task) or cancel")
        task = frame.task
        # Each attempt is served under the request id of the job it belongs to.
        with request_context(accept_request_id(task.request_id)):
            log.info("task %s attempt %d from %s", task.task, task.attempt, task.coordinator)
            result = await server.serve_task(work_of(task), task)
        reply = TaskReply(
            count=result.count,
            values=msgspec.Raw(result.values),
            errors=list(result.errors),
            peer=result.peer or here,
        )
        outbox.put({"ref": frame.ref, "type": "done", "body": reply})

    await serve_frames(request, socket, Frames, run, in_flight_max=ATTEMPTS_IN_FLIGHT_MAX)
    return socket


def add_routes(app: web.Application) -> None:
    app.router.add_get("/tasks/stream", get_task_stream)
