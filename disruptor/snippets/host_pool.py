"""The peer's side of the snippet hosts: a small pool of processes, and the watchdog over them.

Rule: the peer's event loop only moves bytes to and from hosts; it never compiles or runs snippet
code, and it does not decode items or values either: a chunk goes to a host as it came, and the
parts of the answer are joined as they come (``collector``). Each host runs one chunk at a time.
The watchdog expects a host's next frame within the item's budget plus a grace period; a host that
overruns (C code the in-process budget cannot interrupt: a backtracking regex, a huge ``sorted``),
dies (its memory limit) or breaks the wire protocol is killed and replaced, the item it was running
fails, and the chunk goes on from the next item on a fresh host. Because a host answers in parts,
the first overrun of a chunk may not say which item hung; the rest of the chunk is then re-sent in
``flush_each`` mode, where it does.

Hosts start on first use (``hosts_prestart`` warm ones at start if configured), with an empty
environment, ``/`` as working directory, their own session, and no descriptor but their pipes
(``close_fds``), so nothing of the peer's secrets reaches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from ..chunks import ChunkResult
from ..errors import InvalidPayload, Overloaded, SnippetRejected, Unavailable
from ..outcome import ErrorInfo
from .collector import ChunkCollector
from .host_wire import (
    PART_INTERVAL_S,
    BadItems,
    Done,
    FrameReader,
    HostFrame,
    Mode,
    Part,
    Ready,
    Rejected,
    Run,
    Started,
    WireError,
    encode_frame,
)
from .settings import SnippetSettings

log = logging.getLogger("disruptor.snippets")

HOST_READY_TIMEOUT_S = 30.0
# Time a host may spend compiling and running a snippet's top level, beyond the item budget.
COMPILE_ALLOWANCE_S = 5.0
# Blamed host kills after which a chunk's remaining items are failed rather than retried.
KILLS_PER_BATCH_MAX = 3
# How long stopping a killed host may take (reaping it, draining its pipe).
KILL_WAIT_S = 10.0
# Bytes taken from a host's pipe at a time (and the pipe reader's buffer).
READ_BYTES = 1024 * 1024
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
    # Hosts killed for sending what is not a frame of the wire.
    protocol_errors: int = 0
    # Reply parts received (a chunk comes back in one or more).
    parts: int = 0
    # Hosts stopped after staying idle for ``hosts_idle_s``.
    hosts_expired: int = 0


def host_command(limits: SnippetSettings) -> list[str]:
    """The command line of a host process."""
    return [
        sys.executable,
        "-I",
        "-c",
        _BOOT,
        json.dumps(dataclasses.asdict(limits)),
        _PACKAGE_ROOT,
    ]


class HostProcess:
    """One running host, its pipes, and the frames it has sent but nobody read yet."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.broken = False
        # Between a request and its last reply: a host given back in this state (its caller was
        # cancelled) still owes frames and would answer the next caller with them.
        self.in_run = False
        self.reader = FrameReader()
        # While idle: the timer that stops it after ``hosts_idle_s``.
        self.idle_timer: asyncio.TimerHandle | None = None

    @classmethod
    async def spawn(cls, command: Sequence[str]) -> HostProcess:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Not the peer's stderr: a host holds no descriptor of the peer's but its pipes.
            stderr=asyncio.subprocess.DEVNULL,
            env={},
            cwd="/",
            close_fds=True,
            start_new_session=True,
            limit=READ_BYTES,
        )
        host = cls(proc)
        try:
            ready = await host.read(HOST_READY_TIMEOUT_S)
        except (TimeoutError, WireError):
            ready = None
        except BaseException:
            # Cancelled (the peer is stopping) or broken: never leave a half-started host behind.
            await host.kill()
            raise
        if not isinstance(ready, Ready):
            await host.kill()
            raise RuntimeError("snippet host failed to start")
        return host

    async def send(self, run: Run) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(encode_frame(run))
        await self.proc.stdin.drain()

    async def read(self, timeout_s: float) -> HostFrame | None:
        """The next frame, None at end of stream; ``TimeoutError`` if none comes in time,
        ``WireError`` if the host sent something else."""
        assert self.proc.stdout is not None
        try:
            frame = self.reader.next_frame()
            if frame is not None:
                return frame
            async with asyncio.timeout(timeout_s):
                while True:
                    data = await self.proc.stdout.read(READ_BYTES)
                    if not data:
                        self.broken = True
                        return None
                    self.reader.feed(data)
                    frame = self.reader.next_frame()
                    if frame is not None:
                        return frame
        except WireError:
            self.broken = True
            raise

    async def kill(self) -> None:
        self.broken = True
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            # ``wait`` returns only once the pipes are closed too: drain what the host left
            # unread (a paused reader would never see the end of the pipe), with a bound.
            if self.proc.stdout is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.proc.stdout.read(), KILL_WAIT_S)
            try:
                await asyncio.wait_for(self.proc.wait(), KILL_WAIT_S)
            except TimeoutError:
                log.warning("snippet host %s did not go away after SIGKILL", self.pid)
        finally:
            # The transport is closed here, whatever interrupted the wait: asyncio closes it
            # itself only once it has seen every pipe end, and warns about it otherwise.
            transport = getattr(self.proc, "_transport", None)
            if transport is not None:
                transport.close()


class HostPool:
    def __init__(
        self,
        limits: SnippetSettings,
        stats: SnippetStats | None = None,
        *,
        command: Sequence[str] | None = None,
    ) -> None:
        self.limits = limits
        self.stats = stats if stats is not None else SnippetStats()
        # How to start a host (tests start impostors that break the wire).
        self.command = list(command) if command is not None else host_command(limits)
        self._idle: list[HostProcess] = []
        self._all: set[HostProcess] = set()
        self._starting = 0
        self._waiting = 0
        self._changed = asyncio.Condition()
        self._closed = False
        self._prestart: asyncio.Task[None] | None = None
        self._expiring: set[asyncio.Task[None]] = set()

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
            host = await HostProcess.spawn(self.command)
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
                host = self._idle.pop()
                if host.idle_timer is not None:
                    host.idle_timer.cancel()
                    host.idle_timer = None
                return host
            self._starting += 1
        try:
            return await self._spawn()
        except (OSError, RuntimeError) as exc:
            raise Unavailable(f"could not start a snippet host: {exc}", retry_after_s=1.0) from None
        finally:
            async with self._changed:
                self._changed.notify()

    async def release(self, host: HostProcess) -> None:
        if host.broken or host.in_run or self._closed or host.proc.returncode is not None:
            await self.discard(host)
            return
        async with self._changed:
            self._idle.append(host)
            if self.limits.hosts_idle_s > 0:
                loop = asyncio.get_running_loop()
                host.idle_timer = loop.call_later(self.limits.hosts_idle_s, self._expire, host)
            self._changed.notify()

    def _expire(self, host: HostProcess) -> None:
        """Stop a host that stayed idle for ``hosts_idle_s``: an idle peer holds no host."""
        host.idle_timer = None
        if self._closed or host not in self._idle:
            return
        self._idle.remove(host)
        self.stats.hosts_expired += 1
        task = asyncio.create_task(self.discard(host))
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

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
        for host in self._idle:
            if host.idle_timer is not None:
                host.idle_timer.cancel()
        if self._expiring:
            await asyncio.gather(*self._expiring, return_exceptions=True)
        for host in list(self._all):
            await host.kill()
        self._all.clear()
        self._idle.clear()
        self.stats.hosts_running = 0

    async def check(self, sha1: str, source: str, timeout_s: float) -> None:
        """Compile a snippet on a host (``SnippetRejected`` if it does not compile)."""
        run = Run(sha1, source, Mode.CHECK, timeout_s, 0, b"\x90", flush_each=True)
        host = await self.acquire()
        try:
            await self._drive(host, run, ChunkCollector(0))
        finally:
            await self.release(host)

    async def run(self, run: Run) -> ChunkResult:
        """Run one request to completion across as many hosts as it takes.

        A map answers one value slot per item; a fold (reduce, combine) one slot in all.
        """
        self.stats.batches_running += 1
        try:
            return await self._run(run)
        finally:
            self.stats.batches_running -= 1

    async def _run(self, run: Run) -> ChunkResult:
        mapping = run.mode is Mode.MAP
        collector = ChunkCollector(run.count if mapping else 1)
        flush_each = False
        kills = 0
        while not collector.complete:
            if kills >= KILLS_PER_BATCH_MAX:
                collector.fail_rest(
                    _budget_failure(
                        "not run: the snippet's host was stopped too often in this chunk"
                    )
                )
                break
            attempt = msgspec.structs.replace(
                run,
                first=collector.next if mapping else 0,
                flush_each=flush_each,
                values_bytes_max=collector.values_bytes_left,
            )
            host = await self.acquire()
            try:
                blamed, stalled = await self._drive(host, attempt, collector)
            finally:
                await self.release(host)
            if blamed:
                kills += 1
            elif stalled:
                flush_each = True
        return collector.result()

    async def _drive(
        self, host: HostProcess, run: Run, collector: ChunkCollector
    ) -> tuple[bool, bool]:
        """Feed one host; returns (an item was blamed, the host stalled and nobody was blamed)."""
        host.in_run = True
        await host.send(run)
        started = False
        grace = run.timeout_s + self.limits.watchdog_grace_s + PART_INTERVAL_S
        while True:
            wait_s = grace if started else grace + COMPILE_ALLOWANCE_S
            failure: ErrorInfo | None = None
            try:
                frame = await host.read(wait_s)
                if frame is None:
                    self.stats.host_deaths += 1
                    failure = _budget_failure(
                        "its process ended while running (memory or stack budget exceeded)"
                    )
                elif isinstance(frame, Part):
                    collector.add(frame)
                    self.stats.parts += 1
                elif isinstance(frame, Done) and not collector.complete:
                    raise WireError("the host said done before answering every item")
                elif isinstance(frame, Ready) or (isinstance(frame, Started) and started):
                    raise WireError(f"unexpected {type(frame).__name__} frame")
            except TimeoutError:
                self.stats.watchdog_kills += 1
                failure = _budget_failure(
                    f"ran longer than its time budget of {run.timeout_s:g}s (stopped by watchdog)"
                )
            except WireError as exc:
                self.stats.protocol_errors += 1
                log.warning("snippet host %s broke the wire protocol: %s", host.pid, exc)
                failure = ErrorInfo(
                    "task-failed",
                    "SnippetHostError",
                    "the snippet's host broke the wire protocol and was replaced",
                )
            if failure is not None:
                await host.kill()
                if not started:
                    collector.fail_rest(failure)
                    return True, False
                if run.flush_each or collector.count - collector.next == 1:
                    collector.fail(failure)
                    return True, False
                return False, True
            if isinstance(frame, Rejected):
                host.in_run = False
                raise SnippetRejected(frame.detail)
            if isinstance(frame, BadItems):
                host.in_run = False
                raise InvalidPayload(frame.detail)
            if isinstance(frame, Started):
                started = True
                if frame.cached:
                    self.stats.compile_cache_hits += 1
                else:
                    self.stats.compile_cache_misses += 1
            elif isinstance(frame, Done):
                host.in_run = False
                if frame.recycle:
                    host.broken = True
                return False, False


def _budget_failure(message: str) -> ErrorInfo:
    return ErrorInfo("snippet-budget", "SnippetBudgetExceeded", message)
