"""A worker killed by one item of its chunk: the chunk is split, the innocent items get results."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from disruptor.address import Address
from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.ports import free_port
from disruptor.settings import PeerSettings
from disruptor.workers.settings import WorkerSettings

POISON = 7
HANDLER = f"""
import os, signal

def handle(item):
    if item == {POISON}:
        os.kill(os.getpid(), signal.SIGKILL)  # takes the whole call down, as a segfault would
    return item * 2
"""


async def test_a_poisonous_item_fails_alone_and_its_chunk_mates_succeed(
    home: Home, tmp_path: Path
) -> None:
    app = tmp_path / "poison"
    app.mkdir()
    (app / "bundle.toml").write_text(
        'name = "poison"\nversion = "1.0.0"\n\n[worker]\nhandler = "app:handle"\ncount = 2\n'
    )
    (app / "app.py").write_text(HANDLER)
    # The item kills a worker on every try; a crash loop must not be declared on the way.
    workers = dataclasses.replace(WorkerSettings(), crash_loop_crashes=100)
    settings = PeerSettings(
        address=Address("127.0.0.1", free_port()), home=home.root, workers=workers
    )
    peer = Peer(settings)
    await peer.start()
    try:
        async with AsyncClient([peer.url], home=home) as client:
            sha1 = (await client.push_bundle(app, home=home)).sha1
            outcomes = await client.outcomes(sha1, list(range(30)), chunk_size=10, retries=1)
    finally:
        await peer.stop()
    failed = [i for i, o in enumerate(outcomes) if o.error is not None]
    assert failed == [POISON]
    assert outcomes[POISON].error is not None
    assert outcomes[POISON].error.kind == "worker-crashed"
    assert [o.value for i, o in enumerate(outcomes) if i != POISON] == [
        2 * i for i in range(30) if i != POISON
    ]
