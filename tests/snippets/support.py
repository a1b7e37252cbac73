"""Running a snippet through the host's own code in this process (no subprocess), for fast tests.

Everything but the process fence (rlimits, the watchdog) is the code a real host runs.
"""

from __future__ import annotations

import io
import json
from typing import Any

from disruptor.snippets.compile import snippet_sha1
from disruptor.snippets.host_main import Host
from disruptor.snippets.policy import SnippetSettings


def run_inline(
    source: str,
    items: list[Any] | None = None,
    *,
    mode: str = "map",
    timeout_s: float = 2.0,
    limits: SnippetSettings | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The host's replies for one request: ``[{"rejected"}]`` or the per-item outcomes."""
    out = io.BytesIO()
    host = Host(limits or SnippetSettings(), out)
    host.handle(
        {
            "sha1": snippet_sha1(source),
            "source": source,
            "mode": mode,
            "items": [None] if items is None else items,
            "timeout_s": timeout_s,
            **(extra or {}),
        }
    )
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    if replies and "rejected" in replies[0]:
        return replies
    assert replies[0].get("started") and replies[-1].get("done"), replies
    # Outcomes come in chunks; spread them out as one {"i": n, ...} per item.
    outcomes = []
    for chunk in replies[1:-1]:
        for offset, body in enumerate(chunk["outcomes"]):
            outcomes.append({"i": chunk["i"] + offset, **body})
    return outcomes


def one(source: str, item: Any = None, **kwargs: Any) -> dict[str, Any]:
    """The single outcome of running ``source`` on one item (or the rejection)."""
    return run_inline(source, [item], **kwargs)[0]


def error_of(source: str, item: Any = None, **kwargs: Any) -> dict[str, Any]:
    """The error a snippet ends with; fails the test if it succeeded."""
    reply = one(source, item, **kwargs)
    if "rejected" in reply:
        return {"kind": "snippet-rejected", "type": "SnippetRejected", "message": reply["rejected"]}
    assert "error" in reply, f"snippet was expected to fail but returned {reply!r}"
    error: dict[str, Any] = reply["error"]
    return error
