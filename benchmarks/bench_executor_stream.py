"""When ``Executor.map``'s first result arrives, against waiting for the whole job.

``disruptor.Executor.map`` yields each result as soon as it and those before it have arrived.
This measures, on two real peers, the time from the call to the first result and to the last,
against the same job run by ``Client.map`` (which answers once, with every value): the ratio
first result / whole job says how much sooner a caller can start on the results. Interleaved
(streamed, whole, streamed, whole...) in one run, so load falls on both alike; printed per
measure the min and median over the repetitions, the min and median of the per-repetition
ratios, and the load average at the start and the end.

    .venv/bin/python benchmarks/bench_executor_stream.py            # 5 repetitions, under a minute
    .venv/bin/python benchmarks/bench_executor_stream.py --reps 9 --items 40

Rule: every wait is bounded and the peers are stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from systems.disruptor_peers import Cluster  # noqa: E402

import disruptor  # noqa: E402

# About 80 ms an item in the sandbox.
SLOW = """
def handle(item):
    t = 0
    for i in range(3_000_000):
        t += i % 7
    return item
"""
WAIT_S = 300.0


def streamed(addresses: list[str], items: int) -> tuple[float, float]:
    """Seconds to the first and to the last result of ``Executor.map``."""
    with disruptor.Executor(addresses) as pool:
        started = time.perf_counter()
        first = last = 0.0
        for n, _ in enumerate(pool.map(SLOW, range(items), timeout=WAIT_S)):
            last = time.perf_counter() - started
            if n == 0:
                first = last
    return first, last


def whole(addresses: list[str], items: int) -> float:
    """Seconds until ``Client.map`` gives every value."""
    with disruptor.Client(addresses) as client:
        started = time.perf_counter()
        client.map(SLOW, range(items))
        return time.perf_counter() - started


def report(name: str, values: list[float]) -> str:
    return f"{name} {min(values):.3f} / {statistics.median(values):.3f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--items", type=int, default=10)
    args = parser.parse_args()
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="disruptor-bench-") as tmp:
        cluster = Cluster(Path(tmp), "pair", 2, {"snippets.hosts_max": 2})
        try:
            await cluster.start()
            os.environ["DISRUPTOR_HOME"] = str(cluster.home.root)
            addresses = cluster.addresses
            await asyncio.to_thread(whole, addresses, 4)  # warm: hosts started, snippet checked
            firsts, lasts, wholes = [], [], []
            for _ in range(args.reps):
                first, last = await asyncio.to_thread(streamed, addresses, args.items)
                firsts.append(first)
                lasts.append(last)
                wholes.append(await asyncio.to_thread(whole, addresses, args.items))
        finally:
            await cluster.stop()
    ratios = [f / w for f, w in zip(firsts, wholes, strict=True)]
    print(
        f"{args.items} items on 2 peers, seconds min / median: {report('first result', firsts)}; "
        f"{report('last result', lasts)}; {report('Client.map, whole job', wholes)}"
    )
    print(f"first result / whole job: {min(ratios):.2f} / {statistics.median(ratios):.2f}")
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())
