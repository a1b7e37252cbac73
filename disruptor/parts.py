"""``Parts``: every part of a running peer, typed, as the composition root built them.

The root (``peer.py``) builds each part with only the narrow things it uses, then hands this
record to what reads across parts: the HTTP application (each handler takes the part it serves),
the metrics collector and the dashboard's snapshot. Nothing receives the ``Peer`` itself.

``MembershipCluster`` adapts the membership driver to the job layer's ``ClusterView``, so the jobs
package never learns how gossip encodes load or the bundles a peer holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .address import Address
from .bundles.fetch import BundleFetcher
from .bundles.store import BundleStore
from .jobs.coordinator import JobCoordinator
from .jobs.fanout import FanOut
from .jobs.served import TaskServer
from .membership.driver import MembershipDriver
from .membership.members import MemberView
from .membership.meta import PeerMeta
from .snippets.engine import SnippetEngine
from .workers.pool import WorkerPool


@dataclass(frozen=True)
class Parts:
    address: Address
    cluster_name: str
    store: BundleStore
    fetcher: BundleFetcher
    pool: WorkerPool
    snippets: SnippetEngine
    membership: MembershipDriver
    jobs: JobCoordinator  # jobs coordinated here
    tasks: TaskServer  # attempts other coordinators placed here
    fanout: FanOut  # cluster-wide /workers calls

    @property
    def url(self) -> str:
        return self.address.url


class MembershipCluster:
    """The membership driver as the job layer's ``ClusterView``."""

    def __init__(self, driver: MembershipDriver) -> None:
        self._driver = driver

    def live_addresses(self) -> list[str]:
        return [str(a) for a in self._driver.live_addresses()]

    def _meta(self, address: str) -> PeerMeta | None:
        return self._driver.meta_of(Address.parse(address))

    def load_of(self, address: str) -> float | None:
        meta = self._meta(address)
        if meta is None:
            return None
        return float(meta.load.tasks_running + meta.load.queue_length)

    def holds(self, address: str, sha1: str) -> bool:
        meta = self._meta(address)
        return meta is not None and sha1 in meta.bundles

    def subscribe(self, callback: Callable[[], None]) -> None:
        def changed(_view: MemberView) -> None:
            callback()

        self._driver.subscribe(changed)
