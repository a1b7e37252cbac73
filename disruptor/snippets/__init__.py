"""Snippets: small Python sources run under RestrictedPython in sandboxed host processes.

``SnippetRunner`` is the peer's part (``peer.snippets``); ``SnippetSettings`` its settings.
See ``docs/snippets.md`` for the mechanism and its limits.
"""

from __future__ import annotations

from .executor import SnippetRunner
from .hosts import SnippetStats
from .policy import SnippetSettings

__all__ = ["SnippetRunner", "SnippetSettings", "SnippetStats"]
