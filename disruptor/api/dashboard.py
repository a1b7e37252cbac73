"""The browser dashboard: ``/`` (the page), ``/events`` (live snapshots), login and logout.

``GET /events`` is a server-sent event stream: one ``snapshot`` event about every second. However
many browsers are open, the snapshot is built and encoded once per interval and the same bytes go
to all of them, and nothing is built while no browser is watching, so an open dashboard costs the
peer almost nothing.

Auth is the API's token: a login form (``POST /login``) or ``/?token=...`` once, either of which
sets it in an HttpOnly, SameSite=Strict cookie and redirects to a clean URL. The page and the login
routes are public and check the token themselves (so a browser is sent to the login form rather
than shown a 401 body); the static files (style, script, icon) hold nothing secret and are public;
``/events`` and ``/dashboard/snapshot`` sit behind the auth middleware like the rest of the API.
Logout changes state, so it is refused unless it comes from this page: a cross-site form posting
to ``/logout`` (logout CSRF) is told 403 and the cookie stays (``same_origin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import json
import logging
import urllib.parse
from pathlib import Path

from aiohttp import web

from ..errors import Forbidden, Overloaded
from .auth import API_TOKEN, TOKEN_COOKIE, is_authorized
from .context import METRICS, PARTS
from .snapshot import SnapshotBuilder

log = logging.getLogger("disruptor.dashboard")

STATIC_DIR = Path(__file__).parent / "static"
EVENT_INTERVAL_S = 1.0
# Open event streams per peer: each holds a connection and a task; dashboards are for people, and
# a few dozen people watching one peer is plenty.
EVENT_STREAMS_MAX = 64
LOGIN_FORM_BYTES_MAX = 4096
# The page loads only its own files; nothing external, no inline script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SnapshotHub:
    """Builds one snapshot per interval while anyone listens, and shares its encoded bytes."""

    def __init__(self, builder: SnapshotBuilder, interval_s: float = EVENT_INTERVAL_S) -> None:
        self._builder = builder
        self._interval_s = interval_s
        self._listeners = 0
        self._latest = b""
        self._fresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.builds = 0

    @property
    def listeners(self) -> int:
        return self._listeners

    def encode(self) -> bytes:
        body = json.dumps(self._builder.build(), separators=(",", ":"))
        self.builds += 1
        return b"event: snapshot\ndata: " + body.encode() + b"\n\n"

    async def listen(self) -> _Listener:
        if self._listeners >= EVENT_STREAMS_MAX:
            raise Overloaded(f"at most {EVENT_STREAMS_MAX} dashboards may watch one peer at once")
        if self._task is None and not self.closed:
            self._latest = self.encode()
            self._task = asyncio.create_task(self._run(), name="dashboard-events")
        self._listeners += 1
        return _Listener(self)

    def _leave(self) -> None:
        self._listeners -= 1

    async def next(self, after: bytes) -> bytes:
        """The next snapshot's bytes once it differs from ``after`` (empty once closed)."""
        while not self.closed and self._latest is after:
            fresh = self._fresh
            await fresh.wait()
        return b"" if self.closed else self._latest

    async def _run(self) -> None:
        try:
            while self._listeners > 0 and not self.closed:
                await asyncio.sleep(self._interval_s)
                try:
                    self._latest = self.encode()
                except Exception:
                    log.exception("dashboard: snapshot failed")
                    continue
                fresh, self._fresh = self._fresh, asyncio.Event()
                fresh.set()
        finally:
            self._task = None

    async def close(self) -> None:
        self.closed = True
        self._fresh.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _Listener:
    def __init__(self, hub: SnapshotHub) -> None:
        self._hub = hub

    def __enter__(self) -> SnapshotHub:
        return self._hub

    def __exit__(self, *exc: object) -> None:
        self._hub._leave()


HUB: web.AppKey[SnapshotHub] = web.AppKey("dashboard_hub", SnapshotHub)


def _page(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def login_page(error: str = "", status: int = 200) -> web.Response:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _html(_page("login.html").replace("<!--error-->", message), status)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _with_cookie(response: web.Response, token: str) -> web.Response:
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


def _token_matches(request: web.Request, presented: str) -> bool:
    return hmac.compare_digest(presented.strip().encode(), request.app[API_TOKEN].encode())


async def get_index(request: web.Request) -> web.StreamResponse:
    presented = request.query.get("token")
    if presented is not None:
        if not _token_matches(request, presented):
            return login_page("That token is not this cluster's API token.", status=401)
        # The token leaves the address bar (and history) at once.
        clean = request.rel_url.without_query_params("token")
        return _with_cookie(see_other(str(clean)), presented.strip())
    if not is_authorized(request):
        return see_other("/login")
    return _html(_page("index.html"))


async def get_login(request: web.Request) -> web.StreamResponse:
    if is_authorized(request):
        return see_other("/")
    return login_page()


async def post_login(request: web.Request) -> web.StreamResponse:
    body = await request.content.read(LOGIN_FORM_BYTES_MAX + 1)
    if len(body) > LOGIN_FORM_BYTES_MAX:
        return login_page("The form is too large.", status=413)
    fields = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"))
    presented = (fields.get("token") or [""])[0]
    if not presented.strip():
        return login_page("Enter the API token.", status=400)
    if not _token_matches(request, presented):
        return login_page("That token is not this cluster's API token.", status=401)
    return _with_cookie(see_other("/"), presented.strip())


def same_origin(request: web.Request) -> bool:
    """Whether a browser sent this request from one of this peer's own pages.

    Browsers say where a request comes from: ``Sec-Fetch-Site`` (``same-origin`` for our pages)
    and ``Origin`` on every POST. When either is there it must say "this peer"; a client that is
    not a browser sends neither, and cannot be made to send a request by a hostile page.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("Origin")
    if origin is not None:
        # The host, not the scheme: behind a TLS proxy the page is https and we serve http.
        return urllib.parse.urlsplit(origin).netloc == request.host
    return True


async def post_logout(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        raise Forbidden("logout must come from this peer's dashboard (cross-site request refused)")
    response = see_other("/login")
    if is_authorized(request):  # nothing to sign out of otherwise
        response.del_cookie(TOKEN_COOKIE, path="/")
    return response


async def get_snapshot(request: web.Request) -> web.Response:
    builder = SnapshotBuilder(request.app[PARTS], request.app[METRICS])
    return web.json_response(builder.build())


async def get_events(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    listener = await hub.listen()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    with listener as stream:
        await response.prepare(request)
        sent = b""
        try:
            # Tell the browser to reconnect after 2 s if the stream drops.
            await response.write(b"retry: 2000\n\n")
            while True:
                data = await stream.next(sent)
                if not data:
                    break
                await response.write(data)
                sent = data
        except (ConnectionResetError, ConnectionError):
            pass
    return response


def add_routes(app: web.Application) -> None:
    hub = SnapshotHub(SnapshotBuilder(app[PARTS], app[METRICS]))
    app[HUB] = hub

    async def close_hub(_: web.Application) -> None:
        await hub.close()

    app.on_shutdown.append(close_hub)
    app.router.add_get("/", get_index)
    app.router.add_get("/login", get_login)
    app.router.add_post("/login", post_login)
    app.router.add_post("/logout", post_logout)
    app.router.add_get("/events", get_events)
    app.router.add_get("/dashboard/snapshot", get_snapshot)
    app.router.add_static("/static/", STATIC_DIR, name="static")
