"""The worker pool's bookkeeping as data: bundle sources, stats, and the records of the
requests, workers and bundles it tracks.

Rule: plain records with no behaviour beyond what they can tell about themselves; the pool
(``pool.py`` and the modules it delegates to: ``batching``, ``launch``, ``supervisor``) is the
only code that changes them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..bundles.manifest import AppManifest
from ..chunks import Chunk, ChunkResult
from ..errors import NotFound
from .isolation import UidClaim
from .process import WorkerProcess
from .restarts import CrashHistory
from .scratch import ScratchWatch
from .session import Death, State


class BundleSource(Protocol):
    """Where the pool finds a bundle's unpacked directory (the peer's bundle store)."""

    async def unpack(self, sha1: str) -> Path: ...


class DirectorySource:
    """Bundles that are plain directories, by name: for tests and for running without a store."""

    def __init__(self, directories: dict[str, Path] | None = None) -> None:
        self.directories = dict(directories or {})

    async def unpack(self, sha1: str) -> Path:
        try:
            return self.directories[sha1]
        except KeyError:
            raise NotFound(f"no bundle {sha1} on this peer") from None


@dataclass
class PoolStats:
    workers_running: int = 0
    workers_started: int = 0
    restarts: int = 0
    crashes: int = 0
    timeouts: int = 0
    protocol_errors: int = 0
    calls_done: int = 0
    tasks_done: int = 0  # items answered by a worker (value or the handler's error)
    tasks_failed: int = 0  # items that ended in an error of any kind
    queue_items: int = 0
    bundles_failed: int = field(default=0, metadata={"metric": "gauge"})
    overloaded_refusals: int = 0
    chunks_done: int = 0  # chunks answered by a worker
    chunks_batched: int = 0  # chunks that shared a call with the one before them
    chunks_split: int = 0  # chunks cut to spread over idle workers or to fit in one frame
    workers_v2: int = field(default=0, metadata={"metric": "gauge"})  # speaking version 2


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    bundle: str
    name: str
    pid: int | None
    state: str
    tasks_done: int
    restarts: int
    uptime_s: float
    isolation: str
    uid: int | None
    protocol: int = 1  # the worker protocol version it speaks

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Task:
    """One chunk waiting for its result: all or part of what one ``run_chunk`` was given."""

    chunk: Chunk
    timeout_s: float
    future: asyncio.Future[ChunkResult]
    attempts: int = 0

    @property
    def count(self) -> int:
        return self.chunk.count


@dataclass
class WorkerSlot:
    id: str
    group: BundleGroup
    proc: WorkerProcess | None = None
    claim: UidClaim | None = None
    scratch: Path | None = None  # plain mode; under bubblewrap the scratch is inside the sandbox
    scratch_watch: ScratchWatch | None = None
    started_at: float = 0.0
    restarts: int = 0
    tasks_done: int = 0
    # Each call carries one or more waiting tasks' chunks, as its parts, in order.
    calls: dict[int, list[Task]] = field(default_factory=dict)
    lost: list[tuple[Task, Death]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    restart_timer: asyncio.TimerHandle | None = None
    # Set at its first unexpected death, with what it said: a start waits on it.
    died: asyncio.Event = field(default_factory=asyncio.Event)
    last_words: str = ""

    @property
    def spare(self) -> int:
        return self.proc.session.spare if self.proc is not None else 0

    @property
    def starting(self) -> bool:
        """Its process runs but has not said ready yet."""
        return self.proc is not None and self.proc.session.state is State.STARTING


@dataclass
class BundleGroup:
    sha1: str
    manifest: AppManifest
    root: Path
    crashes: CrashHistory
    workers: list[WorkerSlot] = field(default_factory=list)
    queue: deque[Task] = field(default_factory=deque)
    queued_items: int = 0
    failed: str | None = None
    next_index: int = 0
