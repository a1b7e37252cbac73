"""Launching one worker's process: its uid claim, scratch and its quota, and isolation plan.

Rule: a worker is launched only from a ``LaunchPlan`` that ``isolation`` built for its bundle and
for the mode this machine supports; this module decides nothing about what the worker may see.
A launch that fails leaves nothing held: no process on the slot, no uid claimed, no directory
descriptor open. Each launch starts from a fresh, empty scratch (a tmpfs inside the sandbox under
bubblewrap, else a directory here, removed when the pool forgets the worker: ``discard_scratch``)
watched against its quota by a ``scratch.ScratchWatch``.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from pathlib import Path

from ..errors import DisruptorError, Unavailable
from . import isolation, scratch
from .isolation import UidClaim
from .model import WorkerSlot
from .process import OutputHandler, WorkerProcess
from .session import Session, SessionTimeouts
from .settings import WorkerSettings


class Launcher:
    """Starts worker processes under ``work_dir``; ``install`` first, once."""

    def __init__(
        self,
        settings: WorkerSettings,
        work_dir: Path,
        rng: random.Random,
        on_output: OutputHandler,
    ) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self._rng = rng
        self._on_output = on_output
        self._runtime: Path | None = None
        self._mode: str | None = None

    @property
    def mode(self) -> str:
        """``"bwrap"`` or ``"plain"``, chosen at first use (it may refuse: bwrap wanted, none)."""
        if self._mode is None:
            self._mode = isolation.choose_mode(self.settings)
        return self._mode

    def install(self) -> None:
        """Lay out ``work_dir`` and copy the Python worker runtime into it."""
        self.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Each worker's scratch is its own 0700 directory in here; the parent only lets them in.
        (self.work_dir / "scratch").mkdir(exist_ok=True, mode=0o711)
        self._runtime = isolation.install_runtime(self.work_dir / "runtime")

    async def launch(self, worker: WorkerSlot) -> WorkerProcess:
        """Start (or restart) the worker's process; on failure, release what it held and raise."""
        worker.ready = asyncio.Event()
        handles: isolation.DirectoryHandles | None = None
        try:
            proc, handles = self._make_process(worker)
            # Known before it runs: its first words (the ready line) may arrive before spawn()
            # returns, and must find their worker.
            worker.proc = proc
            worker.started_at = time.monotonic()
            await proc.spawn()
        except (OSError, DisruptorError):
            worker.proc = None
            release(worker)
            raise
        finally:
            if handles is not None:
                handles.close()  # the worker holds its own copies now
        worker.scratch_watch = self._watch(worker, proc)
        worker.scratch_watch.start()
        return proc

    def _watch(self, worker: WorkerSlot, proc: WorkerProcess) -> scratch.ScratchWatch:
        limit = scratch.scratch_bytes(worker.group.manifest, self.settings)
        if worker.scratch is None:  # bubblewrap: a tmpfs inside the sandbox
            assert proc.pid is not None
            meter = scratch.sandbox_meter(proc.pid, isolation.SANDBOX_SCRATCH)
            cheap = True
        else:
            meter, cheap = scratch.directory_meter(worker.scratch, limit), False
        quota = scratch.ScratchQuota(limit)
        interval = self.settings.scratch_check_interval_s
        return scratch.ScratchWatch(proc, meter, quota, interval, cheap=cheap)

    def _make_process(
        self, worker: WorkerSlot
    ) -> tuple[WorkerProcess, isolation.DirectoryHandles | None]:
        group = worker.group
        mode = self.mode
        if self._runtime is None:
            raise Unavailable("the worker pool is not started")
        root_user = isolation.runs_as_root()
        scratch_bytes = scratch.scratch_bytes(group.manifest, self.settings)
        worker.claim = UidClaim(self.settings, self._rng) if root_user else None
        uid = worker.claim.uid if worker.claim is not None else None
        handles: isolation.DirectoryHandles | None = None
        if mode == "bwrap":
            worker.scratch = None
            plan = isolation.plan_bwrap(
                group.manifest,
                self.settings,
                bundle_dir=group.root,
                scratch_bytes=scratch_bytes,
                runtime=self._runtime,
                uid=uid,
            )
        else:
            worker.scratch = isolation.prepare_scratch(self.work_dir / "scratch" / worker.id, uid)
            if root_user:
                # Its uid cannot walk the 0700 data directory: hand it these directories alone.
                dirs = [group.root, worker.scratch, self._runtime.parent]
                handles = isolation.DirectoryHandles(dirs)
            try:
                plan = isolation.plan_plain(
                    group.manifest,
                    self.settings,
                    bundle_dir=group.root,
                    scratch_dir=worker.scratch,
                    runtime=self._runtime,
                    uid=uid,
                    handles=handles,
                )
            except DisruptorError:
                if handles is not None:
                    handles.close()
                raise
        loop = asyncio.get_running_loop()
        session = Session(
            concurrency=group.manifest.worker.concurrency,
            started_at=loop.time(),
            timeouts=SessionTimeouts(self.settings.ready_timeout_s, self.settings.drain_timeout_s),
            line_bytes_max=self.settings.line_bytes_max,
            frame_bytes_max=self.settings.frame_bytes_max,
            protocol_max=self.settings.protocol_max,
        )
        proc = WorkerProcess(
            worker.id,
            plan,
            session,
            self._on_output,
            stderr_lines_kept=self.settings.stderr_lines_kept,
            stderr_line_chars_max=self.settings.stderr_line_chars_max,
        )
        return proc, handles


def release(worker: WorkerSlot) -> None:
    """Give back the worker's uid and stop watching its scratch (its process is gone, or never
    started)."""
    if worker.scratch_watch is not None:
        worker.scratch_watch.close()
        worker.scratch_watch = None
    if worker.claim is not None:
        worker.claim.release()
        worker.claim = None


def discard_scratch(worker: WorkerSlot) -> None:
    """Remove the worker's scratch directory, whatever it left there."""
    if worker.scratch is not None:
        shutil.rmtree(worker.scratch, ignore_errors=True)
