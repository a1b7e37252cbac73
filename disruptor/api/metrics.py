"""``GET /metrics``: this peer's metrics for Prometheus (bearer token required).

Prometheus' text format, or OpenMetrics when the ``Accept`` header asks for
``application/openmetrics-text`` (as Prometheus itself does). Scrape every peer: each reports its
own view and its own counters; nothing is aggregated here.
"""

from __future__ import annotations

from aiohttp import web

from .context import METRICS


async def get_metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].exposition(request.headers.get("Accept", ""))
    response = web.Response(body=body)
    # The exposition content type carries parameters aiohttp's content_type refuses.
    response.headers["Content-Type"] = content_type
    response.headers["Vary"] = "Accept"
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", get_metrics)
