"""Real ``disruptor peer`` processes on loopback for the benchmark, started and stopped by it.

``LocalCluster`` (``disruptor demo``) starts peers the same way, but the benchmark also needs
settings flags per peer (``--set snippets.hosts_max=N``), readiness polled every 10 ms (a cold
start is timed with it) and asynchronous waits, so it has its own small launcher. Rule: every
wait is bounded, and ``stop`` always ends the process (SIGTERM, then SIGKILL of the peer and
anything left under it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

import disruptor
from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.ports import free_port

from . import procs

READY_TIMEOUT_S = 30.0
MEMBERS_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
READY_POLL_S = 0.01


def same_code_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m disruptor`` child: it imports the very package this
    process imported (the checkout under test), whatever the virtualenv has installed."""
    checkout = str(Path(disruptor.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


class PeerProcess:
    """One ``python -m disruptor peer`` in a data directory shared with its cluster."""

    def __init__(
        self, home: Path, seeds: Sequence[str], settings: Mapping[str, object], log_dir: Path
    ) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.address}"
        self.log_path = log_dir / f"peer-{self.address.replace(':', '-')}.log"
        flags = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
        self.spawned_at = time.perf_counter()  # a cold start is timed from here
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "disruptor", "peer", self.address, *seeds, *flags],
                env=same_code_env(DISRUPTOR_HOME=str(home)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the harness only; it stops the peers
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_healthy(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """``/health``'s answer once it is 200; raises if the peer exits or is too slow."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        timeout = aiohttp.ClientTimeout(total=1.0)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"peer {self.address} exited at start:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(self.url + "/health", timeout=timeout) as reply:
                    if reply.status == 200:
                        answer: dict[str, Any] = await reply.json()
                        return answer
            await asyncio.sleep(READY_POLL_S)
        raise TimeoutError(f"peer {self.address} did not answer within {READY_TIMEOUT_S:.0f}s")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    async def wait_stopped(self, deadline: float) -> None:
        """Wait for the exit until ``deadline`` (monotonic), then kill the peer and its tree."""
        await asyncio.to_thread(procs.wait_or_kill, self.proc, deadline - time.monotonic())


async def stop_peers(peers: Sequence[PeerProcess]) -> None:
    """SIGTERM all at once (each leaves and drains its workers), one deadline for all."""
    for peer in peers:
        peer.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    await asyncio.gather(*(peer.wait_stopped(deadline) for peer in peers))


class Cluster:
    """``size`` peers sharing one fresh data directory, all seeded with the first."""

    def __init__(self, root: Path, name: str, size: int, settings: Mapping[str, object]) -> None:
        self.root = root / name
        self.size = size
        self.settings = settings
        self.home = Home(self.root / "home").ensure()
        self.peers: list[PeerProcess] = []
        self.health: dict[str, Any] = {}

    @property
    def addresses(self) -> list[str]:
        return [peer.address for peer in self.peers]

    @contextlib.asynccontextmanager
    async def open_client(
        self, addresses: Sequence[str] | None = None, timeout_s: float = 300
    ) -> AsyncIterator[AsyncClient]:
        """A client of ``addresses`` (default: every peer), closed on the way out."""
        client = AsyncClient(list(addresses or self.addresses), home=self.home, timeout_s=timeout_s)
        try:
            yield client
        finally:
            await client.close()

    async def start(self) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        first = PeerProcess(self.home.root, [], self.settings, logs)
        self.peers.append(first)
        for _ in range(self.size - 1):
            self.peers.append(PeerProcess(self.home.root, [first.address], self.settings, logs))
        async with aiohttp.ClientSession() as session:
            answers = await asyncio.gather(*(peer.wait_healthy(session) for peer in self.peers))
        self.health = answers[0]
        await self.wait_members()

    async def wait_members(self) -> None:
        """Until every peer lists every peer alive (bounded)."""
        deadline = time.monotonic() + MEMBERS_TIMEOUT_S
        for address in self.addresses:
            async with self.open_client([address]) as client:
                while True:
                    answer = await client.peers()
                    alive = [p for p in answer["peers"] if p.get("state") == "alive"]
                    if len(alive) >= self.size:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{address} sees {len(alive)} of {self.size} peers")
                    await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await stop_peers(self.peers)
