"""How the composition root builds the membership driver: settings, secrets, the peer link, and
the metadata this peer gossips about itself.

The metadata comes from two narrow, typed sources the root hands over (the worker pool's load and
the bundle store's list), never from the peer as a whole. Rule: reading metadata never raises (a
source that fails contributes nothing, and gossip goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..address import Address
from ..link.peer_link import PeerLink
from ..version import __version__
from .driver import MembershipDriver
from .meta import PeerLoad, PeerMeta
from .settings import MembershipSettings, resolve

log = logging.getLogger("disruptor.membership")

# A previous cluster secret, kept during a rotation: gossip sealed with it is still accepted.
PREVIOUS_SECRET_FILE = "cluster.secret.previous"  # noqa: S105 - a file name


class WorkLoad(Protocol):
    """The worker pool, as gossip reads it."""

    @property
    def tasks_running(self) -> int: ...

    @property
    def queue_items(self) -> int: ...

    @property
    def slots_free(self) -> int: ...


class HeldBundles(Protocol):
    """The bundle store, as gossip reads it."""

    def sha1s(self) -> set[str]: ...


@dataclass(frozen=True)
class LocalMetadata:
    """The typed metadata provider: this peer's load and bundles, read when gossip asks."""

    load: WorkLoad
    bundles: HeldBundles

    def __call__(self) -> PeerMeta:
        try:
            load = PeerLoad(
                max(0, self.load.tasks_running),
                max(0, self.load.queue_items),
                max(0, self.load.slots_free),
            )
        except Exception:  # a pool mid-shutdown must not stop gossip
            log.exception("reading the load for gossip failed")
            load = PeerLoad()
        try:
            bundles = tuple(sorted(self.bundles.sha1s()))
        except Exception:  # nor a store mid-shutdown
            log.exception("reading the bundle list for gossip failed")
            bundles = ()
        return PeerMeta(load, bundles, __version__)


def build_membership(
    address: Address,
    *,
    preset: str,
    settings: MembershipSettings,
    cluster_name: str,
    seeds: Sequence[Address],
    secret: bytes,
    data_root: Path,
    link: PeerLink,
    metadata: LocalMetadata,
) -> MembershipDriver:
    config = resolve(preset, settings)
    previous = data_root / PREVIOUS_SECRET_FILE
    secondaries = [previous.read_bytes().strip()] if previous.is_file() else []
    return MembershipDriver(
        address,
        config,
        secret,
        cluster_name,
        link=link,
        seeds=seeds,
        metadata_provider=metadata,
        secondary_secrets=secondaries,
    )
