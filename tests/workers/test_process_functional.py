"""A worker's processes end with it, and with its peer: even a peer killed with SIGKILL."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.workers.isolation import processes_of_uid

from ..cluster import PeerProcess, wait_for
from .conftest import IS_ROOT, MODES

SLEEPER = """\
import os, time
def handle(item):
    if os.fork() == 0:
        os.setsid()
        time.sleep(3600)
    return "child started"
"""


@pytest.mark.skipif(not IS_ROOT, reason="finding a worker's processes needs its own uid")
@pytest.mark.parametrize("mode", MODES)
async def test_workers_die_with_a_killed_peer(home: Home, tmp_path: Path, mode: str) -> None:
    app = tmp_path / "sleeper"
    app.mkdir()
    (app / "bundle.toml").write_text(
        'name = "sleeper"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'
    )
    (app / "app.py").write_text(SLEEPER)
    peer = PeerProcess(home.root, env={"DISRUPTOR_WORKERS_ISOLATION": mode}).wait_ready()
    try:
        async with AsyncClient(peer.url, home=home) as client:
            sha1 = (await client.push_bundle(app)).sha1
            (worker,) = await client.start_workers(sha1, 1)
            assert worker["isolation"] == mode
            outcomes = await client.request_json(
                "POST", "/jobs", json_body={"bundle": sha1, "items": [1]}
            )
            assert outcomes["results"][0]["value"] == "child started"
        uid = worker["uid"]
        assert len(processes_of_uid(uid)) >= 2
        peer.kill()
        if mode == "bwrap":
            # The sandbox's pid namespace dies with its first process: nothing survives.
            wait_for(lambda: processes_of_uid(uid) == [], 20, "the sandbox to die with the peer")
        else:
            # Plain mode: the worker itself dies with its parent; a grandchild that left its
            # session is beyond reach once the peer is gone (SECURITY.md says so).
            wait_for(lambda: worker["pid"] not in processes_of_uid(uid), 20, "the worker to die")
            for pid in processes_of_uid(uid):
                os.kill(pid, signal.SIGKILL)  # the test cleans up what it started
    finally:
        peer.stop()
