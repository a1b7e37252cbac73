"""Helpers for the job tests: in-process clusters and a small test bundle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from disruptor.address import Address
from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.jobs.settings import JobsSettings
from disruptor.peer import Peer
from disruptor.settings import PeerSettings

from ..cluster import eventually, free_port

CONVERGE_TIMEOUT_S = 30.0

# A handler that sleeps when asked (so a test can catch a job mid-way) and says where it ran.
SLOW_HANDLER = """
import os
import time


def handle(item):
    time.sleep(item.get("sleep", 0))
    return {"x": item["x"] * 2, "pid": os.getpid()}
"""

SLOW_MANIFEST = """
name = "slow"
version = "1.0.0"

[worker]
handler = "slow:handle"
count = 2
timeout_s = 30
"""


def write_slow_bundle(root: Path) -> Path:
    app = root / "slow-app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "bundle.toml").write_text(SLOW_MANIFEST)
    (app / "slow.py").write_text(SLOW_HANDLER)
    return app


@asynccontextmanager
async def open_cluster(
    home: Home, count: int = 3, jobs: JobsSettings | None = None
) -> AsyncIterator[list[Peer]]:
    """``count`` peers in this event loop, seeded from the first, all seeing each other."""
    ports = [free_port() for _ in range(count)]
    first = Address("127.0.0.1", ports[0])
    peers: list[Peer] = []
    try:
        for port in ports:
            settings = PeerSettings(
                address=Address("127.0.0.1", port),
                seeds=() if port == ports[0] else (first,),
                home=home.root,
            )
            if jobs is not None:
                settings = replace(settings, jobs=jobs)
            peer = Peer(settings)
            await peer.start()
            peers.append(peer)
        await eventually(
            lambda: all(len(p.jobs.live_peers()) == count for p in peers),
            f"{count} peers to see each other",
            timeout_s=CONVERGE_TIMEOUT_S,
        )
        yield peers
    finally:
        for peer in reversed(peers):
            await peer.stop()


def client_for(peers: list[Peer], home: Home) -> AsyncClient:
    return AsyncClient([str(p.address) for p in peers], home=home)
