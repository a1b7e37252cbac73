"""``GET /health``: a public liveness probe naming the peer (no secrets, no load figures)."""

from __future__ import annotations

from aiohttp import web

from ..version import __version__
from .context import PEER


async def get_health(request: web.Request) -> web.Response:
    peer = request.app[PEER]
    return web.json_response({"status": "ok", "address": str(peer.address), "version": __version__})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", get_health)
