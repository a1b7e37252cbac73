"""``GET /health``: a public liveness probe naming the peer (no secrets, no load figures)."""

from __future__ import annotations

from aiohttp import web

from ..version import __version__
from .context import PARTS


async def get_health(request: web.Request) -> web.Response:
    address = str(request.app[PARTS].address)
    return web.json_response({"status": "ok", "address": address, "version": __version__})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", get_health)
