"""The client's end of ``/jobs/stream``: one WebSocket per peer, many jobs in flight on it.

``JobStream.run`` sends a job as a frame and waits for its answer (``link/frames.py`` carries
the frames: those that wait go together, one reader hands each answer to its job). When the
socket breaks, every job in flight on it fails with ``PeerUnreachable``, which the caller takes as
a reason to resubmit elsewhere under the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec

from ..link.frames import FrameStream

_decoder = msgspec.msgpack.Decoder()

# The peer's own bound on one message; a job larger than this cannot travel on the stream.
MESSAGE_BYTES_MAX = 256 * 1024 * 1024


class JobStream:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.url = url

        async def connect() -> aiohttp.ClientWebSocketResponse:
            return await session.ws_connect(
                url + "/jobs/stream", max_msg_size=MESSAGE_BYTES_MAX, compress=0
            )

        self._frames = FrameStream(url, connect)

    async def run(
        self,
        job: dict[str, Any],
        key: str,
        on_piece: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Submit ``job`` (a ``JobSpec`` as a map) and wait for its answer."""
        listener = None if on_piece is None else (lambda body: on_piece(_decoder.decode(body)))
        body = await self._frames.call({"op": "submit", "key": key, "job": job}, listener)
        answer: dict[str, Any] = _decoder.decode(body)
        return answer

    async def close(self) -> None:
        await self._frames.close()
