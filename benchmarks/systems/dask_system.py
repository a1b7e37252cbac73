"""Dask as a benchmarked system: a ``dask scheduler`` process and ``dask worker --nworkers N
--nthreads 1`` (nannies and their worker processes) on loopback, driven by one asynchronous
client on the harness's event loop.

The scheduler runs in its own process, not inside the harness as ``LocalCluster`` would put it,
so its work and memory are counted as Dask's own, as a peer's are disruptor's. The cold start
still times a ``LocalCluster`` (the usual way to start Dask on one machine) in a fresh process.
Rule: Dask is optional; without it the harness prints a note and carries on.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import procs
from .base import Rows, System, round_trip_row, timed_script
from .work import check_doubled, chunks, double, double_chunk

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
WAIT_S = 60.0
BENCHMARKS = Path(__file__).resolve().parents[1]  # where ``systems.work`` is importable from

COLD_START = """
import json, sys, time
from dask.distributed import Client, LocalCluster
def double(item):
    return item * 2
if __name__ == "__main__":
    started = time.perf_counter()
    cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    client = Client(cluster)
    assert client.submit(double, 21).result(timeout=120) == 42
    print(json.dumps({"init_to_first_task_s": time.perf_counter() - started}), flush=True)
    client.close()
    cluster.close()
"""


def version() -> str | None:
    """The installed version, or None when distributed cannot be imported here."""
    if importlib.util.find_spec("distributed") is None:
        return None
    return importlib.metadata.version("distributed")


class DaskSystem(System):
    name = "dask"

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        path = os.pathsep.join(filter(None, [str(BENCHMARKS), os.environ.get("PYTHONPATH")]))
        with (self.scratch / f"{args[0]}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "dask", *args],
                env={**os.environ, "PYTHONPATH": path},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start(self) -> None:
        from dask.distributed import Client

        scheduler_file = self.scratch / "scheduler.json"
        common = ["--host", "127.0.0.1", "--no-dashboard", "--scheduler-file", str(scheduler_file)]
        self.procs = [self._spawn("scheduler", "--port", "0", *common)]
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.exists():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                raise RuntimeError(f"the Dask scheduler did not start: see {self.scratch}")
            await asyncio.sleep(0.05)
        workers = str(self.sizes.workers)
        self.procs.append(
            self._spawn(
                "worker", *common, "--nworkers", workers, "--nthreads", "1",
                "--local-directory", str(self.scratch / "workers"),
            )
        )  # fmt: skip
        connect: Any = Client  # untyped
        self.client: Any = await asyncio.wait_for(
            connect(scheduler_file=str(scheduler_file), asynchronous=True), START_TIMEOUT_S
        )
        await self.client.wait_for_workers(self.sizes.workers, timeout=START_TIMEOUT_S)

    async def warm_up(self) -> None:
        client = self.client
        workers = self.sizes.workers
        await client.gather(client.map(double, range(200 * workers), pure=False))
        singles = [[n] for n in range(20 * workers)]
        await client.gather(client.map(double_chunk, singles, pure=False))

    async def stop(self) -> None:
        if hasattr(self, "client"):
            await asyncio.wait_for(self.client.close(), STOP_TIMEOUT_S)
        for proc in reversed(getattr(self, "procs", [])):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in getattr(self, "procs", []):
            await asyncio.to_thread(procs.wait_or_kill, proc, deadline - time.monotonic())

    def notes(self) -> dict[str, str]:
        return {
            "dask": f"distributed {version()}, a scheduler process and dask worker "
            f"--nworkers {self.sizes.workers} --nthreads 1, asynchronous client, pure=False"
        }

    async def items(self) -> Rows:
        count = self.sizes.items
        started = time.perf_counter()
        futures = self.client.map(double_chunk, chunks(count), pure=False)
        parts = await asyncio.wait_for(self.client.gather(futures), WAIT_S * 10)
        values = [value for part in parts for value in part]
        elapsed = time.perf_counter() - started
        check_doubled(values, count)
        return {"dask": {"items_per_s": count / elapsed}}

    async def tiny(self) -> Rows:
        """``tiny_callers`` coroutines, each awaiting one task at a time."""
        done = 0
        stop_at = time.monotonic() + self.sizes.tiny_s

        async def caller(number: int) -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                future = self.client.submit(double, number, pure=False)
                value = await asyncio.wait_for(future, WAIT_S)
                if value != 2 * number:
                    raise AssertionError(f"task for {number} answered {value}")
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(caller(n) for n in range(self.sizes.tiny_callers)))
        return {"dask": {"jobs_per_s": done / (time.monotonic() - started)}}

    async def round_trip(self) -> Rows:
        samples = []
        for number in range(self.sizes.round_trips):
            started = time.perf_counter()
            future = self.client.submit(double, number, pure=False)
            value = await asyncio.wait_for(future, WAIT_S)
            samples.append(time.perf_counter() - started)
            if value != 2 * number:
                raise AssertionError(f"task for {number} answered {value}")
        return {"dask": round_trip_row(samples)}

    async def cold_start(self) -> Rows:
        return {"dask": await timed_script(COLD_START, [str(self.sizes.workers)], 180)}

    async def memory(self) -> Rows:
        used = procs.memory_of(procs.descendants(p.pid for p in self.procs))
        return {"dask": {"rss_mb": used.rss_mb, "pss_mb": used.pss_mb, "processes": used.processes}}
