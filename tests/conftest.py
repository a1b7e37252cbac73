"""Fixtures shared by every test: a private data directory, free ports, in-process peers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from disruptor.address import Address
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.settings import PeerSettings

from .cluster import free_port

# No test outlives its timeout, even one whose teardown hangs after pytest-timeout failed it.
pytest_plugins = ["tests.watchdog"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A fresh ``$DISRUPTOR_HOME`` for this test (never the user's own)."""
    root = tmp_path / "home"
    monkeypatch.setenv("DISRUPTOR_HOME", str(root))
    yield Home(root).ensure()


@asynccontextmanager
async def open_peer(home: Home, seeds: Sequence[Address] = ()) -> AsyncIterator[Peer]:
    """A peer of this data directory on a free loopback port, in the running event loop."""
    address = Address("127.0.0.1", free_port())
    running = Peer(PeerSettings(address=address, home=home.root, seeds=tuple(seeds)))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def peer(home: Home) -> AsyncIterator[Peer]:
    """One peer running in this test's event loop on a free loopback port."""
    async with open_peer(home) as running:
        yield running


@pytest.fixture
async def pair(home: Home) -> AsyncIterator[tuple[Peer, Peer]]:
    """Two peers of one data directory (same secret and keys), the second seeded with the first."""
    async with open_peer(home) as first, open_peer(home, [first.address]) as second:
        yield first, second
