"""Job costs on a local cluster of peer processes: tiny jobs per second, a million items, round
trips local and forwarded, and deploying a 50 MB bundle to 3 and 6 peers.

Run: ``.venv/bin/python benchmarks/bench_jobs.py [--quick]`` (a few minutes; ``--quick`` cuts the
sizes). Where Ray or Dask are importable (``pip install '.[bench]'``) the same tiny-job and
many-item workloads run on them in the same run, after the peers have stopped, with the same number
of worker processes (one per peer: 3), on loopback only, and the ratios are printed:

- tiny jobs: one item each, ``item * 2``, with 1 and 64 jobs in flight for the same number of
  seconds (Ray: a window of tasks kept full with ``ray.wait``; Dask: coroutines on an asynchronous
  client, each awaiting one future at a time, as the disruptor clients do);
- many items: the same ``item * 2`` over ``range(N)`` in tasks of 1,000 items (the chunk the
  disruptor dispatcher uses at this size), results flattened into one list in item order.

Each framework is warmed up first (every worker process started, the functions shipped); the
warm-up is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disruptor.cli.demo_cmd import LocalCluster
from disruptor.client import AsyncClient, Client
from disruptor.home import Home

TINY = "def handle(item):\n    return item\n"
DOUBLE = "def handle(item):\n    return item * 2\n"
HANDLER = "def handle(item):\n    return item * 2\n"
CHUNK = 1000  # items per Ray/Dask task: the disruptor dispatcher's chunk for a million items
IN_FLIGHT = (1, 64)  # tiny jobs in flight at once (clients), for disruptor, Ray and Dask alike


def double(item: int) -> int:
    return item * 2


def double_chunk(items: list[int]) -> list[int]:
    return [item * 2 for item in items]


def write_bundle(root: Path, name: str, payload_bytes: int = 0, workers: int = 1) -> Path:
    app = root / name
    app.mkdir(parents=True)
    (app / "bundle.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\n\n[worker]\nhandler = "tiny:handle"\n'
        f"count = {workers}\n"
    )
    (app / "tiny.py").write_text(HANDLER)
    if payload_bytes:
        # Random bytes do not compress: the bundle really is this large on the wire.
        (app / "payload.bin").write_bytes(random.randbytes(payload_bytes))
    return app


def wait_members(client: Client, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(client.request_json("GET", "/jobs")["peers"]) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"the peers did not see {count} members within {timeout_s}s")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def tiny_jobs_per_s(
    addresses: list[str], home: Home, work: str, clients: int, seconds: float
) -> float:
    done = 0
    stop_at = time.monotonic() + seconds

    async def one_client(number: int) -> None:
        nonlocal done
        async with AsyncClient([addresses[number % len(addresses)]], home=home) as client:
            while time.monotonic() < stop_at:
                await client.map(work, [number])
                done += 1

    started = time.monotonic()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    return done / (time.monotonic() - started)


async def round_trips(
    address: str, target: str, home: Home, work: str, count: int
) -> tuple[float, float]:
    samples = []
    async with AsyncClient([address], home=home) as client:
        for n in range(count):
            started = time.perf_counter()
            await client.map(work, [n], peers=[target])
            samples.append(time.perf_counter() - started)
    return statistics.median(samples), percentile(samples, 0.99)


async def many_items(address: str, home: Home, work: str, items: int) -> float:
    async with AsyncClient([address], home=home, timeout_s=3600) as client:
        started = time.perf_counter()
        values = await client.map(work, range(items))
        elapsed = time.perf_counter() - started
    assert len(values) == items and values[-1] == 2 * (items - 1)
    return items / elapsed


def deploy(root: Path, peers: int, payload_bytes: int) -> tuple[float, float]:
    """Push a large bundle to one peer, then start workers on all: (push s, to all running s)."""
    home_dir = root / f"deploy-{peers}"
    home_dir.mkdir()
    home = Home(home_dir).ensure()
    cluster = LocalCluster(home_dir, peers)
    try:
        cluster.start()
        with Client(cluster.addresses, home=home, timeout_s=600) as client:
            wait_members(client, peers)
            app = write_bundle(root, f"big{peers}", payload_bytes)
            started = time.perf_counter()
            sha1 = client.push_bundle(app, home=home).sha1
            pushed = time.perf_counter() - started
            answer = client.request_json(
                "POST", "/workers", json_body={"bundle": sha1, "peers": "all"}
            )
            running = time.perf_counter() - started
            failed = [a for a, r in answer["peers"].items() if "error" in r]
            if failed:
                raise SystemExit(f"workers failed to start on {failed}: {answer}")
        return pushed, running
    finally:
        cluster.stop()


def run_ray(items: int, seconds: float, workers: int) -> dict[str, float] | None:
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    ray.init(
        num_cpus=workers,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        one = ray.remote(double)
        chunk = ray.remote(double_chunk)
        # Warm-up, not timed: every worker process running, both functions exported.
        ray.get([one.remote(n) for n in range(100 * workers)])
        ray.get([chunk.remote([n]) for n in range(10 * workers)])
        figures: dict[str, float] = {}
        for in_flight in IN_FLIGHT:
            done, stop_at = 0, time.monotonic() + seconds
            started = time.monotonic()
            pending = [one.remote(n) for n in range(in_flight)]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                ray.get(ready)
                done += 1
                if time.monotonic() < stop_at:
                    pending.append(one.remote(done))
            figures[f"tiny_{in_flight}"] = done / (time.monotonic() - started)
        started = time.perf_counter()
        refs = [chunk.remote(list(range(i, min(i + CHUNK, items)))) for i in range(0, items, CHUNK)]
        values = [value for part in ray.get(refs) for value in part]
        figures["items"] = items / (time.perf_counter() - started)
        assert len(values) == items and values[-1] == 2 * (items - 1)
        return figures
    finally:
        ray.shutdown()


def run_dask(items: int, seconds: float, workers: int) -> dict[str, float] | None:
    try:
        from dask.distributed import Client as DaskClient  # type: ignore[import-not-found]
        from dask.distributed import LocalCluster as DaskCluster
    except ImportError:
        return None

    async def tiny(address: str, in_flight: int) -> float:
        async with DaskClient(address, asynchronous=True) as client:
            done, stop_at = 0, time.monotonic() + seconds

            async def one_client(number: int) -> None:
                nonlocal done
                while time.monotonic() < stop_at:
                    await client.submit(double, number, pure=False)
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(one_client(n) for n in range(in_flight)))
            return done / (time.monotonic() - started)

    with (
        DaskCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        DaskClient(cluster) as client,
    ):
        # Warm-up, not timed: every worker process running, both functions shipped.
        client.gather(client.map(double, range(100 * workers), pure=False))
        client.gather(client.map(double_chunk, [[n] for n in range(10 * workers)], pure=False))
        figures: dict[str, float] = {}
        for in_flight in IN_FLIGHT:
            figures[f"tiny_{in_flight}"] = asyncio.run(tiny(cluster.scheduler_address, in_flight))
        started = time.perf_counter()
        chunks = [list(range(i, min(i + CHUNK, items))) for i in range(0, items, CHUNK)]
        parts = client.gather(client.map(double_chunk, chunks, pure=False))
        values = [value for part in parts for value in part]
        figures["items"] = items / (time.perf_counter() - started)
        assert len(values) == items and values[-1] == 2 * (items - 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    items = 100_000 if args.quick else 1_000_000
    seconds = 3.0 if args.quick else 10.0
    big = (5 if args.quick else 50) * 1024 * 1024
    report: list[tuple[str, str]] = []
    ours: dict[str, float] = {}  # disruptor's figures, for the ratios to Ray and Dask

    def say(name: str, value: str) -> None:
        report.append((name, value))
        print(f"{name:<58} {value}", flush=True)

    with tempfile.TemporaryDirectory(prefix="disruptor-bench-") as scratch:
        root = Path(scratch)
        home_dir = root / "home"
        home = Home(home_dir).ensure()
        cluster = LocalCluster(home_dir, 3)
        try:
            cluster.start()
            addresses = cluster.addresses
            with Client(addresses, home=home) as client:
                wait_members(client, 3)
                sha1 = client.push_bundle(write_bundle(root, "tiny", workers=1), home=home).sha1
                client.request_json("POST", "/workers", json_body={"bundle": sha1, "peers": "all"})
                client.map(TINY, [0])  # warm snippet hosts
            loop = asyncio.new_event_loop()
            run: Callable[[Any], Any] = loop.run_until_complete
            for clients in (1, 16, 64):
                rate = run(tiny_jobs_per_s(addresses, home, sha1, clients, seconds))
                ours[f"tiny_{clients}"] = rate
                say(f"tiny bundle jobs/s, {clients} clients, 3 peers", f"{rate:,.0f}")
            rate = run(tiny_jobs_per_s(addresses, home, TINY, 64, seconds))
            say("tiny snippet jobs/s, 64 clients, 3 peers", f"{rate:,.0f}")
            rate = run(many_items(addresses[0], home, DOUBLE, items))
            ours["snippet_items"] = rate
            say(f"one snippet job of {items:,} items, items/s", f"{rate:,.0f}")
            rate = run(many_items(addresses[0], home, sha1, items))
            ours["bundle_items"] = rate
            say(f"one bundle job of {items:,} items, items/s", f"{rate:,.0f}")
            for label, target in (("local", addresses[0]), ("forwarded", addresses[1])):
                p50, p99 = run(round_trips(addresses[0], target, home, sha1, 300))
                say(
                    f"1-item bundle job round trip, {label}: p50 / p99",
                    f"{p50 * 1e3:.2f} ms / {p99 * 1e3:.2f} ms",
                )
                p50, p99 = run(round_trips(addresses[0], target, home, TINY, 300))
                say(
                    f"1-item snippet job round trip, {label}: p50 / p99",
                    f"{p50 * 1e3:.2f} ms / {p99 * 1e3:.2f} ms",
                )
            loop.close()
        finally:
            cluster.stop()
        for peers in (3, 6):
            pushed, running = deploy(root, peers, big)
            say(
                f"{big // 2**20} MB bundle to {peers} peers: pushed / all running",
                f"{pushed:.2f} s / {running:.2f} s",
            )
    workers = 3  # one worker process per peer above
    for name, runner in (("ray", run_ray), ("dask", run_dask)):
        figures = runner(items, seconds, workers)
        if figures is None:
            say(f"{name}", "not installed (pip install '.[bench]')")
            continue
        for in_flight in IN_FLIGHT:
            theirs = figures[f"tiny_{in_flight}"]
            say(
                f"{name}: tiny jobs/s, {in_flight} in flight, {workers} workers",
                f"{theirs:,.0f} (disruptor bundle jobs: {ours[f'tiny_{in_flight}'] / theirs:.2f}x)",
            )
        theirs = figures["items"]
        say(
            f"{name}: {items:,} items in tasks of {CHUNK:,}, items/s",
            f"{theirs:,.0f} (disruptor snippet job: {ours['snippet_items'] / theirs:.2f}x,"
            f" bundle job: {ours['bundle_items'] / theirs:.2f}x)",
        )
    print(f"\nmachine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
