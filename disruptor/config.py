"""Peer settings as frozen dataclasses, one section per part of the peer.

Each part owns its section's dataclass in its own package (bundle limits in
``disruptor.bundles.limits``, gossip timings in ``disruptor.membership.settings``...); this module
composes them into ``PeerConfig``. Loading from TOML, environment and flags lives in
``disruptor.settings`` so that this module stays plain data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .address import Address
from .bundles.limits import BundleLimits
from .home import default_home
from .jobs.settings import JobsSettings
from .membership.settings import MembershipSettings
from .snippets.policy import SnippetSettings
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


@dataclass(frozen=True)
class PeerConfig:
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
    bundles: BundleLimits = field(default_factory=BundleLimits)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    snippets: SnippetSettings = field(default_factory=SnippetSettings)
    # Gossip timings; fields left at their defaults take the ``preset``'s values instead.
    membership: MembershipSettings = field(default_factory=MembershipSettings)
