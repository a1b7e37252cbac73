"""Every request's request id, access log line and counters, in one outermost middleware.

The request id (``X-Request-Id``, the caller's if sane, else a fresh one) is set in the logging
context for the handler and everything it spawns, and echoed in the response. Requests are
counted by method, route pattern and status, and timed per route.

Rule: label values come from the route's pattern (``/bundles/{sha1}``), never the raw path, and
unknown methods fold into ``OTHER``, so the number of series stays bounded whatever clients send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..logs import REQUEST_ID_HEADER, accept_request_id, request_context
from .context import METRICS

log = logging.getLogger("disruptor.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "MKCOL", "MOVE"}
)
UNMATCHED_ROUTE = "(unmatched)"
# Long-lived streams would swamp the latency histogram with their lifetimes.
UNTIMED_ROUTES = frozenset({"/events"})


def route_label(request: web.Request) -> str:
    """The matched route's pattern, or a fixed label when no route matched."""
    match_info = request.match_info
    resource = match_info.route.resource if match_info is not None else None
    if resource is None or match_info.http_exception is not None:
        return UNMATCHED_ROUTE
    return resource.canonical


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "OTHER"


REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Echo the id on every response, streamed ones included (they are prepared in handlers)."""
    request_id = request.get(REQUEST_ID_KEY)
    if isinstance(request_id, str):
        response.headers[REQUEST_ID_HEADER] = request_id


@web.middleware
async def observe_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    started = time.perf_counter()
    stats = request.app[METRICS].http
    stats.in_flight += 1
    request[REQUEST_ID_KEY] = request_id
    status = 500
    with request_context(request_id):
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            # Redirects pass through here (the problem middleware renders the errors).
            status = exc.status
            raise
        finally:
            duration_s = time.perf_counter() - started
            route = route_label(request)
            stats.in_flight -= 1
            timed = None if route in UNTIMED_ROUTES else duration_s
            stats.record(method_label(request.method), route, status, timed)
            log.info("%s %s %d %.1fms", request.method, request.path, status, duration_s * 1000.0)


def add_routes(app: web.Application) -> None:
    """Adds no routes: hooks response preparation so every response names its request id."""
    app.on_response_prepare.append(_echo_request_id)
