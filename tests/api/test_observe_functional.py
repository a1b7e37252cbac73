from __future__ import annotations

import aiohttp

from disruptor.api.observe import UNMATCHED_ROUTE
from disruptor.peer import Peer


async def test_request_ids_are_echoed_generated_or_replaced(peer: Peer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(peer.url + "/health", headers={"X-Request-Id": "job-1.a"}) as r:
            assert r.headers["X-Request-Id"] == "job-1.a"
        async with s.get(peer.url + "/health") as r:
            generated = r.headers["X-Request-Id"]
            assert len(generated) == 16
        async with s.get(peer.url + "/health", headers={"X-Request-Id": "bad id;" * 40}) as r:
            assert r.headers["X-Request-Id"] not in ("", "bad id;" * 40)
        # Errors rendered as problem+json carry it too.
        async with s.get(peer.url + "/nope", headers={"X-Request-Id": "r-404"}) as r:
            assert r.status == 401
            assert r.headers["X-Request-Id"] == "r-404"


async def test_requests_are_counted_by_route_pattern_not_raw_path(peer: Peer) -> None:
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession() as s:
        for n in range(3):
            async with s.get(f"{peer.url}/no/such/path/{n}", headers=auth) as r:
                assert r.status == 404
        async with s.get(f"{peer.url}/static/dashboard.css") as r:
            assert r.status == 200
        async with s.get(peer.url + "/health") as r:
            assert r.status == 200
    assert peer.metrics is not None
    requests = peer.metrics.http.requests
    assert requests[("GET", UNMATCHED_ROUTE, 404)] == 3
    assert requests[("GET", "/health", 200)] == 1
    assert requests[("GET", "/static", 200)] == 1
    assert not any("/no/such" in route for _, route, _ in requests)
    assert peer.metrics.http.durations[("GET", "/health")].count == 1
