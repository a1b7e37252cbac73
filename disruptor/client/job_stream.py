"""The client's end of ``/jobs/stream``: one WebSocket per peer, many jobs in flight on it.

``JobStream.run`` sends a job as a frame and waits for its answer (``link/frames.py`` carries
the frames: those that wait go together, one reader hands each answer to its job). A job sent
with ``stream: true`` is also told its id (``started``) and each piece of results as the peer
accepts it (``piece``); a frame of a type this client does not know is ignored. When the
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
        on_started: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Submit ``job`` (a ``JobSpec`` as a map) and wait for its answer.

        ``on_piece`` and ``on_started`` (for a job with ``stream: true``) are called on this
        loop with each piece of results and with the job's id; should one raise, the job fails
        with that error (and is cancelled at the peer).
        """

        def listener(kind: str, body: bytes) -> None:
            if kind == "piece" and on_piece is not None:
                on_piece(_decoder.decode(body))
            elif kind == "started" and on_started is not None:
                on_started(str(_decoder.decode(body)["id"]))

        body = await self._frames.call({"op": "submit", "key": key, "job": job}, listener)
        answer: dict[str, Any] = _decoder.decode(body)
        return answer

    async def close(self) -> None:
        await self._frames.close()
