"""``GET /metrics`` on a real peer: the token, promtool, help texts, OpenMetrics."""

from __future__ import annotations

import aiohttp
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
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
    names = {s.name for f in families.values() for s in f.samples}
    # The stock names ready-made dashboards expect, not names of our own.
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"} <= names
    assert not [n for n in names if n.startswith("disruptor_process_")]
    promtool_check(text)


async def test_every_help_text_says_what_is_counted(peer: Peer) -> None:
    auth = {"Authorization": f"Bearer {peer.api_token}"}
    async with aiohttp.ClientSession() as s, s.get(peer.url + "/metrics", headers=auth) as r:
        text = await r.text()
    helps = {f.name: f.documentation for f in text_string_to_metric_families(text)}
    undescribed = sorted(name for name, doc in helps.items() if "undescribed" in doc)
    assert not undescribed, f"describe these in disruptor/metric_help.py: {undescribed}"
    assert helps["disruptor_workers_queue_items"] == (
        "Items waiting in the pool's queues for a free worker (items)"
    )
    assert "seconds" in helps["disruptor_jobs_latency_seconds"]


async def test_openmetrics_when_the_scraper_asks_for_it(peer: Peer) -> None:
    # What Prometheus sends: OpenMetrics first, the text format as a fallback.
    accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,"
        "application/openmetrics-text;version=0.0.1;q=0.4,"
        "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    headers = {"Authorization": f"Bearer {peer.api_token}", "Accept": accept}
    async with aiohttp.ClientSession() as s, s.get(peer.url + "/metrics", headers=headers) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
        assert r.headers["Vary"] == "Accept"
        text = await r.text()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["disruptor_jobs_submitted"].type == "counter"
    assert families["process_cpu_seconds"].type == "counter"
    assert families["disruptor_jobs_latency_seconds"].type == "histogram"
