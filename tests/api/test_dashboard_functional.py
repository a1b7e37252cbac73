from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from disruptor.api import dashboard
from disruptor.api.dashboard import HUB
from disruptor.api.snapshot import SnapshotBuilder
from disruptor.peer import Peer

from ..cluster import eventually


async def test_without_the_token_a_browser_is_sent_to_the_login_form(peer: Peer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(peer.url + "/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/login"
        async with s.get(peer.url + "/login") as r:
            assert r.status == 200
            page = await r.text()
            assert 'action="/login"' in page and 'name="token"' in page
        async with s.get(peer.url + "/static/dashboard.js") as r:
            assert r.status == 200
        for path in ("/events", "/dashboard/snapshot"):
            async with s.get(peer.url + path) as r:
                assert r.status == 401


def browser_like() -> aiohttp.ClientSession:
    # Like a browser, keep cookies set by a peer named by IP address.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_login_form_sets_an_httponly_strict_cookie(peer: Peer) -> None:
    async with browser_like() as s:
        async with s.post(peer.url + "/login", data={"token": "wrong"}) as r:
            assert r.status == 401
            assert "not this cluster" in await r.text()
            assert "disruptor_token" not in r.cookies
        async with s.post(peer.url + "/login", data={"token": "x" * 5000}) as r:
            assert r.status == 413
        async with s.post(
            peer.url + "/login", data={"token": peer.api_token}, allow_redirects=False
        ) as r:
            assert r.status == 303 and r.headers["Location"] == "/"
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        # The session now holds the cookie: the page, the snapshot and the API open up.
        async with s.get(peer.url + "/") as r:
            assert r.status == 200
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            page = await r.text()
            assert 'src="/static/dashboard.js"' in page
            assert "http://" not in page and "https://" not in page  # nothing from elsewhere
        async with s.get(peer.url + "/dashboard/snapshot") as r:
            snapshot = await r.json()
            assert snapshot["self"]["address"] == str(peer.address)
            assert [p["address"] for p in snapshot["peers"] if p["self"]] == [str(peer.address)]
        async with s.post(peer.url + "/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with s.get(peer.url + "/dashboard/snapshot") as r:
            assert r.status == 401


async def test_a_cross_site_logout_is_refused(peer: Peer) -> None:
    # A hostile page's form posting to /logout (logout CSRF) must not sign the user out.
    async with browser_like() as s:
        async with s.post(peer.url + "/login", data={"token": peer.api_token}) as r:
            assert r.status == 200
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "same-site"},  # another peer's port on this host
            {"Origin": f"http://127.0.0.1:{peer.address.port + 1}"},
        ):
            async with s.post(peer.url + "/logout", headers=headers, allow_redirects=False) as r:
                assert r.status == 403, headers
                assert "Set-Cookie" not in r.headers
            async with s.get(peer.url + "/dashboard/snapshot") as r:
                assert r.status == 200  # still signed in
        # From the page itself (as a browser sends it), logout works.
        own = {"Origin": peer.url, "Sec-Fetch-Site": "same-origin"}
        async with s.post(peer.url + "/logout", headers=own, allow_redirects=False) as r:
            assert r.status == 303 and "disruptor_token" in r.headers["Set-Cookie"]
        async with s.get(peer.url + "/dashboard/snapshot") as r:
            assert r.status == 401


async def test_token_in_the_url_once_becomes_a_cookie_and_leaves_the_url(peer: Peer) -> None:
    async with browser_like() as s:
        url = f"{peer.url}/?view=peers&token={peer.api_token}"
        async with s.get(url, allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/?view=peers"
            assert "HttpOnly" in r.headers["Set-Cookie"]
        async with s.get(peer.url + "/dashboard/snapshot") as r:
            assert r.status == 200
        async with s.get(peer.url + "/?token=nope") as r:
            assert r.status == 401


async def _events(session: aiohttp.ClientSession, url: str, count: int) -> list[bytes]:
    got: list[bytes] = []
    async with session.get(url + "/events") as r:
        assert r.headers["Content-Type"] == "text/event-stream"
        async for line in r.content:
            if line.startswith(b"data: "):
                got.append(line)
                if len(got) == count:
                    break
    return got


async def test_open_browsers_share_one_snapshot_per_interval(peer: Peer) -> None:
    hub = peer._runner.app[HUB]  # type: ignore[union-attr]
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    started = time.monotonic()
    async with aiohttp.ClientSession(headers=auth) as s:
        streams = await asyncio.wait_for(
            asyncio.gather(*(_events(s, peer.url, 3) for _ in range(3))), timeout=30
        )
    elapsed_s = time.monotonic() - started
    for events in streams:
        body = json.loads(events[-1].removeprefix(b"data: "))
        assert body["self"]["address"] == str(peer.address)
    # Nine events went out, but snapshots were built once per interval, not once per browser.
    assert hub.builds <= elapsed_s / dashboard.EVENT_INTERVAL_S + 2
    assert hub.builds < 9
    # Nobody watching: the streams end on their next write and the building task ends, so
    # nothing builds snapshots any more (only a new listener starts it again).
    await eventually(lambda: hub.listeners == 0, "the streams to end", timeout_s=15)
    await eventually(lambda: hub._task is None, "the snapshot builder to stop", timeout_s=15)


async def test_stopping_the_peer_ends_open_event_streams(peer: Peer) -> None:
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession(headers=auth) as s, s.get(peer.url + "/events") as r:
        await r.content.readline()
        await asyncio.wait_for(peer.stop(), timeout=10)
        rest = await asyncio.wait_for(r.content.read(), timeout=10)
        assert isinstance(rest, bytes)


def test_snapshot_of_a_fresh_peer_has_every_section(peer: Peer) -> None:
    snapshot = SnapshotBuilder(peer.parts, peer.metrics).build()
    json.dumps(snapshot)
    assert snapshot["unavailable"] == []
    assert snapshot["self"]["cluster"] == peer.settings.cluster_name
    assert snapshot["peers"][0]["state"] == "alive"
    assert set(snapshot["stats"]) == {"membership", "store", "pool", "snippets", "jobs", "http"}


async def test_event_streams_are_bounded(peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "EVENT_STREAMS_MAX", 1)
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession(headers=auth) as s, s.get(peer.url + "/events") as first:
        await first.content.readline()
        async with s.get(peer.url + "/events") as second:
            assert second.status == 429
            body = await second.json(content_type=None)
            assert body["type"] == "urn:disruptor:problem:overloaded"
            assert "Retry-After" in second.headers
