"""A worker's scratch quota: how big its scratch may grow, how it is measured, and what happens
when it is full.

The size comes from the bundle's manifest (``[limits] scratch_mb``) or the peer's default, and
may not exceed ``workers.scratch_mb_max``. Under bubblewrap the scratch is a tmpfs of exactly that
size inside the sandbox, so writes past it fail; the peer reads how full it is through the
sandbox's root (``/proc/<pid>/root``). In plain mode it is a directory on the peer's disk that the
peer measures (a walk that stops as soon as the quota is exceeded, charging every entry at least
a block, so a flood of empty files counts too). Either way a ``ScratchWatch`` looks every
``scratch_check_interval_s``: a worker whose scratch is full is killed, its calls fail with
``scratch-full`` (not retried: they would fill the next one too), and it restarts with a fresh,
empty scratch. An item that fails while the scratch is full is reported as ``scratch-full`` too,
whatever error the worker gave it (``full_now``).

Rule: ``ScratchQuota`` and ``scratch_bytes`` decide; the meters and the watch only measure and
act on the decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bundles.manifest import AppManifest
from ..errors import Unprocessable
from .process import WorkerProcess
from .session import DeathKind, State
from .settings import WorkerSettings

log = logging.getLogger("disruptor.workers")

MIB = 1024 * 1024
# What every entry of a scratch directory costs at least: a file system block. It bounds both a
# flood of empty files (inodes are disk too) and the length of the walk that measures them.
ENTRY_BYTES_MIN = 4096

# Measures a scratch: (bytes used, bytes it may hold), or None when it cannot be measured now.
Meter = Callable[[], "tuple[int, int] | None"]


def scratch_bytes(manifest: AppManifest, settings: WorkerSettings) -> int:
    """The scratch size a bundle's workers get here; ``Unprocessable`` past the peer's maximum."""
    asked = manifest.limits.scratch_mb
    mb = settings.scratch_mb_default if asked is None else asked
    if mb > settings.scratch_mb_max:
        raise Unprocessable(
            f"bundle {manifest.name} asks for {mb} MiB of scratch; this peer allows at most "
            f"{settings.scratch_mb_max} MiB (workers.scratch_mb_max)"
        )
    return mb * MIB


@dataclass(frozen=True)
class ScratchQuota:
    limit_bytes: int

    def full(self, used_bytes: int, capacity_bytes: int) -> bool:
        """Full: at the quota, or at what the file system holding it can take."""
        return used_bytes >= min(self.limit_bytes, capacity_bytes)


def directory_meter(path: Path, limit_bytes: int) -> Meter:
    """Plain mode: the directory's usage, counted until it passes ``limit_bytes``."""

    def measure() -> tuple[int, int] | None:
        used = 0
        pending = [str(path)]
        while pending and used <= limit_bytes:
            directory = pending.pop()
            try:
                entries = os.scandir(directory)
            except FileNotFoundError:
                continue
            except PermissionError:
                # The worker shut its own directory; open it again (the peer owns the tree, or
                # is root) and count it on the next look.
                os.chmod(directory, stat.S_IRWXU)
                used += ENTRY_BYTES_MIN
                continue
            with entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    used += max(st.st_blocks * 512, ENTRY_BYTES_MIN)
                    if stat.S_ISDIR(st.st_mode):
                        pending.append(entry.path)
                    if used > limit_bytes:
                        break
        return used, limit_bytes

    return measure


def sandbox_meter(bwrap_pid: int, inside: str) -> Meter:
    """Bubblewrap mode: the tmpfs at ``inside`` as the sandbox's first process sees it."""

    def measure() -> tuple[int, int] | None:
        try:
            with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as f:
                children = f.read().split()
            if not children:
                return None
            st = os.statvfs(f"/proc/{children[0]}/root{inside}")
        except (OSError, ValueError):
            return None  # not started yet, already gone, or not ours to read
        # Inodes cost kernel memory the tmpfs size does not count: charge each a block, as the
        # directory walk does.
        used = (st.f_blocks - st.f_bfree) * st.f_frsize + (
            st.f_files - st.f_ffree
        ) * ENTRY_BYTES_MIN
        return used, st.f_blocks * st.f_frsize

    return measure


class ScratchWatch:
    """Looks at one worker's scratch every interval; kills the worker when it is full."""

    def __init__(
        self,
        proc: WorkerProcess,
        meter: Meter,
        quota: ScratchQuota,
        interval_s: float,
        *,
        cheap: bool,
    ) -> None:
        self._proc = proc
        self._meter = meter
        self.quota = quota
        self._interval_s = interval_s
        self._cheap = cheap  # a statvfs may run on the loop; a directory walk goes to a thread
        self._task: asyncio.Task[None] | None = None
        self.tripped = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"scratch-{self._proc.name}")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def full_now(self) -> bool:
        """Whether the scratch is full at this moment (False when it cannot be told cheaply)."""
        if self.tripped:
            return True
        if not self._cheap:
            return False
        reading = self._meter()
        return reading is not None and self.quota.full(*reading)

    def trip(self, why: str) -> None:
        """Stop the worker: its scratch is full."""
        if self.tripped:
            return
        self.tripped = True
        limit_mb = self.quota.limit_bytes / MIB
        reason = f"its scratch reached its limit of {limit_mb:g} MiB ({why}); it was stopped"
        log.warning("worker %s: %s", self._proc.name, reason)
        self._proc.stop_for(DeathKind.SCRATCH_FULL, reason)

    async def _run(self) -> None:
        while self._proc.session.state is not State.DEAD and not self.tripped:
            await asyncio.sleep(self._interval_s)  # the watch's own period
            if self._cheap:
                reading = self._meter()
            else:
                reading = await asyncio.to_thread(self._meter)
            if reading is not None and self.quota.full(*reading):
                self.trip(f"{reading[0]} bytes used")
