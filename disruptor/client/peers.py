"""Client calls about membership: the peers a peer knows."""

from __future__ import annotations

from typing import Any

from .transport import Transport


class PeersMixin(Transport):
    async def peers(self) -> dict[str, Any]:
        """``GET /peers``: ``{"self": "HOST:PORT", "peers": [{address, state, since, ...}]}``."""
        result: dict[str, Any] = await self.request_json("GET", "/peers")
        return result
