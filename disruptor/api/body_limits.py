"""Request bodies must keep coming, and uploads are few at a time: slow clients cannot pin the
peer's sockets, temporary files and descriptors.

``BodyPace`` (sans-IO) decides when a body has fallen too far behind: each byte received buys
``1 / body_rate_min_bytes_s`` seconds after a grace of ``body_grace_s``, and no silence may last
``body_idle_timeout_s``. A client at or above the minimum rate is never cut however long it takes
(a 1 GiB upload at the minimum rate runs for days); one that sends a byte every few seconds is cut
after the grace. ``body_pace_middleware`` applies it to every request with a body still arriving:
a timer at the pace's deadline looks at the bytes received (``request.content.total_bytes``), and
closes the connection when the body is late. It watches only while the handler runs; a handler
that answers without reading the body leaves the rest to aiohttp's bounded lingering close.

``UploadSlots`` (sans-IO) counts bundle uploads in progress, in all and per client address; the
handler asks it before opening a temporary file and answers 503 with ``Retry-After`` when it is
full, or when fewer than ``descriptors_reserved`` descriptors are free, so the descriptors left
serve ``/health``, gossip push-pull and job traffic while uploads wait.

Rule: the cores take the time and counts as arguments; the adapters read the clock, the stream's
byte count and the process's descriptor table, and decide nothing themselves.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..errors import Unavailable

if TYPE_CHECKING:
    from ..settings import HttpSettings

log = logging.getLogger("disruptor.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# When a refused upload should come back: uploads finish or get cut within seconds to minutes.
UPLOAD_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class PaceLimits:
    rate_min_bytes_s: float
    grace_s: float
    idle_timeout_s: float

    @classmethod
    def of(cls, http: HttpSettings) -> PaceLimits:
        return cls(http.body_rate_min_bytes_s, http.body_grace_s, http.body_idle_timeout_s)


@dataclass
class BodyPace:
    """One body's schedule: by when the next bytes must have arrived."""

    limits: PaceLimits
    started_at: float
    received: int = 0
    progress_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.progress_at = self.started_at

    def observe(self, now: float, received: int) -> None:
        """Bytes received so far, seen at ``now`` (progress since the last look counts now)."""
        if received > self.received:
            self.received = received
            self.progress_at = now

    def deadline(self) -> float:
        limits = self.limits
        paced = self.started_at + limits.grace_s + self.received / limits.rate_min_bytes_s
        return min(paced, self.progress_at + limits.idle_timeout_s)

    def late(self, now: float) -> bool:
        return now >= self.deadline()


class _BodyWatch:
    """The timer that holds one request's body to its pace."""

    def __init__(self, request: web.Request, limits: PaceLimits) -> None:
        self._request = request
        self._loop = asyncio.get_running_loop()
        self._pace = BodyPace(limits, self._loop.time())
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self._timer = self._loop.call_at(self._pace.deadline(), self._check)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        content = self._request.content
        if content.is_eof():
            return
        now = self._loop.time()
        self._pace.observe(now, content.total_bytes)
        if not self._pace.late(now):
            self.arm()
            return
        request = self._request
        log.info(
            "closing %s %s from %s: its body is too slow (%d bytes in %.0fs)",
            request.method,
            request.path,
            request.remote,
            self._pace.received,
            now - self._pace.started_at,
        )
        # The handler's pending read fails at once, and its temporary files go with it.
        request.protocol.force_close()


def body_pace_middleware(limits: PaceLimits) -> Middleware:
    """Middleware cutting requests whose body arrives slower than ``limits`` allow."""

    @web.middleware
    async def body_pace(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists or request.content.is_eof():
            return await handler(request)
        watch = _BodyWatch(request, limits)
        watch.arm()
        try:
            return await handler(request)
        finally:
            watch.cancel()

    return body_pace


class UploadSlots:
    """Uploads in progress, in all and per client; ``take`` refuses past either bound."""

    def __init__(self, total_max: int, per_client_max: int) -> None:
        self.total_max = total_max
        self.per_client_max = per_client_max
        self._by_client: dict[str, int] = {}
        self.total = 0

    def take(self, client: str) -> str | None:
        """Take a slot for ``client``; None if granted, else why not."""
        if self.total >= self.total_max:
            return f"{self.total_max} uploads are in progress on this peer"
        held = self._by_client.get(client, 0)
        if held >= self.per_client_max:
            return f"{held} uploads from {client} are in progress"
        self._by_client[client] = held + 1
        self.total += 1
        return None

    def give_back(self, client: str) -> None:
        held = self._by_client.get(client, 0)
        if held <= 1:
            self._by_client.pop(client, None)
        else:
            self._by_client[client] = held - 1
        self.total = max(0, self.total - 1)


def descriptors_free() -> int | None:
    """Descriptors this process may still open (None where /proc cannot tell)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        return soft - len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


class UploadGate:
    """The adapter: ``UploadSlots`` plus the descriptor reserve, as 503s."""

    def __init__(self, slots: UploadSlots, descriptors_reserved: int) -> None:
        self.slots = slots
        self.descriptors_reserved = descriptors_reserved

    def enter(self, client: str) -> None:
        """Take an upload slot for ``client`` or raise ``Unavailable`` (503, Retry-After)."""
        free = descriptors_free()
        if free is not None and free < self.descriptors_reserved:
            raise Unavailable(
                f"only {free} file descriptors are free; uploads wait so that the peer's own "
                "traffic keeps its reserve",
                retry_after_s=UPLOAD_RETRY_AFTER_S,
            )
        refusal = self.slots.take(client)
        if refusal is not None:
            raise Unavailable(f"{refusal}; try again shortly", retry_after_s=UPLOAD_RETRY_AFTER_S)

    def leave(self, client: str) -> None:
        self.slots.give_back(client)
