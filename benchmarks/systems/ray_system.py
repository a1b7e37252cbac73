"""Ray as a benchmarked system: a local instance started by the harness (its driver), with
``num_cpus`` = the number of workers, plain tasks (no ``ray.data``), on loopback.

Ray's calls block, so each measure runs in a thread (``asyncio.to_thread``) and every
``ray.get``/``ray.wait`` has a timeout (long ones wait in slices and give up when the run stops):
the harness's event loop stays free and nothing waits for ever. Rule: Ray is optional; without
it the harness prints a note and carries on.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import time
from typing import Any

from . import procs
from .base import Rows, System, round_trip_row, timed_script, wait_until
from .work import check_doubled, chunks, double, double_chunk

WAIT_S = 60.0

COLD_START = """
import json, os, sys, time
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
import ray
started = time.perf_counter()
ray.init(address="local", num_cpus=int(sys.argv[1]), include_dashboard=False,
         log_to_driver=False, _node_ip_address="127.0.0.1")
@ray.remote
def double(item):
    return item * 2
assert ray.get(double.remote(21), timeout=120) == 42
print(json.dumps({"init_to_first_task_s": time.perf_counter() - started}), flush=True)
ray.shutdown()
"""


def version() -> str | None:
    """The installed version, or None when ray cannot be imported here."""
    if importlib.util.find_spec("ray") is None:
        return None
    return importlib.metadata.version("ray")


class RaySystem(System):
    name = "ray"

    async def start(self) -> None:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
        before = procs.children(os.getpid())
        ray.init(
            address="local",  # a fresh local instance, never one found on the machine
            num_cpus=self.sizes.workers,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
        self.roots = procs.children(os.getpid()) - before  # Ray's processes hang below these
        self.ray: Any = ray
        self.one = ray.remote(double)
        self.chunk = ray.remote(double_chunk)

    def _get_all(self, refs: list[Any], timeout_s: float = WAIT_S) -> list[Any]:
        """Every result, waited for in slices so that a stopping run does not wait for Ray."""

        def ready(slice_s: float) -> bool:
            return not self.ray.wait(refs, num_returns=len(refs), timeout=slice_s)[1]

        wait_until(ready, timeout_s, self.stopping)
        return list(self.ray.get(refs))

    async def warm_up(self) -> None:
        def run() -> None:
            workers = self.sizes.workers
            self._get_all([self.one.remote(n) for n in range(200 * workers)])
            self._get_all([self.chunk.remote([n]) for n in range(20 * workers)])

        await asyncio.to_thread(run)

    async def stop(self) -> None:
        if hasattr(self, "ray"):
            self.ray.shutdown()

    def notes(self) -> dict[str, str]:
        return {
            "ray": f"{version()}, ray.init(num_cpus={self.sizes.workers}, "
            "include_dashboard=False, log_to_driver=False), plain tasks"
        }

    async def items(self) -> Rows:
        count = self.sizes.items

        def run() -> float:
            started = time.perf_counter()
            refs = [self.chunk.remote(part) for part in chunks(count)]
            values = [value for part in self._get_all(refs, WAIT_S * 10) for value in part]
            elapsed = time.perf_counter() - started
            check_doubled(values, count)
            return count / elapsed

        return {"ray": {"items_per_s": await asyncio.to_thread(run)}}

    async def tiny(self) -> Rows:
        """A window of ``tiny_callers`` tasks kept full with ``ray.wait``."""

        def run() -> float:
            ray = self.ray
            done = 0
            stop_at = time.monotonic() + self.sizes.tiny_s
            started = time.monotonic()
            pending = [self.one.remote(n) for n in range(self.sizes.tiny_callers)]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=WAIT_S)
                if not ready:
                    raise TimeoutError(f"no Ray task finished within {WAIT_S:.0f}s")
                ray.get(ready, timeout=WAIT_S)
                done += 1
                if time.monotonic() < stop_at and not self.stopping.is_set():
                    pending.append(self.one.remote(done))
            return done / (time.monotonic() - started)

        return {"ray": {"jobs_per_s": await asyncio.to_thread(run)}}

    async def round_trip(self) -> Rows:
        def run() -> dict[str, float]:
            samples = []
            for number in range(self.sizes.round_trips):
                started = time.perf_counter()
                value = self.ray.get(self.one.remote(number), timeout=WAIT_S)
                samples.append(time.perf_counter() - started)
                if value != 2 * number:
                    raise AssertionError(f"task for {number} answered {value}")
            return round_trip_row(samples)

        return {"ray": await asyncio.to_thread(run)}

    async def cold_start(self) -> Rows:
        return {"ray": await timed_script(COLD_START, [str(self.sizes.workers)], 180)}

    async def memory(self) -> Rows:
        used = procs.memory_of(procs.descendants(self.roots))
        return {"ray": {"rss_mb": used.rss_mb, "pss_mb": used.pss_mb, "processes": used.processes}}
