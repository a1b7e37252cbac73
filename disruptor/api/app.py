"""Builds the peer's aiohttp application: middlewares, then each resource's routes.

Each resource lives in its own module with ``add_routes(app)``; this factory only lists them.
Middleware order (outermost first): observation (request id, counters, access log), the body pace
(slow bodies cut), problem+json rendering, then authentication, so a refused token is itself
rendered as problem+json and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from . import bundles, dashboard, health, jobs, metrics, observe, peers, snippets, workers
from .auth import API_TOKEN, CLUSTER_SECRET, PUBLIC_PATHS, PUBLIC_PREFIXES, auth_middleware
from .body_limits import PaceLimits, body_pace_middleware
from .context import PEER
from .observe import observe_middleware
from .problem import problem_middleware

if TYPE_CHECKING:
    from ..peer import Peer

# Resource modules, in the order their routes are added.
ROUTE_MODULES = [health, jobs, observe, metrics, dashboard, bundles, workers, snippets, peers]


def make_app(peer: Peer) -> web.Application:
    app = web.Application(
        middlewares=[
            observe_middleware,
            body_pace_middleware(PaceLimits.of(peer.config.http)),  # slow bodies are cut
            problem_middleware,
            auth_middleware,
        ],
        client_max_size=peer.config.http.json_body_bytes_max,
    )
    app[PEER] = peer
    app[API_TOKEN] = peer.api_token
    app[CLUSTER_SECRET] = peer.cluster_secret
    app[PUBLIC_PATHS] = frozenset({"/health", "/", "/login", "/logout"})
    app[PUBLIC_PREFIXES] = ("/static/",)
    for module in ROUTE_MODULES:
        module.add_routes(app)
    return app
