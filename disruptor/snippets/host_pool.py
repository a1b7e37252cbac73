"""The peer's side of the snippet hosts: a small pool of processes, and the watchdog over them.

Rule: the peer's event loop only moves bytes to and from hosts; it never compiles or runs snippet
code. Each host runs one batch at a time. The watchdog expects a host's next reply within the
item's budget plus a grace period; a host that overruns (C code the in-process budget cannot
interrupt: a backtracking regex, a huge ``sorted``) or dies (its memory limit) is killed and
replaced, the item it was running gets a ``snippet-budget`` error, and the batch goes on from the
next item on a fresh host. Because a host buffers replies, the first overrun of a batch may not
say which item hung; the rest of the batch is then re-sent in ``flush_each`` mode, where it does.

Hosts start with an empty environment, ``/`` as working directory, their own session, and no
descriptor but their pipes (``close_fds``), so nothing of the peer's secrets reaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ..errors import Overloaded, SnippetRejected, Unavailable
from ..outcome import ItemOutcome
from .host_main import FLUSH_INTERVAL_S
from .policy import SnippetSettings

log = logging.getLogger("disruptor.snippets")

HOST_READY_TIMEOUT_S = 30.0
# Time a host may spend compiling and running a snippet's top level, beyond the item budget.
COMPILE_ALLOWANCE_S = 5.0
# Blamed host kills after which a batch's remaining items are failed rather than retried.
KILLS_PER_BATCH_MAX = 3
# How long stopping a killed host may take (reaping it, draining its pipe).
KILL_WAIT_S = 10.0
# Requests with more items than this are encoded in a thread rather than on the event loop.
ITEMS_INLINE_MAX = 1000
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[2]); "
    "from disruptor.snippets.host_main import main; sys.exit(main(sys.argv))"
)


@dataclasses.dataclass
class SnippetStats:
    """The snippet part's counters (``peer.snippets.stats``); ``hosts_running`` is a gauge."""

    runs: int = 0
    items: int = 0
    items_failed: int = 0
    budget_stops: int = 0
    rejected: int = 0
    stored: int = 0
    compile_cache_hits: int = 0
    compile_cache_misses: int = 0
    hosts_started: int = 0
    hosts_running: int = 0
    batches_running: int = 0
    watchdog_kills: int = 0
    host_deaths: int = 0


class HostProcess:
    """One running host and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.broken = False

    @classmethod
    async def spawn(cls, limits: SnippetSettings) -> HostProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            _BOOT,
            json.dumps(dataclasses.asdict(limits)),
            _PACKAGE_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Not the peer's stderr: a host holds no descriptor of the peer's but its pipes.
            stderr=asyncio.subprocess.DEVNULL,
            env={},
            cwd="/",
            close_fds=True,
            start_new_session=True,
            limit=limits.result_bytes_max + 1024 * 1024,
        )
        host = cls(proc)
        try:
            ready = await host.read(HOST_READY_TIMEOUT_S)
        except TimeoutError:
            ready = None
        except BaseException:
            # Cancelled (the peer is stopping) or broken: never leave a half-started host behind.
            await host.kill()
            raise
        if not ready or not ready.get("ready"):
            await host.kill()
            raise RuntimeError("snippet host failed to start")
        return host

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        if len(message.get("items") or ()) > ITEMS_INLINE_MAX:
            # A large batch is encoded off the event loop, which must stay free for others.
            data = await asyncio.to_thread(_encode_line, message)
        else:
            data = _encode_line(message)
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def read(self, timeout_s: float) -> dict[str, Any] | None:
        """The next reply, None at end of stream; ``TimeoutError`` if none comes in time."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        except (ValueError, asyncio.LimitOverrunError):
            self.broken = True
            return None
        if not line:
            self.broken = True
            return None
        message = json.loads(line)
        return message if isinstance(message, dict) else None

    async def kill(self) -> None:
        self.broken = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        # ``wait`` returns only once the pipes are closed too: drain what the host left unread
        # (a paused reader would never see the end of the pipe), with a bound either way.
        if self.proc.stdout is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.stdout.read(), KILL_WAIT_S)
        try:
            await asyncio.wait_for(self.proc.wait(), KILL_WAIT_S)
        except TimeoutError:
            log.warning("snippet host %s did not go away after SIGKILL", self.pid)


class HostPool:
    def __init__(self, limits: SnippetSettings, stats: SnippetStats | None = None) -> None:
        self.limits = limits
        self.stats = stats if stats is not None else SnippetStats()
        self._idle: list[HostProcess] = []
        self._all: set[HostProcess] = set()
        self._starting = 0
        self._waiting = 0
        self._changed = asyncio.Condition()
        self._closed = False
        self._prestart: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the warm hosts in the background (the peer does not wait for them)."""
        if self.limits.hosts_prestart > 0:
            self._prestart = asyncio.create_task(self._warm(self.limits.hosts_prestart))

    async def _warm(self, count: int) -> None:
        for _ in range(min(count, self.limits.hosts_max)):
            async with self._changed:
                if self._closed or len(self._all) + self._starting >= self.limits.hosts_max:
                    return
                self._starting += 1
            try:
                host = await self._spawn()
            except (OSError, RuntimeError) as exc:
                log.warning("could not start a snippet host: %s", exc)
                return
            await self.release(host)

    async def _spawn(self) -> HostProcess:
        """Start a host for a slot already reserved in ``_starting`` (released here)."""
        try:
            host = await HostProcess.spawn(self.limits)
            self._all.add(host)
        finally:
            self._starting -= 1
        self.stats.hosts_started += 1
        self.stats.hosts_running = len(self._all)
        return host

    async def acquire(self) -> HostProcess:
        if self._closed:
            raise Overloaded("the snippet engine is stopping", retry_after_s=1.0)
        async with self._changed:
            while not self._idle and len(self._all) + self._starting >= self.limits.hosts_max:
                if self._waiting >= self.limits.waiting_max:
                    raise Overloaded("every snippet host is busy", retry_after_s=1.0)
                self._waiting += 1
                try:
                    await self._changed.wait()
                finally:
                    self._waiting -= 1
            if self._idle:
                return self._idle.pop()
            self._starting += 1
        try:
            return await self._spawn()
        except (OSError, RuntimeError) as exc:
            raise Unavailable(f"could not start a snippet host: {exc}", retry_after_s=1.0) from None
        finally:
            async with self._changed:
                self._changed.notify()

    async def release(self, host: HostProcess) -> None:
        if host.broken or self._closed or host.proc.returncode is not None:
            await self.discard(host)
            return
        async with self._changed:
            self._idle.append(host)
            self._changed.notify()

    async def discard(self, host: HostProcess) -> None:
        await host.kill()
        self._all.discard(host)
        self.stats.hosts_running = len(self._all)
        async with self._changed:
            self._changed.notify()

    async def stop(self) -> None:
        self._closed = True
        if self._prestart is not None:
            # Cancelling inside create_subprocess_exec can leak the child being started, so let
            # the warm-up finish (release() discards hosts once closed); cancel only if it hangs.
            try:
                await asyncio.wait_for(asyncio.shield(self._prestart), HOST_READY_TIMEOUT_S + 1)
            except TimeoutError:
                self._prestart.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._prestart
        for host in list(self._all):
            await host.kill()
        self._all.clear()
        self._idle.clear()
        self.stats.hosts_running = 0

    async def check(self, request: dict[str, Any], timeout_s: float) -> None:
        """Compile a snippet on a host (``SnippetRejected`` if it does not compile)."""
        host = await self.acquire()
        try:
            await self._drive(
                host,
                {
                    **request,
                    "mode": "check",
                    "items": [],
                    "timeout_s": timeout_s,
                    "flush_each": True,
                },
                [None],
                0,
                timeout_s,
            )
        finally:
            await self.release(host)

    async def run(
        self, request: dict[str, Any], items: list[Any], timeout_s: float
    ) -> list[ItemOutcome]:
        """Run one request to completion across as many hosts as it takes."""
        self.stats.batches_running += 1
        try:
            return await self._run(request, items, timeout_s)
        finally:
            self.stats.batches_running -= 1

    async def _run(
        self, request: dict[str, Any], items: list[Any], timeout_s: float
    ) -> list[ItemOutcome]:
        mapping = request.get("mode", "map") == "map"
        units = len(items) if mapping else 1
        outcomes: list[ItemOutcome | None] = [None] * units
        first = 0
        flush_each = False
        kills = 0
        while first < units:
            if kills >= KILLS_PER_BATCH_MAX:
                for index in range(first, units):
                    outcomes[index] = _budget_failure(
                        "not run: the snippet's host was stopped too often in this batch"
                    )
                break
            host = await self.acquire()
            sent = items[first:] if mapping else items
            message = {**request, "items": sent, "timeout_s": timeout_s, "flush_each": flush_each}
            try:
                progress = await self._drive(host, message, outcomes, first, timeout_s)
            finally:
                await self.release(host)
            first, blamed, stalled = progress
            if blamed:
                kills += 1
            elif stalled:
                flush_each = True
        return [o if o is not None else _budget_failure("no result") for o in outcomes]

    async def _drive(
        self,
        host: HostProcess,
        message: dict[str, Any],
        outcomes: list[ItemOutcome | None],
        first: int,
        timeout_s: float,
    ) -> tuple[int, bool, bool]:
        """Feed one host; returns (next unfinished unit, a unit was blamed, stalled unblamed)."""
        await host.send(message)
        started = False
        grace = timeout_s + self.limits.watchdog_grace_s + FLUSH_INTERVAL_S
        nxt = first
        while True:
            wait_s = grace if started else grace + COMPILE_ALLOWANCE_S
            try:
                reply = await host.read(wait_s)
            except TimeoutError:
                reply = None
                self.stats.watchdog_kills += 1
                reason = f"ran longer than its time budget of {timeout_s:g}s (stopped by watchdog)"
            else:
                if reply is None:
                    self.stats.host_deaths += 1
                    reason = "its process ended while running (memory or stack budget exceeded)"
            if reply is None:
                await host.kill()
                if not started or message["flush_each"] or len(outcomes) == 1:
                    if not started:
                        for index in range(nxt, len(outcomes)):
                            outcomes[index] = _budget_failure(reason)
                        return len(outcomes), True, False
                    outcomes[nxt] = _budget_failure(reason)
                    return nxt + 1, True, False
                return nxt, False, True
            if "rejected" in reply:
                raise SnippetRejected(str(reply["rejected"]))
            if reply.get("started"):
                started = True
                if reply.get("cached"):
                    self.stats.compile_cache_hits += 1
                else:
                    self.stats.compile_cache_misses += 1
            elif "outcomes" in reply:
                index = first + int(reply["i"])
                for body in reply["outcomes"]:
                    if 0 <= index < len(outcomes):
                        outcomes[index] = ItemOutcome.from_json(body)
                        nxt = index + 1
                    index += 1
            elif reply.get("done"):
                if reply.get("recycle"):
                    host.broken = True
                return nxt, False, False


def _encode_line(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _budget_failure(message: str) -> ItemOutcome:
    return ItemOutcome.failure("snippet-budget", "SnippetBudgetExceeded", message)
