"""Job costs on a local cluster of peer processes: tiny jobs per second, a million items, round
trips local and forwarded, and deploying a 50 MB bundle to 3 and 6 peers.

Run: ``.venv/bin/python benchmarks/bench_jobs.py [--quick]`` (a few minutes; ``--quick`` cuts the
sizes). Where Ray or Dask are importable (``pip install '.[bench]'``) the same tiny-job and
many-item workloads run on them in the same run, with the same number of worker processes.
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
TINY_HANDLER = "def handle(item):\n    return item\n"


def write_bundle(root: Path, name: str, payload_bytes: int = 0, workers: int = 1) -> Path:
    app = root / name
    app.mkdir(parents=True)
    (app / "bundle.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\n\n[worker]\nhandler = "tiny:handle"\n'
        f"count = {workers}\n"
    )
    (app / "tiny.py").write_text(TINY_HANDLER)
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
    assert len(values) == items
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


def run_ray(items: int, tiny_jobs_s: float, workers: int) -> dict[str, float] | None:
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        return None
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)

    @ray.remote  # type: ignore[misc]
    def ident(x: Any) -> Any:
        return x

    @ray.remote  # type: ignore[misc]
    def double_batch(xs: list[int]) -> list[int]:
        return [x * 2 for x in xs]

    stop_at, done = time.monotonic() + tiny_jobs_s, 0
    started = time.monotonic()
    while time.monotonic() < stop_at:
        ray.get([ident.remote(n) for n in range(32)])
        done += 32
    jobs = done / (time.monotonic() - started)
    started = time.perf_counter()
    chunk = 1000
    ray.get([double_batch.remote(list(range(i, i + chunk))) for i in range(0, items, chunk)])
    rate = items / (time.perf_counter() - started)
    ray.shutdown()
    return {"tiny_jobs_per_s": jobs, "items_per_s": rate}


def run_dask(items: int, tiny_jobs_s: float, workers: int) -> dict[str, float] | None:
    try:
        from dask.distributed import Client as DaskClient  # type: ignore[import-not-found]
        from dask.distributed import LocalCluster as DaskCluster
    except ImportError:
        return None
    with (
        DaskCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        DaskClient(cluster) as client,
    ):
        stop_at, done = time.monotonic() + tiny_jobs_s, 0
        started = time.monotonic()
        while time.monotonic() < stop_at:
            client.gather(client.map(lambda x: x, range(32), pure=False))
            done += 32
        jobs = done / (time.monotonic() - started)
        started = time.perf_counter()
        chunks = [list(range(i, i + 1000)) for i in range(0, items, 1000)]
        client.gather(client.map(lambda xs: [x * 2 for x in xs], chunks))
        rate = items / (time.perf_counter() - started)
    return {"tiny_jobs_per_s": jobs, "items_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    items = 100_000 if args.quick else 1_000_000
    seconds = 3.0 if args.quick else 10.0
    big = (5 if args.quick else 50) * 1024 * 1024
    report: list[tuple[str, str]] = []

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
                say(f"tiny bundle jobs/s, {clients} clients, 3 peers", f"{rate:,.0f}")
            rate = run(tiny_jobs_per_s(addresses, home, TINY, 64, seconds))
            say("tiny snippet jobs/s, 64 clients, 3 peers", f"{rate:,.0f}")
            rate = run(many_items(addresses[0], home, DOUBLE, items))
            say(f"one snippet job of {items:,} items, items/s", f"{rate:,.0f}")
            rate = run(many_items(addresses[0], home, sha1, items // 10))
            say(f"one bundle job of {items // 10:,} items, items/s", f"{rate:,.0f}")
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
        say(f"{name}: tiny jobs/s (batches of 32 in flight)", f"{figures['tiny_jobs_per_s']:,.0f}")
        say(
            f"{name}: {items:,} items in chunks of 1,000, items/s", f"{figures['items_per_s']:,.0f}"
        )
    print(f"\nmachine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
