"""The composition root: builds a peer's parts, wires them together, starts and stops them.

It holds no protocol logic of its own. ``_build_parts`` constructs each part in dependency order
and gives it only the narrow, typed things it uses (the peer link, another part's protocol, its
own settings section); the finished ``Parts`` record goes to the HTTP application, the metrics
part and the dashboard. Nothing below this module receives the ``Peer``. Parts start in the order
they were built (membership first, once the HTTP socket is bound) and stop in reverse, membership
first so that its leave goes out while the rest drains.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import socket
from pathlib import Path

from aiohttp import web

from .address import Address
from .api.app import make_app
from .api.body_limits import PaceLimits, UploadGate, UploadSlots
from .api.header_timeout import HeaderTimeoutAppRunner
from .bundles.fetch import BundleFetcher
from .bundles.store import BundleStore
from .bundles.trust import TrustStore
from .errors import Unavailable
from .home import Home
from .jobs.coordinator import JobCoordinator
from .jobs.directory import PeerDirectory
from .jobs.fanout import FanOut
from .jobs.faults import HoldDown
from .jobs.local import LocalExecutor
from .jobs.remote import TaskCalls
from .jobs.served import TaskServer
from .jobs.settings import JobStats
from .link.peer_link import PeerLink
from .link.signature import PeerCallCheck
from .membership.driver import MembershipDriver
from .membership.wiring import LocalMetadata, build_membership
from .metrics import Metrics
from .parts import MembershipCluster, Parts
from .settings import PeerSettings
from .snippets.engine import SnippetEngine
from .workers.pool import WorkerPool

log = logging.getLogger("disruptor.peer")


def _loop_time() -> float:
    """The running event loop's clock: the one job timers are armed on."""
    return asyncio.get_running_loop().time()


class Peer:
    def __init__(self, settings: PeerSettings) -> None:
        self.settings = settings
        self.home = Home(settings.home).ensure()
        self.address = settings.address
        self.api_token = self.home.api_token()
        self.cluster_secret = self.home.cluster_secret()
        self.state_dir: Path = Path()
        self._runner: web.AppRunner | None = None
        # Built in _build_parts, once the bound port (and so the peer's name) is known.
        self._link: PeerLink | None = None
        self._parts: Parts | None = None
        self._metrics: Metrics | None = None

    @property
    def url(self) -> str:
        return self.address.url

    # --- the parts, once built --------------------------------------------------------------

    @property
    def parts(self) -> Parts:
        if self._parts is None:
            raise Unavailable("the peer has not started")
        return self._parts

    @property
    def metrics(self) -> Metrics:
        if self._metrics is None:
            raise Unavailable("the peer has not started")
        return self._metrics

    @property
    def store(self) -> BundleStore:
        return self.parts.store

    @property
    def fetcher(self) -> BundleFetcher:
        return self.parts.fetcher

    @property
    def pool(self) -> WorkerPool:
        return self.parts.pool

    @property
    def snippets(self) -> SnippetEngine:
        return self.parts.snippets

    @property
    def membership(self) -> MembershipDriver:
        return self.parts.membership

    @property
    def jobs(self) -> JobCoordinator:
        return self.parts.jobs

    @property
    def tasks(self) -> TaskServer:
        return self.parts.tasks

    # --- building ---------------------------------------------------------------------------

    def _build_parts(self) -> None:
        """Construct every part of the peer, each with only what it uses."""
        s, home, address = self.settings, self.home, self.address
        self.state_dir = home.peer_dir(address.host, address.port)
        # One HTTP client for every call to another peer (push-pull, fetches, tasks).
        link = self._link = PeerLink(self.cluster_secret)
        store = BundleStore(
            self.state_dir / "store",
            self.state_dir / "unpacked",
            TrustStore.for_home(home),
            s.bundles,
            insecure_dev=s.insecure_dev,
        )
        fetcher = BundleFetcher(store, link)
        pool = WorkerPool(store, self.state_dir, s.workers, data_root=home.root)
        snippets = SnippetEngine(s.snippets, self.state_dir)
        membership = build_membership(
            address,
            preset=s.preset,
            settings=s.membership,
            cluster_name=s.cluster_name,
            seeds=s.seeds,
            secret=self.cluster_secret,
            data_root=home.root,
            link=link,
            metadata=LocalMetadata(load=pool, bundles=store),
        )
        # The job layer: who is live (membership, through its ClusterView), where to run.
        rng = random.Random()  # noqa: S311 - placement, not secrets
        hold_down = HoldDown(s.jobs.unreachable_hold_s)
        directory = PeerDirectory(
            str(address),
            MembershipCluster(membership),
            store,
            hold_down,
            s.jobs.weights,
            rng,
            local_load=lambda: float(
                pool.tasks_running + pool.queue_items + snippets.stats.batches_running
            ),
        )
        local = LocalExecutor(pool, snippets, store, fetcher, directory, _loop_time)
        stats = JobStats()
        calls = TaskCalls(link, s.jobs.connect_timeout_s)
        jobs = JobCoordinator(
            directory, local, calls, snippets, s.jobs, stats, hold_down, _loop_time, rng
        )
        self._parts = Parts(
            address=address,
            cluster_name=s.cluster_name,
            store=store,
            fetcher=fetcher,
            pool=pool,
            snippets=snippets,
            membership=membership,
            jobs=jobs,
            tasks=TaskServer(local, s.jobs, stats),
            fanout=FanOut(directory, link, _loop_time),
        )
        # Last: it reads the other parts' stats at scrape time.
        self._metrics = Metrics(self._parts)

    async def _start_parts(self) -> None:
        """Start the parts that run tasks of their own, in dependency order."""
        parts = self.parts
        await parts.membership.start()  # binds UDP on the HTTP port, so after the server
        await parts.pool.start()
        await parts.snippets.start()
        await parts.jobs.start()
        await self.metrics.start()

    async def _stop_parts(self) -> None:
        """Stop the parts, in reverse dependency order."""
        parts = self._parts
        if parts is None:
            return
        await parts.membership.stop()  # first: announce the leave while work drains
        await self.metrics.stop()
        await parts.jobs.stop()
        await parts.tasks.stop()
        await parts.snippets.stop()
        await parts.pool.stop()
        await parts.fetcher.close()
        await parts.store.close()
        if self._link is not None:
            await self._link.close()

    # --- running ----------------------------------------------------------------------------

    async def start(self) -> None:
        sock = _bind_tcp(self.address)
        self.address = Address(self.address.host, sock.getsockname()[1])
        self._build_parts()
        app = make_app(
            self.parts,
            self.metrics,
            api_token=self.api_token,
            peer_calls=PeerCallCheck(self.cluster_secret),
            json_body_bytes_max=self.settings.http.json_body_bytes_max,
            pace=PaceLimits.of(self.settings.http),
            uploads=UploadGate(
                UploadSlots(
                    self.settings.bundles.uploads_max, self.settings.bundles.uploads_per_client_max
                ),
                self.settings.http.descriptors_reserved,
            ),
        )
        # Like web.AppRunner, plus a deadline on request heads (slow header tricklers).
        self._runner = HeaderTimeoutAppRunner(
            app,
            header_timeout_s=self.settings.http.header_timeout_s,
            connections_per_client_max=self.settings.http.connections_per_client_max,
            descriptors_reserved=self.settings.http.descriptors_reserved,
            access_log=None,
            keepalive_timeout=self.settings.http.keepalive_timeout_s,
            handle_signals=False,
        )
        await self._runner.setup()
        site = web.SockSite(self._runner, sock)
        await site.start()
        await self._start_parts()
        log.info("peer %s serving", self.address)

    async def stop(self) -> None:
        await self._stop_parts()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run_until_signalled(self) -> None:
        """Start, serve until SIGINT or SIGTERM, then stop cleanly."""
        await self.start()
        await self.serve_until_signalled()

    async def serve_until_signalled(self) -> None:
        """Serve (already started) until SIGINT or SIGTERM, then stop cleanly."""
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)
        try:
            await stop_requested.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()


def _bind_tcp(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address.host, address.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock
