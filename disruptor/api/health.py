"""``GET /health``: a public liveness probe naming the peer, its version and its event loop (no
secrets, no load figures)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .. import event_loop
from ..version import __version__
from .context import PARTS


async def get_health(request: web.Request) -> web.Response:
    address = str(request.app[PARTS].address)
    loop = event_loop.name_of(asyncio.get_running_loop())
    body = {"status": "ok", "address": address, "version": __version__, "event_loop": loop}
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", get_health)
