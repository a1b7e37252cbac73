"""The subprocess adapter: runs one worker process and pumps its pipes through its ``Session``.

Rule: this module decides nothing. It spawns the ``LaunchPlan`` in a new session (its own process
group), feeds stdout bytes and the exit to the session, keeps the last stderr lines for error
messages, writes the bytes the session gives it (a ``Send`` before anything else), arms a timer
for the session's next deadline, and passes every session output to the pool's callback. Killing
a worker kills its process group and, when it has a uid of its own, every process of that uid, so
nothing it started survives it.

It uses a ``SubprocessProtocol`` rather than streams because the exit must be seen when it
happens: a daemonised grandchild may hold the worker's stdout open long after the worker is gone,
and ``Process.wait()`` would wait for that pipe too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, cast

from ..chunks import Chunk
from .isolation import LaunchPlan, processes_of_uid
from .session import DeathKind, Gone, Kill, Output, Send, Session

log = logging.getLogger("disruptor.workers")

# After stdout closes, how long to wait for the exit status before treating it as a hang; and
# after the exit, how long to wait for the last bytes on stdout (replies written just before it).
EXIT_AFTER_EOF_S = 2.0
EOF_AFTER_EXIT_S = 2.0
# Rounds of "kill every process of the uid" before giving up on a process that keeps forking.
SWEEP_ROUNDS_MAX = 50

OutputHandler = Callable[["WorkerProcess", list[Output]], None]


class _Pipes(asyncio.SubprocessProtocol):
    """Routes the transport's callbacks to the worker; holds no state of its own."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A subprocess transport by contract (uvloop's is not asyncio's class, only its shape).
        self.worker._on_started(cast(asyncio.SubprocessTransport, transport))

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        assert isinstance(data, bytes)
        if fd == 1:
            self.worker._on_stdout(data)
        elif fd == 2:
            self.worker._on_stderr(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.worker._on_stdout_closed()
        elif fd == 2:
            self.worker._on_stderr(b"\n")  # flush a last unterminated line

    def process_exited(self) -> None:
        self.worker._on_exit()


class WorkerProcess:
    def __init__(
        self,
        name: str,
        plan: LaunchPlan,
        session: Session,
        on_output: OutputHandler,
        *,
        stderr_lines_kept: int = 20,
        stderr_line_chars_max: int = 500,
    ) -> None:
        self.name = name
        self.plan = plan
        self.session = session
        self._on_output = on_output
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=stderr_lines_kept)
        self._stderr_line_chars_max = stderr_line_chars_max
        self._stderr_partial = b""
        self._transport: asyncio.SubprocessTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._exited = asyncio.Event()
        self._stdout_closed = asyncio.Event()
        self._swept = False
        self.pid: int | None = None
        self.returncode: int | None = None

    async def spawn(self) -> None:
        transport, _ = await self._loop.subprocess_exec(
            lambda: _Pipes(self),
            *self.plan.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(self.plan.env),
            cwd=self.plan.cwd,
            # Its own session and process group: a kill reaches every process in the group, and
            # the worker cannot signal the peer's group.
            start_new_session=True,
            pass_fds=self.plan.pass_fds,
        )
        assert transport is self._transport
        self._rearm()

    # --- commands ---

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        stdin = self._transport.get_pipe_transport(0)
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            cast(asyncio.WriteTransport, stdin).write(data)

    def call(self, parts: Sequence[Chunk], timeout_s: float | None) -> int:
        """Send one call of ``parts`` (raises ``Unsendable`` when it cannot be written)."""
        call_id, data = self.session.call(self._loop.time(), parts, timeout_s)
        self.write(data)
        self._rearm()
        return call_id

    def shutdown(self) -> None:
        data = self.session.shutdown(self._loop.time())
        if data is not None:
            self.write(data)
            self._rearm()

    async def stop(self) -> None:
        """Kill now (calls in flight are lost), and wait until everything it started is gone."""
        self._deliver(self.session.kill("worker stopped"))
        await self.kill()

    def stop_for(self, kind: DeathKind, reason: str) -> None:
        """Kill now because of ``kind`` (its calls are lost with that kind); reaped as usual."""
        self._deliver(self.session.kill(reason, kind))

    async def kill(self) -> None:
        """Kill the worker and everything it started; returns once its exit is collected."""
        self._kill_now()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait for the exit (and the sweep that follows it), then release the pipes."""
        if self._transport is not None:
            await self._exited.wait()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._sweep()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.close()

    # --- callbacks from the pipes ---

    def _on_started(self, transport: asyncio.SubprocessTransport) -> None:
        # Known here, not when spawn() returns: a worker that dies at once may be reported
        # exited (and its pipes closed) before subprocess_exec hands the transport back.
        self._transport = transport
        self.pid = transport.get_pid()

    def _on_stdout(self, data: bytes) -> None:
        self._deliver(self.session.receive(self._loop.time(), data))

    def _on_stdout_closed(self) -> None:
        self._stdout_closed.set()
        self._background(self._after_stdout_closed())

    async def _after_stdout_closed(self) -> None:
        # Normally the exit follows at once. A worker that closes stdout and keeps running is
        # broken, and the session says to kill it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._exited.wait(), EXIT_AFTER_EOF_S)
        if not self._exited.is_set() and self.returncode is None:
            self._deliver(self.session.eof(self._loop.time()))

    def _on_exit(self) -> None:
        assert self._transport is not None
        self.returncode = self._transport.get_returncode()
        self._background(self._after_exit())

    async def _after_exit(self) -> None:
        # Whatever the worker left behind (a daemonised grandchild) goes with it now; that also
        # closes any copy of its stdout they held, so the last replies can be read to the end.
        self._signal_group()
        await self._sweep()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stdout_closed.wait(), EOF_AFTER_EXIT_S)
        now = self._loop.time()
        if self._stdout_closed.is_set():
            self._deliver(self.session.eof(now, exited=True))
        assert self.returncode is not None
        self._deliver(self.session.exited(now, self.returncode))
        self._exited.set()

    def _on_stderr(self, data: bytes) -> None:
        lines = (self._stderr_partial + data).split(b"\n")
        self._stderr_partial = lines.pop()[: self._stderr_line_chars_max * 4]
        for raw in lines:
            if raw:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                text = text[: self._stderr_line_chars_max]
                self.stderr_tail.append(text)
                log.debug("%s stderr: %s", self.name, text)

    # --- session plumbing ---

    def _deliver(self, outputs: list[Output]) -> None:
        if not outputs:
            return
        for output in outputs:
            if isinstance(output, Send):
                self.write(output.data)
            elif isinstance(output, Kill):
                log.info("killing worker %s: %s", self.name, output.reason)
                self._kill_now()
            elif isinstance(output, Gone) and self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self._on_output(self, outputs)
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._deliver(self.session.tick(self._loop.time()))
        if self._timer is None:
            self._rearm()

    def _background(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _kill_now(self) -> None:
        self._signal_group()
        if self._transport is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._transport.kill()

    def _signal_group(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    async def _sweep(self) -> None:
        """Kill every process left running as the worker's own uid."""
        if self._swept or self.plan.uid is None:
            return
        self._swept = True
        uid = self.plan.uid
        for _ in range(SWEEP_ROUNDS_MAX):
            if not processes_of_uid(uid):
                return
            # kill(-1) as that uid signals every process the uid owns in one kernel pass, which
            # also stops a fork bomb that outruns a pid-by-pid kill.
            proc = await asyncio.create_subprocess_exec(
                "kill",
                "-KILL",
                "-1",
                user=uid,
                group=uid,
                extra_groups=[],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await proc.wait()
        log.warning("worker %s: processes of uid %d survive sweeping", self.name, uid)
