"""What a client job runs: a bundle by SHA-1, snippet source, or a plain function shipped as one.

``work`` is a bundle's SHA-1 (40 hex digits), snippet source text (anything else), a ``Snippet`` or
``BundleRef``, or a plain, self-contained Python function whose source is shipped as a snippet.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BundleRef:
    """A bundle by SHA-1: its handler (``bundle.toml`` ``[worker]``) receives each item."""

    sha1: str


@dataclass(frozen=True)
class Snippet:
    """Snippet source defining ``handle(item)`` (and/or ``reduce``/``combine``)."""

    source: str


Work = str | BundleRef | Snippet | Callable[..., Any]


def work_body(work: Work) -> dict[str, Any]:
    """The job fields that name ``work``."""
    if isinstance(work, BundleRef):
        return {"bundle": work.sha1}
    if isinstance(work, Snippet):
        return {"snippet": work.source}
    if isinstance(work, str):
        if len(work) == 40 and set(work) <= _HEX:
            return {"bundle": work}
        return {"snippet": work}
    if callable(work):
        return {"snippet": snippet_source(work)}
    raise TypeError(f"cannot run {work!r}: give a bundle SHA-1, snippet source or a function")


def snippet_source(fn: Callable[..., Any]) -> str:
    """A self-contained function's own source, as a snippet whose ``handle`` calls it.

    Only the function travels: it must not use globals of its module (other than what a snippet
    may import itself) and must keep to what the snippet sandbox allows.
    """
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise TypeError(f"cannot ship {fn!r} as a snippet: its source is unavailable") from exc
    name = getattr(fn, "__name__", "")
    if not name.isidentifier():
        raise TypeError("only a named, module-level function can be shipped as a snippet")
    if name == "handle":
        return source
    return f"{source}\n\ndef handle(item):\n    return {name}(item)\n"
