"""Membership: peers find each other and detect failures by gossip (SWIM + Lifeguard).

The sans-IO core (``protocol.Protocol`` and the modules it uses) runs in the simulator and, through
``driver.MembershipDriver``, for real over UDP and HTTP. See ``docs/membership.md``.
"""

from __future__ import annotations

from .driver import MembershipDriver, MembershipStats
from .members import MemberView
from .meta import PeerLoad, PeerMeta
from .settings import MembershipSettings, preset

__all__ = [
    "MemberView",
    "MembershipDriver",
    "MembershipSettings",
    "MembershipStats",
    "PeerLoad",
    "PeerMeta",
    "preset",
]
