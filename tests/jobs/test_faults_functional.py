"""Peers as real processes: a peer SIGKILLed mid-job, a coordinator dying under its client."""

from __future__ import annotations

import concurrent.futures
import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from disruptor.client import Client
from disruptor.home import Home

from ..cluster import PeerProcess, rows_of_piece, wait_for
from .support import write_slow_bundle

ITEMS = 120


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[PeerProcess]]:
    home = tmp_path / "home"
    Home(home).ensure()
    first = PeerProcess(home).wait_ready()
    peers = [first]
    try:
        for _ in range(2):
            peers.append(PeerProcess(home, seeds=[first.address]).wait_ready())
        with Client([first.address], home=Home(home)) as client:
            wait_for(
                lambda: len(client.request_json("GET", "/jobs")["peers"]) == 3,
                30,
                "3 peers to see each other",
            )
        yield peers
    finally:
        for peer in peers:
            peer.stop()


def stream_lines(peer: PeerProcess, body: dict[str, object]) -> Iterator[dict[str, object]]:
    request = urllib.request.Request(
        peer.url + "/jobs",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {peer.token}",
            "Content-Type": "application/json",
            "Accept": "application/x-ndjson",
        },
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        for line in response:
            if line.strip():
                yield json.loads(line)


def test_sigkilled_peer_mid_job_every_item_exactly_once(
    cluster: list[PeerProcess], tmp_path: Path
) -> None:
    coordinator, _, victim = cluster
    with Client([coordinator.address], home=Home(coordinator.home)) as client:
        sha1 = client.push_bundle(write_slow_bundle(tmp_path), home=Home(coordinator.home)).sha1
    items = [{"x": i, "sleep": 0.05} for i in range(ITEMS)]
    body = {"bundle": sha1, "items": items, "chunk_size": 2, "policy": "round-robin"}
    seen: Counter[int] = Counter()
    rows = []
    tail: dict[str, object] = {}
    for row in stream_lines(coordinator, body):
        if row.get("done"):
            tail = row
            continue
        for item in rows_of_piece(row):
            rows.append(item)
            seen[int(str(item["index"]))] += 1
        if len(rows) >= 20 and victim.proc.poll() is None:
            victim.kill()
    assert tail.get("state") == "completed"
    assert int(str(tail["replaced"])) >= 1, "the lost peer's attempts were placed again"
    assert sorted(seen) == list(range(ITEMS))
    assert set(seen.values()) == {1}, "an item's result was delivered twice"
    assert all("error" not in r for r in rows), [r for r in rows if "error" in r][:3]
    assert {r["index"]: r["value"]["x"] for r in rows} == {i: 2 * i for i in range(ITEMS)}  # type: ignore[index]


def test_client_fails_over_when_the_coordinator_dies(
    cluster: list[PeerProcess], tmp_path: Path
) -> None:
    coordinator, other, _ = cluster
    home = Home(coordinator.home)
    with Client([coordinator.address], home=home) as client:
        sha1 = client.push_bundle(write_slow_bundle(tmp_path), home=home).sha1
    items = [{"x": i, "sleep": 0.05} for i in range(ITEMS)]
    with (
        Client([coordinator.address, other.address], home=home) as client,
        Client([other.address], home=home) as watcher,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        future = pool.submit(client.map, sha1, items, chunk_size=2)

        def coordinator_busy() -> bool:
            running = watcher.request_json("GET", "/tasks")["serving"]
            return bool(running)

        wait_for(coordinator_busy, 60, "the job to reach the other peers")
        # The bundle must outlive its first holder: wait until the other peer has fetched it.
        wait_for(
            lambda: sha1 in json.dumps(watcher.request_json("GET", "/bundles/")),
            60,
            "the other peer to hold the bundle",
        )
        coordinator.kill()
        values = future.result(timeout=120)
    assert [v["x"] for v in values] == [2 * i for i in range(ITEMS)]


def test_stream_fails_over_and_still_yields_each_item_once(
    cluster: list[PeerProcess], tmp_path: Path
) -> None:
    coordinator, other, _ = cluster
    home = Home(coordinator.home)
    with Client([coordinator.address], home=home) as client:
        sha1 = client.push_bundle(write_slow_bundle(tmp_path), home=home).sha1
        client.start_workers_on(sha1, "all")  # every peer holds it: it outlives the coordinator
    items = [{"x": i, "sleep": 0.05} for i in range(ITEMS)]
    indexes: list[int] = []
    with Client([coordinator.address, other.address], home=home) as client:
        for index, value in client.stream(sha1, items, chunk_size=2):
            assert value["x"] == 2 * index
            indexes.append(index)
            if len(indexes) == 30:
                coordinator.kill()
    assert sorted(indexes) == list(range(ITEMS))
    assert len(indexes) == len(set(indexes))
