"""The application keys handlers use to reach the peer they serve."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..peer import Peer

PEER: web.AppKey[Peer] = web.AppKey("peer")
