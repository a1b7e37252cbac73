"""Who may call a peer: the bearer token (CLI, client, browser cookie) or a peer's HMAC.

Users present ``Authorization: Bearer <api token>``; the dashboard may set the same token in a
cookie once. Peers calling peers sign ``METHOD PATH TIMESTAMP`` with the cluster secret
(``X-Disruptor-Peer: <unix ts>.<hex hmac-sha256>``), valid for ``PEER_AUTH_SKEW_S`` either side,
so a peer never needs a user's token and a copied header soon stops working. Under ``/bundles``
alone, WebDAV clients that know only HTTP Basic (cadaver, davfs2, litmus, file managers) may send
the token as the password, any user name; a refusal there offers both schemes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import Unauthorized
from .problem import problem_response

TOKEN_COOKIE = "disruptor_token"  # noqa: S105 - a cookie name, not a secret
PEER_AUTH_HEADER = "X-Disruptor-Peer"
PEER_AUTH_SKEW_S = 60.0
# Paths where HTTP Basic (the token as password) is accepted: the WebDAV interface.
BASIC_AUTH_PREFIX = "/bundles"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_TOKEN: web.AppKey[str] = web.AppKey("api_token", str)
CLUSTER_SECRET: web.AppKey[bytes] = web.AppKey("cluster_secret", bytes)
PUBLIC_PATHS: web.AppKey[frozenset[str]] = web.AppKey("public_paths", frozenset)
PUBLIC_PREFIXES: web.AppKey[tuple[str, ...]] = web.AppKey("public_prefixes", tuple)


def peer_signature(secret: bytes, method: str, path: str, timestamp: int) -> str:
    message = f"{method.upper()} {path} {timestamp}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def peer_auth_header(secret: bytes, method: str, path: str, now_s: float | None = None) -> str:
    """The ``X-Disruptor-Peer`` value for one call from this peer to another."""
    timestamp = int(time.time() if now_s is None else now_s)
    return f"{timestamp}.{peer_signature(secret, method, path, timestamp)}"


def verify_peer_header(
    secret: bytes, value: str, method: str, path: str, now_s: float | None = None
) -> bool:
    ts_text, _, mac = value.partition(".")
    if not ts_text.isdigit() or len(mac) != 64:
        return False
    timestamp = int(ts_text)
    now = time.time() if now_s is None else now_s
    if abs(now - timestamp) > PEER_AUTH_SKEW_S:
        return False
    return hmac.compare_digest(mac, peer_signature(secret, method, path, timestamp))


def is_authorized(request: web.Request) -> bool:
    token = request.app[API_TOKEN]
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token):
        return True
    if scheme.lower() == "basic" and _basic_auth_path(request):
        return hmac.compare_digest(_basic_password(presented), token)
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    if cookie and hmac.compare_digest(cookie, token):
        return True
    peer_value = request.headers.get(PEER_AUTH_HEADER)
    if peer_value:
        return verify_peer_header(
            request.app[CLUSTER_SECRET], peer_value, request.method, request.path
        )
    return False


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
    if not is_public(request) and not is_authorized(request):
        error = Unauthorized(
            "a valid bearer token is required (see api.token in the data directory)"
        )
        if not _basic_auth_path(request):
            raise error
        refusal = problem_response(error, request.path)
        # Basic first: clients that read one challenge only are the ones that need it.
        refusal.headers.popall("WWW-Authenticate", None)
        refusal.headers.add("WWW-Authenticate", 'Basic realm="disruptor", charset="UTF-8"')
        refusal.headers.add("WWW-Authenticate", 'Bearer realm="disruptor"')
        return refusal
    return await handler(request)
