"""What every measured system offers the harness, and the sizes of the work it gets.

A system is started once, warmed up (every worker process running, every function shipped),
then asked for one measure at a time, in turn with the others; ``stop`` ends every process it
started, whatever state it is in. A measure returns rows (``{"ray": {"p50_ms": 1.2, ...}}``:
one system may give several, e.g. disruptor's bundle and snippet jobs), or ``None`` when the
system does not take part in it. Rule: only the timed part is inside the clock; checking the
answers and tidying up come after it.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import procs

Rows = dict[str, dict[str, float]]
WAIT_SLICE_S = 0.25


class Stopped(Exception):
    """The run is being stopped (Ctrl-C, SIGTERM): a blocking wait gave up early."""


def wait_until(ready: Callable[[float], bool], timeout_s: float, stopping: threading.Event) -> None:
    """Call ``ready(slice_s)`` (which may block that long) until it says yes; give up when the
    run is stopping or after ``timeout_s``. For the blocking waits of Ray and the process pool,
    which run in threads the event loop cannot cancel."""
    deadline = time.monotonic() + timeout_s
    while not ready(WAIT_SLICE_S):
        if stopping.is_set():
            raise Stopped("the run is stopping")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout_s:.0f}s")


@dataclass(frozen=True)
class Sizes:
    workers: int  # worker processes per system (per peer for disruptor)
    items: int  # items in the one big job
    tiny_callers: int  # one-item jobs in flight at once
    tiny_s: float  # how long each system gets for its tiny jobs
    round_trips: int  # sequential one-item round trips per system
    deploy_bytes: int  # incompressible payload of the deployed bundle
    loop_items: int  # items of the tight-loop job

    @classmethod
    def choose(cls, quick: bool, workers: int) -> Sizes:
        if quick:
            return cls(workers, 100_000, 64, 3.0, 100, 5 * 2**20, 20_000)
        return cls(workers, 1_000_000, 64, 10.0, 300, 50 * 2**20, 100_000)


def round_trip_row(samples_s: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds (the nearest-rank percentile)."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {"p50_ms": statistics.median(ordered) * 1e3, "p99_ms": p99 * 1e3}


async def timed_script(script: str, args: list[str], timeout_s: float) -> dict[str, float]:
    """Run ``python -c script args`` (a cold start), which prints one JSON line when ready:
    that line plus ``spawn_to_ready_s``, the time from spawning it to reading the line. The
    process is then left to shut down (bounded) and killed with its tree if it does not."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(_json_line(proc), timeout_s)
        elapsed = time.perf_counter() - started
        answer: dict[str, float] = json.loads(line)
        await asyncio.wait_for(proc.communicate(), timeout_s)
    finally:
        if proc.returncode is None:
            procs.kill_pids(procs.descendants([proc.pid]))
            await proc.wait()
    return {**answer, "spawn_to_ready_s": elapsed}


async def _json_line(proc: asyncio.subprocess.Process) -> bytes:
    """The first stdout line that is a JSON object (libraries may print before it)."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        if line.startswith(b"{"):
            return line
    raise RuntimeError(f"the cold-start script exited with {await proc.wait()} before it was ready")


class System:
    """The default: takes part in nothing. Subclasses override what they measure."""

    name = "?"

    def __init__(
        self, sizes: Sizes, scratch: Path, measures: frozenset[str], stopping: threading.Event
    ) -> None:
        self.sizes = sizes
        self.stopping = stopping  # set when the run is asked to stop
        self.scratch = scratch / self.name
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.measures = measures  # the measures this run asks for: start only what they need

    async def start(self) -> None:
        pass

    async def warm_up(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def notes(self) -> dict[str, str]:
        """Facts for the report: versions, configuration, event loop."""
        return {}

    async def items(self) -> Rows | None:
        return None

    async def tiny(self) -> Rows | None:
        return None

    async def round_trip(self) -> Rows | None:
        return None

    async def cold_start(self) -> Rows | None:
        return None

    async def memory(self) -> Rows | None:
        return None

    async def deploy(self) -> Rows | None:
        return None

    async def loop(self) -> Rows | None:
        return None
