"""``GET /stream``: a WebSocket that takes items as they come and returns results as they finish.

The first message names the work (``{"bundle": SHA1}``, ``{"snippet": SOURCE}`` or
``{"snippet_sha1": SHA1}``, optionally ``timeout_s``, ``policy`` and the other job options);
each later message is ``{"id": ANY, "item": VALUE}``. Each item runs as a one-item job placed by
the policy (least-loaded unless said), with the same re-placement on faults as any job; the
reply is ``{"id", "value"|"error", "peer"}`` in completion order. Rule: at most
``STREAM_IN_FLIGHT_MAX`` items per socket are out at once; past that the socket is not read until
one finishes, so a fast producer is slowed, not buffered without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from ..errors import DisruptorError, InvalidPayload
from ..jobs.model import JobOptions, Work
from ..jobs.wire import JobSpec, decode_json, options_of, work_of
from .jobs import coordinator_of

STREAM_IN_FLIGHT_MAX = 1024
STREAM_MESSAGE_BYTES_MAX = 4 * 1024 * 1024


async def get_stream(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse(max_msg_size=STREAM_MESSAGE_BYTES_MAX, heartbeat=30.0)
    await socket.prepare(request)
    coordinator = coordinator_of(request)
    slots = asyncio.Semaphore(STREAM_IN_FLIGHT_MAX)
    running: set[asyncio.Task[None]] = set()
    work: Work | None = None
    options = JobOptions()

    async def run_one(item_id: Any, item: Any, work: Work) -> None:
        try:
            job = coordinator.submit(work, [item], options)
            await job.done.wait()
            outcomes = job.dispatcher.results.outcomes()
            outcome = outcomes[0] if outcomes else None
            reply = {"id": item_id, **(outcome.to_json() if outcome else {"error": None})}
        except DisruptorError as error:
            reply = {"id": item_id, "error": {"kind": error.slug, "message": error.detail}}
        finally:
            slots.release()
        if not socket.closed:
            await socket.send_str(json.dumps(reply))

    try:
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                break
            try:
                body = json.loads(message.data)
                if not isinstance(body, dict):
                    raise InvalidPayload("each message must be a JSON object")
                if work is None:
                    spec = decode_json(message.data.encode(), JobSpec)
                    work = work_of(spec)
                    options = options_of(spec)
                    await socket.send_str(json.dumps({"ready": True}))
                    continue
                if "item" not in body:
                    raise InvalidPayload("an item message is {'id': ..., 'item': ...}")
            except (ValueError, TypeError, DisruptorError) as error:
                detail = error.detail if isinstance(error, DisruptorError) else str(error)
                await socket.send_str(
                    json.dumps({"error": {"kind": "bad-request", "message": detail}})
                )
                continue
            await slots.acquire()
            task = asyncio.create_task(run_one(body.get("id"), body["item"], work))
            running.add(task)
            task.add_done_callback(running.discard)
        # The client closed its side: let the items already in flight answer first.
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        for task in running:
            task.cancel()
        with contextlib.suppress(Exception):
            await socket.close()
    return socket


def add_routes(app: web.Application) -> None:
    app.router.add_get("/stream", get_stream)
