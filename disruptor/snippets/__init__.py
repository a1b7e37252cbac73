"""Snippets: small Python sources run under RestrictedPython in sandboxed host processes.

``SnippetEngine`` is the peer's part (``peer.snippets``); ``SnippetSettings`` its settings.
See ``docs/snippets.md`` for the mechanism and its limits.

The names are imported on first use: a host process imports ``disruptor.snippets.host_main``
through this package and must not pay for the peer's side (asyncio, the pool, the store) at
every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import SnippetEngine
    from .host_pool import SnippetStats
    from .settings import SnippetSettings

_LAZY = {
    "SnippetEngine": "disruptor.snippets.engine",
    "SnippetStats": "disruptor.snippets.host_pool",
    "SnippetSettings": "disruptor.snippets.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'disruptor.snippets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["SnippetEngine", "SnippetSettings", "SnippetStats"]
