from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from disruptor.peer import Peer

from ..test_metrics_functional import promtool_check


async def test_metrics_need_the_token(peer: Peer) -> None:
    async with aiohttp.ClientSession() as s, s.get(peer.url + "/metrics") as r:
        assert r.status == 401


async def test_a_real_peer_passes_promtool_and_counts_its_requests(peer: Peer) -> None:
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession() as s:
        async with s.get(peer.url + "/health") as r:
            assert r.status == 200
        async with s.get(peer.url + "/metrics", headers=auth) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=")
            text = await r.read()
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    health = [
        s
        for s in families["disruptor_http_requests"].samples
        if s.labels == {"method": "GET", "route": "/health", "status": "200"}
    ]
    assert [s.value for s in health] == [1.0]
    assert families["disruptor_peer_info"].samples[0].labels["address"] == str(peer.address)
    assert "disruptor_process_resident_memory_bytes" in {
        s.name for f in families.values() for s in f.samples
    }
    promtool_check(text)
