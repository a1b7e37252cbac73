"""A worker's processes end with it, and with its peer: even a peer killed with SIGKILL. A worker
that exits at once is seen to exit, however early the exit is reported."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.workers.isolation import LaunchPlan, processes_of_uid
from disruptor.workers.process import WorkerProcess
from disruptor.workers.session import Gone, Output, Session

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
            assert outcomes["values"][0] == "child started"
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


async def test_an_exit_reported_before_spawn_returns_is_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker that dies at once (a busy machine, no sandbox to set up first) may be reported
    exited before ``subprocess_exec`` hands back its transport; the exit must still count."""
    loop = asyncio.get_running_loop()
    real_exec = loop.subprocess_exec

    async def exec_that_returns_after_the_exit(*args: Any, **kwargs: Any) -> Any:
        transport, protocol = await real_exec(*args, **kwargs)
        deadline = time.monotonic() + 10.0
        while transport.get_returncode() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the child watcher reports the exit through the loop
        assert transport.get_returncode() == 3
        return transport, protocol

    monkeypatch.setattr(loop, "subprocess_exec", exec_that_returns_after_the_exit)
    outputs: list[Output] = []
    plan = LaunchPlan(("sh", "-c", "exit 3"), {"PATH": "/usr/bin:/bin"}, "/", None, "plain")
    session = Session(concurrency=1, started_at=loop.time())
    proc = WorkerProcess("early-exit", plan, session, lambda _p, out: outputs.extend(out))
    await proc.spawn()
    await asyncio.wait_for(proc.wait_closed(), 10.0)
    assert proc.returncode == 3 and proc.pid is not None
    (gone,) = [o for o in outputs if isinstance(o, Gone)]
    assert "status 3" in gone.death.detail
