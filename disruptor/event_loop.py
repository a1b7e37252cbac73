"""The event loop a peer or a client runs on: uvloop where it is installed, asyncio's otherwise.

uvloop (libuv under asyncio's interface) makes the loop's own work, which is most of a tiny job's
cost on a peer, markedly cheaper; it installs on Linux and macOS. ``DISRUPTOR_EVENT_LOOP=asyncio``
chooses the standard loop anyway (to compare them, or where uvloop misbehaves).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "DISRUPTOR_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")


def _uvloop() -> Any | None:
    if os.environ.get(ENV, "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the chosen kind (for a loop run on a thread of its own)."""
    uvloop = _uvloop()
    loop: asyncio.AbstractEventLoop = (
        uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    )
    return loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the chosen kind of loop."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def name_of(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which kind of loop this is."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
