"""Who may call a peer: the bearer token (CLI, client, browser cookie) or a peer's signature.

Users present ``Authorization: Bearer <api token>``; the dashboard may set the same token in a
cookie once. Peers calling peers sign each call with the cluster secret (``X-Disruptor-Peer``;
see ``disruptor.link.signature``): the method, the target, the body's digest and a nonce, so a
captured header is good for nothing else. Here the header is checked before the body is read,
then the body against its digest, then the nonce against those seen in the window.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import Unauthorized
from ..link.signature import PEER_AUTH_HEADER, PeerCallCheck

TOKEN_COOKIE = "disruptor_token"  # noqa: S105 - a cookie name, not a secret

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_TOKEN: web.AppKey[str] = web.AppKey("api_token", str)
PEER_CALLS: web.AppKey[PeerCallCheck] = web.AppKey("peer_calls", PeerCallCheck)
PUBLIC_PATHS: web.AppKey[frozenset[str]] = web.AppKey("public_paths", frozenset)
PUBLIC_PREFIXES: web.AppKey[tuple[str, ...]] = web.AppKey("public_prefixes", tuple)


def is_authorized(request: web.Request) -> bool:
    """The caller is a user: the API token as a bearer token or in the dashboard's cookie."""
    token = request.app[API_TOKEN]
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token):
        return True
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, token)


async def admit_peer_call(request: web.Request, value: str) -> None:
    """Accept a signed peer call once, for its own body; ``Unauthorized`` otherwise.

    The body is read (bounded by the application's body limit) only once the signature shows
    the caller holds the secret; handlers read it again from aiohttp's cache.
    """
    check = request.app[PEER_CALLS]
    signature = check.check_head(value, request.method, request.raw_path, time.time())
    body = await request.read() if request.body_exists else b""
    check.admit(signature, body, time.time())


def is_public(request: web.Request) -> bool:
    if request.path in request.app.get(PUBLIC_PATHS, frozenset()):
        return True
    return request.path.startswith(request.app.get(PUBLIC_PREFIXES, ()) or ("\0",))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request) or is_authorized(request):
        return await handler(request)
    peer_value = request.headers.get(PEER_AUTH_HEADER)
    if peer_value is None:
        raise Unauthorized("a valid bearer token is required (see api.token in the data directory)")
    await admit_peer_call(request, peer_value)
    return await handler(request)
