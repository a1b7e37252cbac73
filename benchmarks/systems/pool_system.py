"""``multiprocessing.Pool`` as the baseline: N worker processes started with ``spawn`` (fork is
unsafe in a process that runs Ray's threads), the same functions as the other systems.

Its calls block, so each measure runs in a thread, and every wait has a timeout and gives up
when the run stops.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.pool
import time
from collections import deque
from typing import TypeVar

from .base import Rows, System, round_trip_row, wait_until
from .work import CHUNK_ITEMS, check_doubled, double, ignore_interrupts

WAIT_S = 60.0
T = TypeVar("T")


class PoolSystem(System):
    name = "pool"

    def _get(self, result: multiprocessing.pool.AsyncResult[T], timeout_s: float = WAIT_S) -> T:
        """The result, waited for in slices: ``terminate`` never wakes a waiting ``get``."""

        def ready(slice_s: float) -> bool:
            result.wait(slice_s)
            return result.ready()

        wait_until(ready, timeout_s, self.stopping)
        return result.get(0)

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pool: multiprocessing.pool.Pool = context.Pool(
            self.sizes.workers, initializer=ignore_interrupts
        )

    async def warm_up(self) -> None:
        def run() -> None:
            # More items than workers, one per task: every worker process has started and run.
            self._get(self.pool.map_async(double, range(100 * self.sizes.workers), chunksize=1))

        await asyncio.to_thread(run)

    async def stop(self) -> None:
        if hasattr(self, "pool"):
            self.pool.terminate()
            await asyncio.to_thread(self.pool.join)

    def notes(self) -> dict[str, str]:
        return {
            "pool": f"multiprocessing.Pool({self.sizes.workers}), spawn, "
            f"map chunksize={CHUNK_ITEMS}, apply_async"
        }

    async def items(self) -> Rows:
        count = self.sizes.items

        def run() -> float:
            started = time.perf_counter()
            result = self.pool.map_async(double, range(count), chunksize=CHUNK_ITEMS)
            values = self._get(result, WAIT_S * 10)
            elapsed = time.perf_counter() - started
            check_doubled(values, count)
            return count / elapsed

        return {"pool": {"items_per_s": await asyncio.to_thread(run)}}

    async def tiny(self) -> Rows:
        """A window of ``tiny_callers`` ``apply_async`` calls, the oldest awaited first."""

        def run() -> float:
            done = 0
            stop_at = time.monotonic() + self.sizes.tiny_s
            started = time.monotonic()
            window = deque(
                (n, self.pool.apply_async(double, (n,))) for n in range(self.sizes.tiny_callers)
            )
            while window:
                number, result = window.popleft()
                if self._get(result) != 2 * number:
                    raise AssertionError(f"call for {number} answered wrong")
                done += 1
                if time.monotonic() < stop_at and not self.stopping.is_set():
                    window.append((done, self.pool.apply_async(double, (done,))))
            return done / (time.monotonic() - started)

        return {"pool": {"jobs_per_s": await asyncio.to_thread(run)}}

    async def round_trip(self) -> Rows:
        def run() -> dict[str, float]:
            samples = []
            for number in range(self.sizes.round_trips):
                started = time.perf_counter()
                value = self._get(self.pool.apply_async(double, (number,)))
                samples.append(time.perf_counter() - started)
                if value != 2 * number:
                    raise AssertionError(f"call for {number} answered {value}")
            return round_trip_row(samples)

        return {"pool": await asyncio.to_thread(run)}
