"""``/workers``: start, list and stop warm worker processes of a bundle on this peer.

``POST /workers`` ``{"bundle": SHA1, "count": N}`` starts N more workers (default: the manifest's
``count``), waits until they are ready, and answers 201 ``{"workers": [...]}``. ``GET /workers``
answers ``{"workers": [{id, bundle, name, pid, state, tasks_done, restarts, uptime_s, isolation,
uid}], "failed": {SHA1: reason}}``. ``DELETE /workers/<sha1>`` drains then stops the bundle's
workers (204). Each handler works on this peer through the ``local_*`` functions, so a cluster
scope can be added around them without changing the local behaviour.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import InvalidPayload
from ..workers.pool import WorkerPool
from .bodies import read_json_object
from .context import PARTS

COUNT_MAX = 1024


async def cluster_workers(
    request: web.Request, method: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    """``/workers`` on several peers: ``{"peers": {address: reply | {"error": problem}}}``.

    The scope is ``peers`` in a POST body, ``?peers=all|N|HOST:PORT,...`` on a DELETE, and
    every live peer for ``GET /workers?scope=cluster``.
    """
    spec: Any = "all"
    if body is not None:
        spec = body.get("peers")
    elif method == "DELETE":
        text = request.query.get("peers", "all")
        spec = int(text) if text.isdigit() else ("all" if text == "all" else text.split(","))
    fanout = request.app[PARTS].fanout
    return {"peers": await fanout.fan_out(method, request.path, body, spec)}


def pool_of(request: web.Request) -> WorkerPool:
    return request.app[PARTS].pool


def parse_start(body: dict[str, Any]) -> tuple[str, int | None]:
    bundle = body.get("bundle")
    if not isinstance(bundle, str) or not bundle:
        raise InvalidPayload("'bundle' must be the SHA-1 of a bundle held by this peer")
    count = body.get("count")
    if count is not None and (
        isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= COUNT_MAX
    ):
        raise InvalidPayload(f"'count' must be an integer from 1 to {COUNT_MAX}")
    return bundle, count


async def local_start(pool: WorkerPool, bundle: str, count: int | None) -> list[dict[str, Any]]:
    return [info.to_json() for info in await pool.start_workers(bundle, count)]


def local_list(pool: WorkerPool) -> dict[str, Any]:
    return {
        "workers": [info.to_json() for info in pool.workers()],
        "failed": pool.failed_bundles(),
    }


async def post_workers(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if body.get("peers") is not None:  # cluster scope: the same start on each named peer
        parse_start(body)
        return web.json_response(await cluster_workers(request, "POST", body), status=201)
    bundle, count = parse_start(body)
    workers = await local_start(pool_of(request), bundle, count)
    return web.json_response({"workers": workers}, status=201)


async def get_workers(request: web.Request) -> web.Response:
    if request.query.get("scope") == "cluster":
        return web.json_response(await cluster_workers(request, "GET", None))
    return web.json_response(local_list(pool_of(request)))


async def delete_workers(request: web.Request) -> web.Response:
    if request.query.get("peers") is not None:
        return web.json_response(await cluster_workers(request, "DELETE", None))
    await pool_of(request).stop_workers(request.match_info["sha1"])
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/workers", post_workers)
    app.router.add_get("/workers", get_workers)
    app.router.add_delete("/workers/{sha1}", delete_workers)
