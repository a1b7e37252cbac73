"""Running a snippet through the host's own code in this process (no subprocess), for fast tests.

Everything but the process fence (rlimits, the watchdog) is the code a real host runs.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec

from disruptor.snippets.host_main import Host
from disruptor.snippets.host_wire import (
    Done,
    FrameReader,
    HostFrame,
    Mode,
    Part,
    Rejected,
    Run,
    Started,
)
from disruptor.snippets.names import snippet_sha1
from disruptor.snippets.settings import SnippetSettings

MODES = {"map": Mode.MAP, "reduce": Mode.REDUCE, "combine": Mode.COMBINE, "fold": Mode.FOLD}


def make_run(
    source: str,
    items: list[Any],
    *,
    mode: Mode = Mode.MAP,
    timeout_s: float = 2.0,
    first: int = 0,
    flush_each: bool = False,
    initial: Any = None,
    has_initial: bool = False,
) -> Run:
    return Run(
        sha1=snippet_sha1(source),
        source=source,
        mode=mode,
        timeout_s=timeout_s,
        count=len(items),
        items=msgspec.msgpack.encode(items),
        first=first,
        flush_each=flush_each,
        has_initial=has_initial,
        initial=msgspec.msgpack.encode(initial),
    )


def frames_of(data: bytes) -> list[HostFrame]:
    """Every frame in ``data`` (which must hold whole frames only)."""
    reader = FrameReader()
    reader.feed(data)
    frames = []
    while (frame := reader.next_frame()) is not None:
        frames.append(frame)
    assert reader.pending_bytes == 0
    return frames


def run_inline(
    source: str,
    items: list[Any] | None = None,
    *,
    mode: str = "map",
    timeout_s: float = 2.0,
    limits: SnippetSettings | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The host's replies for one request: ``[{"rejected"}]``, or one outcome per item as
    ``{"i": n, "value": V}`` or ``{"i": n, "error": {...}}``."""
    out = io.BytesIO()
    host = Host(limits or SnippetSettings(), out)
    extra = extra or {}
    run = make_run(
        source,
        [None] if items is None else items,
        mode=MODES[mode],
        timeout_s=timeout_s,
        initial=extra.get("initial"),
        has_initial=bool(extra.get("has_initial")),
    )
    host.handle(run)
    replies = frames_of(out.getvalue())
    if replies and isinstance(replies[0], Rejected):
        return [{"rejected": replies[0].detail}]
    assert isinstance(replies[0], Started) and isinstance(replies[-1], Done), replies
    outcomes: list[dict[str, Any]] = []
    for part in replies[1:-1]:
        assert isinstance(part, Part) and part.first == len(outcomes), part
        values = msgspec.msgpack.decode(part.values)
        errors = {offset: part.infos[index] for offset, index in part.errors}
        for offset, value in enumerate(values, part.first):
            info = errors.get(offset)
            if info is None:
                outcomes.append({"i": offset, "value": value})
            else:
                assert value is None
                body = {"kind": info.kind, "type": info.type, "message": info.message}
                outcomes.append({"i": offset, "error": {**body, "traceback": info.traceback}})
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
