"""``/tasks``: the calls peers make to each other to run a job's tasks (peer-signed only).

``POST /tasks`` runs one attempt here for another coordinator: a ``TaskRequest`` (MessagePack,
its chunk of items as bytes) answered by a ``TaskReply``; ``DELETE /tasks/<job>[?task=ID]``
abandons a job's attempts here; ``GET /tasks`` lists what runs; ``POST /tasks/fetch``
``{"bundle", "sources"}`` asks this peer to fetch a bundle from the named peers. All are the
``TaskServer``'s.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from ..address import Address
from ..chunks import MSGPACK
from ..errors import InvalidPayload, UnsupportedMediaType
from ..jobs.served import TaskServer
from ..jobs.wire import SHA1_PATTERN, TaskReply, TaskRequest, work_of
from .bodies import answer, encoded, read_json_object, read_message, sends_msgpack
from .context import PARTS


def tasks_of(request: web.Request) -> TaskServer:
    return request.app[PARTS].tasks


async def post_tasks(request: web.Request) -> web.Response:
    if not sends_msgpack(request):
        raise UnsupportedMediaType(f"a task is sent as {MSGPACK}")
    task = await read_message(request, TaskRequest)
    result = await tasks_of(request).serve_task(work_of(task), task)
    reply = TaskReply(
        count=result.count,
        values=msgspec.Raw(result.values),
        errors=list(result.errors),
        peer=result.peer or str(request.app[PARTS].address),
    )
    return encoded(reply, binary=True)


async def post_fetch(request: web.Request) -> web.Response:
    """A peer deploying a bundle asks this one to fetch it from the named sources."""
    body = await read_json_object(request)
    bundle = body.get("bundle")
    if not isinstance(bundle, str) or not SHA1_PATTERN.fullmatch(bundle):
        raise InvalidPayload("'bundle' must be 40 lowercase hex digits (a SHA-1)")
    sources = body.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise InvalidPayload("'sources' must be a list of HOST:PORT")
    await tasks_of(request).ensure_bundle(bundle, [str(Address.parse(s)) for s in sources])
    return answer(request, {"bundle": bundle, "held": True})


async def delete_tasks(request: web.Request) -> web.Response:
    stopped = tasks_of(request).abandon_served(
        request.match_info["job_id"], request.query.get("task")
    )
    return answer(request, {"stopped": stopped})


async def get_tasks(request: web.Request) -> web.Response:
    return answer(request, {"serving": tasks_of(request).serving()})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/tasks", post_tasks)
    app.router.add_get("/tasks", get_tasks)
    app.router.add_post("/tasks/fetch", post_fetch)
    app.router.add_delete("/tasks/{job_id}", delete_tasks)
