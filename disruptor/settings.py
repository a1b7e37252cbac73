"""Peer settings as frozen dataclasses, one section per part of the peer.

Each part owns its section's dataclass in its own package (bundle limits in
``disruptor.bundles.settings``, gossip timings in ``disruptor.membership.settings``...); this module
composes them into ``PeerSettings``. Loading from TOML, environment and flags lives in
``disruptor.settings`` so that this module stays plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .address import Address
from .bundles.settings import BundleSettings
from .home import default_home
from .jobs.settings import JobsSettings
from .membership.settings import MembershipSettings
from .snippets.settings import SnippetSettings
from .workers.settings import WorkerSettings

DEFAULT_PORT = 1111


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP server's own limits (per-resource limits live with their resource)."""

    # JSON bodies (jobs, workers, snippets): large enough for a big batch of small items.
    json_body_bytes_max: int = 64 * 1024 * 1024
    # A client that has not finished sending its request headers by then is dropped, so a slow
    # client trickling headers cannot hold a connection (and its memory) for ever.
    header_timeout_s: float = 10.0
    # Idle keep-alive connections are closed after this long.
    keepalive_timeout_s: float = 75.0
    # Request bodies must keep coming: after a grace, each byte buys 1/rate seconds, and no
    # silence may last the idle timeout; a slower body is cut (its connection closed). 4 KiB/s is
    # a poor modem's speed: honest clients, however slow their link, stay well above it.
    body_rate_min_bytes_s: float = 4096.0
    body_grace_s: float = 30.0
    body_idle_timeout_s: float = 30.0
    # Connections one client address may hold at once (a browser takes 6, a peer's pool 64).
    connections_per_client_max: int = 512
    # Descriptors kept for the peer's own work (store files, workers' pipes, gossip push-pull,
    # calls to other peers): connections stop at the descriptor limit less this, and uploads are
    # refused (503) once fewer than this are free.
    descriptors_reserved: int = 256


@dataclass(frozen=True)
class PeerSettings:
    address: Address = field(default_factory=lambda: Address("127.0.0.1", DEFAULT_PORT))
    seeds: tuple[Address, ...] = ()
    home: Path = field(default_factory=default_home)
    # Bound into every gossip datagram's associated data: clusters sharing a secret by accident
    # still cannot talk to each other.
    cluster_name: str = "disruptor"
    # Timing profile for gossip: "local" (one machine), "lan" (memberlist's LAN), "wan".
    preset: str = "local"
    # Development only: accept unsigned or untrusted bundles. Off unless asked for by name.
    insecure_dev: bool = False
    http: HttpSettings = field(default_factory=HttpSettings)
    bundles: BundleSettings = field(default_factory=BundleSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    snippets: SnippetSettings = field(default_factory=SnippetSettings)
    # Gossip timings; fields left at their defaults take the ``preset``'s values instead.
    membership: MembershipSettings = field(default_factory=MembershipSettings)
