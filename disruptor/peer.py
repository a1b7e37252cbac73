"""The composition root: builds a peer's parts, wires them together, starts and stops them.

It holds no protocol logic of its own. Each part is constructed here in dependency order and
started in that order; ``stop`` runs the reverse. Handlers reach the parts as attributes of the
peer (``request.app[PEER].store``...).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from pathlib import Path

from aiohttp import web

from .address import Address
from .api.app import make_app
from .api.header_timeout import HeaderTimeoutAppRunner
from .bundles.store import BundleStore
from .bundles.trust import TrustStore
from .home import Home
from .jobs.coordinator import JobCoordinator
from .membership.driver import MembershipDriver
from .membership.wiring import build_membership
from .metrics import Metrics
from .settings import PeerSettings
from .snippets import SnippetEngine
from .workers.pool import WorkerPool

log = logging.getLogger("disruptor.peer")


class Peer:
    def __init__(self, config: PeerSettings) -> None:
        self.config = config
        self.home = Home(config.home).ensure()
        self.address = config.address
        self.api_token = self.home.api_token()
        self.cluster_secret = self.home.cluster_secret()
        self._runner: web.AppRunner | None = None
        self.state_dir: Path = Path()
        # --- parts: constructed in _build_parts once the port is known ---
        self.trust: TrustStore | None = None
        self.store: BundleStore | None = None
        self.pool: WorkerPool | None = None
        self.metrics: Metrics | None = None
        self.jobs: JobCoordinator | None = None
        self.snippets: SnippetEngine | None = None
        self.membership: MembershipDriver | None = None

    @property
    def url(self) -> str:
        return self.address.url

    def _build_parts(self) -> None:
        """Construct every part of the peer; called once the bound address is known."""
        self.state_dir = self.home.peer_dir(self.address.host, self.address.port)
        self.trust = TrustStore.for_home(self.home)
        self.store = BundleStore(
            self.state_dir / "store",
            self.state_dir / "unpacked",
            self.trust,
            self.config.bundles,
            insecure_dev=self.config.insecure_dev,
            cluster_secret=self.cluster_secret,
        )
        self.pool = WorkerPool(
            self.store, self.state_dir, self.config.workers, data_root=self.home.root
        )
        self.snippets = SnippetEngine(self.config.snippets, self.state_dir)
        self.membership = build_membership(self)
        # Jobs run on every part above; the runner copes with any of them absent.
        self.jobs = JobCoordinator(self, self.config.jobs)
        # Last: it reads the other parts' stats at scrape time.
        self.metrics = Metrics(self)

    async def _start_parts(self) -> None:
        """Start the parts that run tasks of their own, in dependency order."""
        if self.membership is not None:  # binds UDP on the HTTP port, so after the server
            await self.membership.start()
        if self.pool is not None:
            await self.pool.start()
        if self.snippets is not None:
            await self.snippets.start()
        if self.jobs is not None:
            await self.jobs.start()
        if self.metrics is not None:
            await self.metrics.start()

    async def _stop_parts(self) -> None:
        """Stop the parts, in reverse dependency order."""
        if self.membership is not None:  # first: announce the leave while work drains
            await self.membership.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.jobs is not None:
            await self.jobs.stop()
        if self.snippets is not None:
            await self.snippets.stop()
        if self.pool is not None:
            await self.pool.stop()
        if self.store is not None:
            await self.store.close()

    async def start(self) -> None:
        sock = _bind_tcp(self.address)
        self.address = Address(self.address.host, sock.getsockname()[1])
        self._build_parts()
        app = make_app(self)
        # Like web.AppRunner, plus a deadline on request heads (slow header tricklers).
        self._runner = HeaderTimeoutAppRunner(
            app,
            header_timeout_s=self.config.http.header_timeout_s,
            connections_per_client_max=self.config.http.connections_per_client_max,
            descriptors_reserved=self.config.http.descriptors_reserved,
            access_log=None,
            keepalive_timeout=self.config.http.keepalive_timeout_s,
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
