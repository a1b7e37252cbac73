"""The Python client: ``AsyncClient`` for asyncio code, ``Client`` for everything else."""

from __future__ import annotations

from .aio import AsyncClient
from .sync import Client

__all__ = ["AsyncClient", "Client"]
