"""How a peer builds its membership driver: settings, secrets, and the metadata it gossips.

The metadata provider reads the worker pool and the bundle store through ``getattr`` with
defaults, so it works whichever of those parts a peer has. Rule: reading metadata never raises
(a part that is missing or failing contributes zeros).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import __version__
from .driver import MembershipDriver
from .meta import PeerLoad, PeerMeta
from .settings import resolve

if TYPE_CHECKING:
    from ..peer import Peer

# A previous cluster secret, kept during a rotation: gossip sealed with it is still accepted.
PREVIOUS_SECRET_FILE = "cluster.secret.previous"  # noqa: S105 - a file name


def metadata_of(peer: Any) -> PeerMeta:
    pool = getattr(peer, "pool", None)
    store = getattr(peer, "store", None)
    running = _int(pool, "tasks_running")
    free = _int(pool, "slots_free")
    stats = getattr(pool, "stats", None)
    queued = _int(stats, "queue_items")
    bundles: list[str] = []
    sha1s = getattr(store, "sha1s", None)
    if callable(sha1s):
        try:
            bundles = sorted(sha1s())
        except Exception:  # a store mid-shutdown must not stop gossip
            bundles = []
    return PeerMeta(PeerLoad(running, queued, free), tuple(bundles), __version__)


def _int(obj: Any, name: str) -> int:
    try:
        value = getattr(obj, name, 0)
        value = value() if callable(value) else value
        return max(0, int(value))
    except Exception:
        return 0


def build_membership(peer: Peer) -> MembershipDriver:
    config = resolve(peer.config.preset, peer.config.membership)
    previous = peer.home.root / PREVIOUS_SECRET_FILE
    secondaries = [previous.read_bytes().strip()] if previous.is_file() else []
    return MembershipDriver(
        peer.address,
        config,
        peer.cluster_secret,
        peer.config.cluster_name,
        seeds=peer.config.seeds,
        metadata_provider=lambda: metadata_of(peer),
        secondary_secrets=secondaries,
    )
