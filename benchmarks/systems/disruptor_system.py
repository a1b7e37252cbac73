"""disruptor as a benchmarked system: real peer processes on loopback, driven through the public
client (``AsyncClient``: ``map``, ``send``, ``push_bundle``, ``start_workers_on``) and raw HTTP.

Clusters, each in its own fresh data directory, started only when a chosen measure needs them:

- ``one``: 1 peer, a bundle of ``N`` workers and ``N`` snippet hosts (N = ``--workers``): the
  system compared with Ray, Dask and the pool (items, tiny jobs, local round trip, memory);
- ``three``: 3 peers, each with N workers and N hosts: tiny jobs spread over peers, the forwarded
  round trip (sent to the first peer, run on the second), the tight loop on one of them;
- ``six``: 6 peers: deploying a large bundle to all of them vs to one.

Rule: only the public client API and HTTP are used, so the harness keeps measuring while the job
path underneath changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

import disruptor
from disruptor.client import AsyncClient
from disruptor.errors import NotFound
from disruptor.home import Home

from . import http_load, procs
from .base import Rows, Sizes, System, round_trip_row
from .disruptor_peers import Cluster, PeerProcess, same_code_env, stop_peers
from .work import DOUBLE_SOURCE, LOOP_SOURCE, check_doubled, check_looped, write_bundle

NEEDS = {
    "one": {"items", "tiny", "round_trip", "memory", "memory_after"},
    "three": {"tiny", "round_trip", "loop"},
    "six": {"deploy"},
}
PACK_TIMEOUT_S = 120.0


def _checked(reply: dict[str, Any], what: str) -> dict[str, Any]:
    failed = {
        peer: answer
        for peer, answer in reply.items()
        if isinstance(answer, dict) and "error" in answer  # a stop answers 204: None
    }
    if failed:
        raise RuntimeError(f"{what} failed on {failed}")
    return reply


class DisruptorSystem(System):
    name = "disruptor"

    def __init__(
        self, sizes: Sizes, scratch: Path, measures: frozenset[str], stopping: threading.Event
    ) -> None:
        super().__init__(sizes, scratch, measures, stopping)
        self.settings = {"snippets.hosts_max": sizes.workers}
        self.clusters: dict[str, Cluster] = {}
        self.double_sha1 = ""
        self.loop_sha1 = ""
        self.event_loop = "not started"
        self.uvloop_mapped: bool | None = None
        self.http_generator = http_load.generator()
        self.spawned = 0  # peers and bundles made for one measure each, numbered

    # --- life cycle ---

    def cluster(self, name: str) -> Cluster:
        return self.clusters[name]

    async def start(self) -> None:
        sizes = {"one": 1, "three": 3, "six": 6}
        for name, needed_by in NEEDS.items():
            if needed_by & self.measures:
                cluster = Cluster(self.scratch, name, sizes[name], self.settings)
                self.clusters[name] = cluster
                await cluster.start()
        if not self.clusters:
            return
        apps = self.scratch / "apps"
        double_app = write_bundle(apps, "double", DOUBLE_SOURCE, self.sizes.workers)
        loop_app = write_bundle(apps, "loop", LOOP_SOURCE, self.sizes.workers)
        for name in ("one", "three"):
            if name in self.clusters:
                cluster = self.clusters[name]
                async with cluster.open_client() as client:
                    pushed = await client.push_bundle(double_app, home=cluster.home)
                    self.double_sha1 = pushed.sha1
                    _checked(await client.start_workers_on(pushed.sha1, "all"), "workers")
                    if name == "three":
                        pushed = await client.push_bundle(loop_app, home=cluster.home)
                        self.loop_sha1 = pushed.sha1
                        _checked(await client.start_workers_on(pushed.sha1, "all"), "workers")
        first = next(iter(self.clusters.values()))
        # The peer does not report its event loop yet: say so rather than guess.
        health = first.health
        self.event_loop = str(health.get("event_loop", "unknown"))
        self.uvloop_mapped = procs.maps_mention(first.peers[0].pid, "uvloop")

    async def warm_up(self) -> None:
        """Every worker and snippet host running, connections open, code compiled."""
        for name in ("one", "three"):
            if name not in self.clusters:
                continue
            cluster = self.clusters[name]
            for address in cluster.addresses:
                async with cluster.open_client([address]) as client:
                    for work in (self.double_sha1, DOUBLE_SOURCE):
                        values = await client.map(work, range(20_000))
                        check_doubled(values, 20_000)
                        await asyncio.gather(*(client.send(work, n) for n in range(64)))
            if name == "three":
                first, second = cluster.addresses[:2]
                async with cluster.open_client([first]) as client:
                    for _ in range(20):
                        await client.send(self.double_sha1, 1, peers=[second])
                    for work in (LOOP_SOURCE, self.loop_sha1):
                        check_looped(await client.map(work, range(2_000), peers=[first]), 2_000)

    async def stop(self) -> None:
        await asyncio.gather(
            *(cluster.stop() for cluster in self.clusters.values()), return_exceptions=True
        )

    def notes(self) -> dict[str, str]:
        mapped = {None: "unreadable", True: "yes", False: "no"}[self.uvloop_mapped]
        return {
            "disruptor": f"{disruptor.__version__} at {Path(disruptor.__file__).parent}",
            "peer event loop (from /health)": self.event_loop,
            "uvloop mapped into the peer process": mapped,
            "peer settings": ", ".join(f"{k}={v}" for k, v in self.settings.items()),
            "raw HTTP load generator": self.http_generator,
            "clusters": ", ".join(
                f"{name}: {len(c.peers)} peer(s)" for name, c in self.clusters.items()
            ),
        }

    # --- measures ---

    async def items(self) -> Rows:
        count = self.sizes.items
        rows: Rows = {}
        async with self.cluster("one").open_client(timeout_s=3600) as client:
            for label, work in (
                ("disruptor bundle", self.double_sha1),
                ("disruptor snippet", DOUBLE_SOURCE),
            ):
                started = time.perf_counter()
                values = await client.map(work, range(count))
                elapsed = time.perf_counter() - started
                check_doubled(values, count)
                rows[label] = {"items_per_s": count / elapsed}
        return rows

    async def _tiny_clients(self, cluster: Cluster) -> dict[str, float]:
        """One client per peer; the callers take turns over the peers."""
        clients = [
            AsyncClient([address], home=cluster.home, timeout_s=300)
            for address in cluster.addresses
        ]
        done = 0
        stop_at = time.monotonic() + self.sizes.tiny_s

        async def caller(number: int) -> None:
            nonlocal done
            client = clients[number % len(clients)]
            while time.monotonic() < stop_at:
                value = await client.send(self.double_sha1, number)
                if value != 2 * number:
                    raise AssertionError(f"job for {number} answered {value}")
                done += 1

        try:
            started = time.monotonic()
            await asyncio.gather(*(caller(n) for n in range(self.sizes.tiny_callers)))
            elapsed = time.monotonic() - started
        finally:
            for client in clients:
                await client.close()
        return {"jobs_per_s": done / elapsed}

    async def tiny(self) -> Rows:
        rows = {"disruptor client, 1 peer": await self._tiny_clients(self.cluster("one"))}
        rows["disruptor client, 3 peers"] = await self._tiny_clients(self.cluster("three"))
        one = self.cluster("one")
        load = await http_load.post_jobs_load(
            one.peers[0].url + "/jobs",
            {"bundle": self.double_sha1, "items": [21]},
            one.home.api_token(),
            self.sizes.tiny_callers,
            self.sizes.tiny_s,
            self.scratch,
        )
        rows[f"disruptor HTTP ({self.http_generator}), 1 peer"] = {
            "jobs_per_s": load.jobs_per_s,
            "refused": load.refused + load.socket_errors,
        }
        return rows

    async def _round_trips(self, client: AsyncClient, peers: list[str]) -> dict[str, float]:
        samples = []
        for number in range(self.sizes.round_trips):
            started = time.perf_counter()
            value = await client.send(self.double_sha1, number, peers=peers)
            samples.append(time.perf_counter() - started)
            if value != 2 * number:
                raise AssertionError(f"job for {number} answered {value}")
        return round_trip_row(samples)

    async def round_trip(self) -> Rows:
        one, three = self.cluster("one"), self.cluster("three")
        async with one.open_client() as client:
            local = await self._round_trips(client, one.addresses)
        first, second = three.addresses[:2]
        async with three.open_client([first]) as client:
            forwarded = await self._round_trips(client, [second])
        return {"disruptor local": local, "disruptor forwarded": forwarded}

    async def cold_start(self) -> Rows:
        self.spawned += 1
        root = self.scratch / f"cold-{self.spawned}"
        home = Home(root / "home").ensure()
        (root / "logs").mkdir()
        async with aiohttp.ClientSession() as session:
            peer = PeerProcess(home.root, [], self.settings, root / "logs")
            try:
                await peer.wait_healthy(session)
                elapsed = time.perf_counter() - peer.spawned_at
            finally:
                await stop_peers([peer])
        return {"disruptor peer": {"spawn_to_ready_s": elapsed}}

    async def memory(self) -> Rows:
        peer = self.cluster("one").peers[0]
        used = procs.memory_of(procs.descendants([peer.pid]))
        return {
            "disruptor peer": {
                "rss_mb": used.rss_mb,
                "pss_mb": used.pss_mb,
                "processes": used.processes,
            }
        }

    async def _packed_bundle(self) -> Path:
        """A new bundle (its payload seeded by a counter), packed by ``disruptor pack``."""
        self.spawned += 1
        root = self.scratch / f"deploy-{self.spawned}"
        app = write_bundle(
            root, f"big{self.spawned}", DOUBLE_SOURCE, 1, self.sizes.deploy_bytes, self.spawned
        )
        archive = root / "big.tar.zst"
        pack = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "disruptor", "pack", str(app), "-o", str(archive),
            env=same_code_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            code = await asyncio.wait_for(pack.wait(), PACK_TIMEOUT_S)
        finally:
            if pack.returncode is None:
                pack.kill()
                await pack.wait()
        if code != 0:
            raise RuntimeError(f"disruptor pack {app} exited with {code}")
        return archive

    async def deploy(self) -> Rows:
        six = self.cluster("six")
        rows: Rows = {}
        choices = (("disruptor 1 peer", six.addresses[:1]), ("disruptor 6 peers", None))
        for label, targets in choices:
            archive = await self._packed_bundle()
            async with six.open_client(six.addresses[:1], timeout_s=600) as client:
                started = time.perf_counter()
                sha1 = (await client.push_bundle(archive, home=six.home)).sha1
                pushed = time.perf_counter()
                reply = await client.start_workers_on(sha1, targets or "all")
                running = time.perf_counter()
                _checked(reply, f"starting {sha1}")
                if len(reply) != len(targets or six.addresses):
                    raise AssertionError(f"workers started on {sorted(reply)} only")
                await self._remove_bundle(client, six, sha1, targets or "all")
            shutil.rmtree(archive.parent)
            rows[label] = {
                "push_s": pushed - started,
                "running_s": running - started,
                "spread_s": running - pushed,
            }
        return rows

    async def _remove_bundle(
        self, client: AsyncClient, cluster: Cluster, sha1: str, targets: str | list[str]
    ) -> None:
        """Workers stopped and the bundle deleted everywhere, so the next deploy starts clean."""
        _checked(await client.stop_workers_on(sha1, targets), f"stopping {sha1}")
        for address in cluster.addresses:
            async with cluster.open_client([address]) as each:
                with contextlib.suppress(NotFound):
                    await each.delete_bundle(sha1)

    async def loop(self) -> Rows:
        count = self.sizes.loop_items
        first = self.cluster("three").addresses[0]
        rows: Rows = {}
        async with self.cluster("three").open_client([first], timeout_s=600) as client:
            for label, work in (
                ("disruptor snippet", LOOP_SOURCE),
                ("disruptor bundle", self.loop_sha1),
            ):
                started = time.perf_counter()
                values = await client.map(work, range(count), peers=[first])
                elapsed = time.perf_counter() - started
                check_looped(values, count)
                rows[label] = {"seconds": elapsed}
        return rows
