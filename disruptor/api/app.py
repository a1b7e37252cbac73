"""Builds the peer's aiohttp application: middlewares, then each resource's routes.

Each resource lives in its own module with ``add_routes(app)``; this factory only lists them and
puts what handlers read into the application: the typed ``Parts`` record and the metrics part
(``context.py``), the API token and the peer-call check (``auth.py``). Middleware order
(outermost first): observation (request id, counters, access log), the body pace (slow bodies
cut), problem+json rendering, then authentication, so a refused token is itself rendered as
problem+json and counted.
"""

from __future__ import annotations

from aiohttp import web

from ..link.signature import PeerCallCheck
from ..metrics import Metrics
from ..parts import Parts
from . import (
    bundles,
    dashboard,
    frames,
    health,
    job_stream,
    jobs,
    metrics,
    observe,
    peers,
    snippets,
    stream,
    task_stream,
    tasks,
    workers,
)
from .auth import API_TOKEN, PEER_CALLS, PUBLIC_PATHS, PUBLIC_PREFIXES, auth_middleware
from .body_limits import PaceLimits, UploadGate, body_pace_middleware
from .bundles import UPLOADS
from .context import METRICS, PARTS
from .observe import observe_middleware
from .problem import problem_middleware

# Resource modules, in the order their routes are added.
ROUTE_MODULES = [
    health,
    job_stream,
    jobs,
    task_stream,
    tasks,
    stream,
    observe,
    metrics,
    dashboard,
    bundles,
    workers,
    snippets,
    peers,
]


def make_app(
    parts: Parts,
    metrics_part: Metrics,
    *,
    api_token: str,
    peer_calls: PeerCallCheck,
    json_body_bytes_max: int,
    pace: PaceLimits,
    uploads: UploadGate,
) -> web.Application:
    app = web.Application(
        middlewares=[
            observe_middleware,
            body_pace_middleware(pace),  # slow bodies are cut
            problem_middleware,
            auth_middleware,
        ],
        client_max_size=json_body_bytes_max,
    )
    app[PARTS] = parts
    app[METRICS] = metrics_part
    app[API_TOKEN] = api_token
    app[PEER_CALLS] = peer_calls
    app[UPLOADS] = uploads
    app[PUBLIC_PATHS] = frozenset({"/health", "/", "/login", "/logout"})
    app[PUBLIC_PREFIXES] = ("/static/",)
    frames.add_shutdown(app)
    for module in ROUTE_MODULES:
        module.add_routes(app)
    return app
