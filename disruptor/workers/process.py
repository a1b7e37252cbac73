"""The subprocess adapter: runs one worker process and pumps its pipes through its ``Session``.

Rule: this module decides nothing. It spawns the ``LaunchPlan`` in a new session (its own process
group), feeds stdout bytes and the exit to the session, keeps the last stderr lines for error
messages, writes the lines the session gives it, arms a timer for the session's next deadline, and
passes every session output to the pool's callback. Killing a worker kills its process group and,
when it has a uid of its own, every process of that uid, so nothing it started survives it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from .isolation import LaunchPlan, processes_of_uid
from .session import Gone, Kill, Output, Session

log = logging.getLogger("disruptor.workers")

READ_CHUNK_BYTES = 256 * 1024
# After stdout closes, how long to wait for the exit status before treating it as a hang.
EXIT_AFTER_EOF_S = 2.0
# Rounds of "kill every process of the uid" before giving up on a process that keeps forking.
SWEEP_ROUNDS_MAX = 50

OutputHandler = Callable[["WorkerProcess", list[Output]], None]


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
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._exited = asyncio.Event()
        self._swept = False
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self.plan.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(self.plan.env),
            cwd=self.plan.cwd,
            # Its own session and process group: a kill reaches every process in the group, and
            # the worker cannot signal the peer's group.
            start_new_session=True,
            limit=READ_CHUNK_BYTES,
            pass_fds=self.plan.pass_fds,
        )
        self._tasks = [
            asyncio.create_task(self._pump_stdout(), name=f"{self.name}-stdout"),
            asyncio.create_task(self._pump_stderr(), name=f"{self.name}-stderr"),
        ]
        self._rearm()

    # --- commands ---

    def write(self, line: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            proc.stdin.write(line)
        self._rearm()

    def call(self, items: list[Any], timeout_s: float | None) -> int:
        call_id, line = self.session.call(self._loop.time(), items, timeout_s)
        self.write(line)
        return call_id

    def shutdown(self) -> None:
        line = self.session.shutdown(self._loop.time())
        if line is not None:
            self.write(line)
            self._rearm()

    async def stop(self) -> None:
        """Kill now (calls in flight are lost), and wait until everything it started is gone."""
        self._deliver(self.session.kill("worker stopped"))
        await self.kill()

    async def kill(self) -> None:
        """Kill the worker and everything it started; returns once its exit is collected."""
        self._signal_group()
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        if self._proc is not None:
            await self._exited.wait()
        for task in self._tasks:
            if not task.done():
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._sweep()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- pumps ---

    async def _pump_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            data = await stdout.read(READ_CHUNK_BYTES)
            if not data:
                break
            self._deliver(self.session.receive(self._loop.time(), data))
        await self._await_exit(EXIT_AFTER_EOF_S)
        self._deliver(self.session.eof(self._loop.time()))
        await self._await_exit(None)

    async def _await_exit(self, timeout_s: float | None) -> None:
        assert self._proc is not None
        if self.returncode is not None:
            return
        try:
            returncode = await asyncio.wait_for(self._proc.wait(), timeout_s)
        except TimeoutError:
            return
        self.returncode = returncode
        self._deliver(self.session.exited(self._loop.time(), returncode))
        self._exited.set()
        # Anything the worker left behind (a daemonised grandchild) goes with it.
        self._signal_group()

    async def _pump_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        stderr = self._proc.stderr
        partial = b""
        cap = self._stderr_line_chars_max * 4
        while True:
            data = await stderr.read(READ_CHUNK_BYTES)
            if not data:
                break
            lines = (partial + data).split(b"\n")
            partial = lines.pop()[:cap]
            for raw in lines:
                self._keep_stderr(raw)
        if partial:
            self._keep_stderr(partial)

    def _keep_stderr(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")[: self._stderr_line_chars_max]
        self.stderr_tail.append(text)
        log.debug("%s stderr: %s", self.name, text)

    # --- session plumbing ---

    def _deliver(self, outputs: list[Output]) -> None:
        if not outputs:
            return
        for output in outputs:
            if isinstance(output, Kill):
                log.info("killing worker %s: %s", self.name, output.reason)
                self._signal_group()
                if self._proc is not None and self.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        self._proc.kill()
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

    def _signal_group(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    async def _sweep(self) -> None:
        """Kill every process left running as the worker's own uid (plain mode as root)."""
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
                "-s",
                "KILL",
                "--",
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
