"""The client's worker calls: ``start_workers``, ``stop_workers``, ``list_workers``."""

from __future__ import annotations

from typing import Any

from .transport import Transport


class WorkersMixin(Transport):
    async def start_workers(self, bundle: str, count: int | None = None) -> list[dict[str, Any]]:
        """Start warm workers of ``bundle`` on the peer; returns them once they are ready."""
        body: dict[str, Any] = {"bundle": bundle}
        if count is not None:
            body["count"] = count
        reply = await self.request_json("POST", "/workers", json_body=body, failover=False)
        return list(reply["workers"])

    async def stop_workers(self, bundle: str) -> None:
        """Drain, then stop, the bundle's workers on the peer."""
        await self.request_json("DELETE", f"/workers/{bundle}", failover=False)

    async def list_workers(self) -> dict[str, Any]:
        """``{"workers": [...], "failed": {sha1: reason}}`` for the peer."""
        reply = await self.request_json("GET", "/workers")
        return dict(reply)
