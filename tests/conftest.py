"""Fixtures shared by every test: a private data directory, free ports, in-process peers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from disruptor.address import Address
from disruptor.config import PeerConfig
from disruptor.home import Home
from disruptor.peer import Peer

from .cluster import free_port


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A fresh ``$DISRUPTOR_HOME`` for this test (never the user's own)."""
    root = tmp_path / "home"
    monkeypatch.setenv("DISRUPTOR_HOME", str(root))
    yield Home(root).ensure()


@pytest.fixture
async def peer(home: Home) -> AsyncIterator[Peer]:
    """One peer running in this test's event loop on a free loopback port."""
    running = Peer(PeerConfig(address=Address("127.0.0.1", free_port()), home=home.root))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
