"""What the automatic task size costs: a job cut the old way against the same job cut the new way.

A job's tasks are the pieces its progress moves by. The peers used to cut a job into about four
tasks per peer (a job of 240 items on one peer: four tasks of 60, its progress stuck at a quarter
for seconds); now into at least ``TASKS_PER_JOB_MIN`` tasks (240 items: 30 tasks of 8). More
tasks cost more round trips; this measures how much, on real peers, for the job sizes the change
touches (from ``TASKS_PER_JOB_MIN`` to ``CHUNK_MAX * TASKS_PER_JOB_MIN`` items), on one peer and
on three. Both sizes are sent as the job's ``chunk_size``, interleaved old, new, old, new... in one
run, so load from the rest of the machine falls on both alike. Printed: per case the min and
median seconds of each, the min and median of the per-repetition ratio new / old, and the load
average at the start and the end.

    .venv/bin/python benchmarks/bench_task_size.py            # 5 repetitions, about 2 minutes
    .venv/bin/python benchmarks/bench_task_size.py --reps 9

Rule: every wait is bounded and the peers are stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from systems.disruptor_peers import Cluster  # noqa: E402

from disruptor.jobs.dispatcher import CHUNK_MAX, TASKS_PER_PEER, chunk_size_for  # noqa: E402

DOUBLE = "def handle(item):\n    return item * 2\n"
# About 2 ms an item in the sandbox: a job of a few hundred items lasts about a second.
BUSY = "def handle(item):\n    t = 0\n    for i in range(item):\n        t += i % 7\n    return t\n"
BUSY_LOOPS = 60_000
CASES = [("double", DOUBLE, 2_000), ("double", DOUBLE, 10_000), ("double", DOUBLE, 30_000)]
CASES += [("busy", BUSY, 240)]
JOB_TIMEOUT_S = 300.0


def old_size(total: int, peers: int) -> int:
    """The automatic task size before the change: about four tasks per peer."""
    return max(1, min(CHUNK_MAX, math.ceil(total / max(1, peers * TASKS_PER_PEER))))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def measure(cluster: Cluster, reps: int) -> None:
    peers = cluster.size
    async with cluster.open_client() as client:
        await client.map(DOUBLE, range(100))  # warm: hosts started, snippet checked
        await client.map(BUSY, [BUSY_LOOPS] * 10)
        for name, source, total in CASES:
            items = [BUSY_LOOPS] * total if name == "busy" else list(range(total))
            sizes = {"old": old_size(total, peers), "new": chunk_size_for(total, peers)}
            times: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(reps):
                for which, size in sizes.items():
                    started = time.perf_counter()
                    job = client.map(source, items, chunk_size=size)
                    await asyncio.wait_for(job, JOB_TIMEOUT_S)
                    times[which].append(time.perf_counter() - started)
            ratios = [new / old for old, new in zip(times["old"], times["new"], strict=True)]
            tasks = {w: math.ceil(total / s) for w, s in sizes.items()}
            print(
                f"{peers} peer(s), {name} x {total:>6}: "
                f"old {tasks['old']:>3} tasks {min(times['old']):.3f} / "
                f"{statistics.median(times['old']):.3f} s; "
                f"new {tasks['new']:>3} tasks {min(times['new']):.3f} / "
                f"{statistics.median(times['new']):.3f} s; "
                f"new/old {min(ratios):.2f} / {statistics.median(ratios):.2f}"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {load()}")
    with tempfile.TemporaryDirectory(prefix="disruptor-bench-") as tmp:
        for size in (1, 3):
            cluster = Cluster(Path(tmp), f"peers{size}", size, {"snippets.hosts_max": 2})
            try:
                await cluster.start()
                await measure(cluster, args.reps)
            finally:
                await cluster.stop()
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    asyncio.run(main())
