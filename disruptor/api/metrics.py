"""``GET /metrics``: this peer's metrics in Prometheus' text format (bearer token required).

Scrape every peer: each reports its own view and its own counters; nothing is aggregated here.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .context import METRICS


async def get_metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].render())
    # The exposition content type carries a version parameter aiohttp's content_type refuses.
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", get_metrics)
