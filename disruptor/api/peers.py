"""``GET /peers`` (this peer and every peer it knows), ``POST /membership/sync`` (push-pull) and
``GET /membership/sections/<n>`` (one section of this peer's metadata).

``/peers`` lists, for each member: address, state (alive, suspect, dead, left), since and last seen
(unix seconds), incarnation, load and bundles from its gossip metadata, and a link to its own page.
``/membership/sync`` is the HTTP half of gossip: another peer posts its member table and gets ours
back; it is how a newcomer joins. A metadata section too large for gossip (the bundles held) is
fetched from its peer at ``/membership/sections/<n>`` when its digest changes. Rule: only peers
(HMAC) and users (token) reach either, through the auth middleware; bodies are size-checked before
parsing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import NotFound, PayloadTooLarge, Unavailable
from ..membership.driver import SECTIONS_PATH, SYNC_PATH
from ..membership.members import MemberView
from .context import PARTS

STATE_ORDER = {"alive": 0, "suspect": 1, "dead": 2, "left": 3}


def member_json(view: MemberView) -> dict[str, Any]:
    return {
        "address": str(view.address),
        "state": view.state,
        "since": round(view.since, 3),
        "last_seen": round(view.last_seen, 3),
        "incarnation": view.incarnation,
        "self": view.is_self,
        "url": view.address.url + "/",
        **view.meta.to_json(),
    }


async def get_peers(request: web.Request) -> web.Response:
    parts = request.app[PARTS]
    members = parts.membership.members()
    members.sort(key=lambda v: (not v.is_self, STATE_ORDER.get(v.state, 9), str(v.address)))
    return web.json_response(
        {"self": str(parts.address), "peers": [member_json(v) for v in members]}
    )


async def post_sync(request: web.Request) -> web.Response:
    membership = request.app[PARTS].membership
    if membership.protocol is None:
        raise Unavailable("membership is not running yet", retry_after_s=1.0)
    limit = membership.config.sync_bytes_max
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"push-pull body over {limit} bytes")
    # Read whole (within the application's body limit): a peer call's body was already read
    # to check its signature, and aiohttp keeps it.
    body = await request.read()
    if len(body) > limit:
        raise PayloadTooLarge(f"push-pull body over {limit} bytes")
    reply = membership.handle_sync(body)
    return web.Response(body=reply, content_type="application/octet-stream")


async def get_section(request: web.Request) -> web.Response:
    membership = request.app[PARTS].membership
    if membership.protocol is None:
        raise Unavailable("membership is not running yet", retry_after_s=1.0)
    raw = request.match_info["section"]
    if not raw.isdigit() or len(raw) > 3:
        raise NotFound(f"no metadata section {raw!r}")
    body = membership.section(int(raw))
    return web.Response(body=body, content_type="application/octet-stream")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/peers", get_peers)
    app.router.add_post(SYNC_PATH, post_sync)
    app.router.add_get(SECTIONS_PATH + "/{section}", get_section)
