"""Who may call a peer: the bearer token (CLI, client, browser cookie) or a peer's signature.

Users present ``Authorization: Bearer <api token>``; the dashboard may set the same token in a
cookie once. Peers calling peers sign each call with the cluster secret (``X-Disruptor-Peer``;
see ``disruptor.link.signature``): the method, the target, the body's digest and a nonce, so a
captured header is good for nothing else. Here the header is checked before the body is read,
then the body against its digest, then the nonce against those seen in the window.
Under ``/bundles`` alone, WebDAV clients that know only HTTP Basic (cadaver, davfs2, litmus, file
managers) may send the token as the password, any user name; a refusal there offers both schemes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import Unauthorized
from ..link.signature import PEER_AUTH_HEADER, PeerCallCheck
from .problem import problem_response

TOKEN_COOKIE = "disruptor_token"  # noqa: S105 - a cookie name, not a secret
# Paths where HTTP Basic (the token as password) is accepted: the WebDAV interface.
BASIC_AUTH_PREFIX = "/bundles"

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
    if scheme.lower() == "basic" and _basic_auth_path(request):
        return hmac.compare_digest(_basic_password(presented), token)
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


def _basic_auth_path(request: web.Request) -> bool:
    path = request.path
    return path == BASIC_AUTH_PREFIX or path.startswith(BASIC_AUTH_PREFIX + "/")


def _basic_password(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def is_public(request: web.Request) -> bool:
    if request.path in request.app.get(PUBLIC_PATHS, frozenset()):
        return True
    return request.path.startswith(request.app.get(PUBLIC_PREFIXES, ()) or ("\0",))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request) or is_authorized(request):
        return await handler(request)
    peer_value = request.headers.get(PEER_AUTH_HEADER)
    if peer_value is not None:
        await admit_peer_call(request, peer_value)
        return await handler(request)
    error = Unauthorized("a valid bearer token is required (see api.token in the data directory)")
    if not _basic_auth_path(request):
        raise error
    refusal = problem_response(error, request.path)
    # Basic first: clients that read one challenge only are the ones that need it.
    refusal.headers.popall("WWW-Authenticate", None)
    refusal.headers.add("WWW-Authenticate", 'Basic realm="disruptor", charset="UTF-8"')
    refusal.headers.add("WWW-Authenticate", 'Bearer realm="disruptor"')
    return refusal
