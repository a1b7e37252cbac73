"""Snippets: small Python sources run under RestrictedPython in sandboxed host processes.

``SnippetEngine`` is the peer's part (``peer.snippets``); ``SnippetSettings`` its settings.
See ``docs/snippets.md`` for the mechanism and its limits.
"""

from __future__ import annotations

from .engine import SnippetEngine
from .host_pool import SnippetStats
from .policy import SnippetSettings

__all__ = ["SnippetEngine", "SnippetSettings", "SnippetStats"]
