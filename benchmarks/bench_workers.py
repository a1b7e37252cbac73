"""Worker costs: NDJSON round trip and pipelined rate against a bare pipe; HTTP job round trip.

Run: ``.venv/bin/python benchmarks/bench_workers.py [--isolation auto|bwrap|plain]`` (about 30 s).
Every figure is measured in this run:

- baseline: a bare Python process echoing JSON lines over its stdin/stdout pipes, driven with
  asyncio streams (one line written, one read), the least any NDJSON worker can cost;
- the pool: ``pool.run_batch`` to a warm worker of a one-line echo bundle, through the session,
  the runtime and the sandbox;
- pipelined: many items in flight at once (the baseline writes N lines then reads N; the pool
  takes N single-item requests at once, and one N-item batch);
- HTTP: ``POST /jobs`` with one item to one in-process peer, on a keep-alive connection;
- where Ray or Dask are importable (``pip install '.[bench]'``), the same work on one warm worker
  process of theirs (Ray: ``num_cpus=1``; Dask: one worker process, one thread), on loopback only:
  one echo task at a time, 2,000 single-item tasks at once, and one 20,000-item task. Their round
  trips stop after ``FRAMEWORK_ROUND_TRIP_S`` if the 2,000 have not been reached by then.

Each path is warmed up before it is timed (``WARM_UP`` calls, not counted).

``--million``: a million tiny items (``item * 2``) through ``WorkerPool.run_chunk`` on 2 warm
workers, in chunks of 1,000 and of 10,000, with the workers on protocol version 2 and on version 1,
against ``multiprocessing.Pool(2).map(f, xs, chunksize=...)`` with the same chunk size. Each run
goes from a Python list to a Python list: the pool's runs encode the chunks, keep at most
``MILLION_IN_FLIGHT`` items submitted, and decode every chunk's values (checked against the
expected list after the clock stops). Where Ray is importable, the same million on
``ray.init(num_cpus=2)`` as one task per chunk, every task submitted at once, results flattened.
Systems run interleaved (A, B, C, A, B, C...), ``--repeat`` rounds (at least 3); min and median
items/s and the ratios per round are printed with the load average, and the CPU the peer (and, in
plain mode, its workers) used per million.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from disruptor.address import Address
from disruptor.chunks import Chunk, ChunkResult, decode, join_arrays
from disruptor.client import AsyncClient
from disruptor.peer import Peer
from disruptor.settings import PeerSettings
from disruptor.workers.pool import DirectorySource, WorkerPool
from disruptor.workers.settings import WorkerSettings

ROUND_TRIPS = 2000
PIPELINED = 20000
HTTP_ROUND_TRIPS = 1000
WARM_UP = 50
FRAMEWORK_ROUND_TRIP_S = 20.0
MILLION = 1_000_000
MILLION_WORKERS = 2
MILLION_CHUNKS = (1_000, 10_000)
# Items submitted and not yet answered, at most: within the pool's queue bound, and enough to
# keep both workers busy while results travel back.
MILLION_IN_FLIGHT = 40_000
# (peer, workers) CPU seconds of each pool run, by "v<protocol>, <chunk size>".
MILLION_CPU_S: dict[str, list[tuple[float, float | None]]] = {}

ECHO_LOOP = r"""
import json, sys
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    msg = json.loads(line)
    out.write(json.dumps({"v": 1, "type": "result", "id": msg["id"],
                          "results": [{"value": i} for i in msg["items"]]}).encode() + b"\n")
    out.flush()
"""


def echo(item: Any) -> Any:
    return item


def echo_batch(items: list[Any]) -> list[Any]:
    return [echo(item) for item in items]


def double(item: int) -> int:
    return item * 2


def percentiles(samples_s: list[float]) -> str:
    ordered = sorted(samples_s)
    p50 = statistics.median(ordered) * 1e6
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1e6
    return f"p50 {p50:7.1f} us   p99 {p99:7.1f} us"


async def bench_baseline() -> tuple[list[float], float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", ECHO_LOOP,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    samples = []
    for i in range(-WARM_UP, ROUND_TRIPS):
        line = json.dumps({"v": 1, "type": "call", "id": i, "items": [i]}).encode() + b"\n"
        start = time.perf_counter()
        proc.stdin.write(line)
        json.loads(await proc.stdout.readline())
        if i >= 0:  # warm-up left out
            samples.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(PIPELINED):
        proc.stdin.write(
            json.dumps({"v": 1, "type": "call", "id": i, "items": [i]}).encode() + b"\n"
        )
    for _ in range(PIPELINED):
        json.loads(await proc.stdout.readline())
    rate = PIPELINED / (time.perf_counter() - start)
    proc.stdin.close()
    await proc.wait()
    return samples, rate


async def bench_pool(isolation: str, root: Path) -> dict[str, Any]:
    bundle = root / "echo"
    bundle.mkdir()
    (bundle / "bundle.toml").write_text(
        'name = "echo"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'
    )
    (bundle / "app.py").write_text("def handle(item):\n    return item\n")
    sha1 = "e" * 40
    state = root / "state"
    state.mkdir()
    pool = WorkerPool(DirectorySource({sha1: bundle}), state, WorkerSettings(isolation=isolation))
    await pool.start()
    try:
        start = time.perf_counter()
        await pool.start_workers(sha1, 1)
        cold_s = time.perf_counter() - start
        samples = []
        for i in range(-WARM_UP, ROUND_TRIPS):
            start = time.perf_counter()
            await pool.run_batch(sha1, [i])
            if i >= 0:  # warm-up left out
                samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        await asyncio.gather(*(pool.run_batch(sha1, [i]) for i in range(PIPELINED // 10)))
        single_rate = (PIPELINED // 10) / (time.perf_counter() - start)
        start = time.perf_counter()
        await pool.run_batch(sha1, list(range(PIPELINED)))
        batch_rate = PIPELINED / (time.perf_counter() - start)
        return {
            "mode": pool.mode,
            "cold_s": cold_s,
            "samples": samples,
            "single_rate": single_rate,
            "batch_rate": batch_rate,
        }
    finally:
        await pool.stop()


async def bench_http(root: Path) -> list[float]:
    os.environ["DISRUPTOR_HOME"] = str(root / "home")
    home = root / "home"
    peer = Peer(PeerSettings(address=Address("127.0.0.1", 0), home=home))
    await peer.start()
    try:
        app = root / "app"
        app.mkdir()
        (app / "bundle.toml").write_text(
            'name = "echo"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'
        )
        (app / "app.py").write_text("def handle(item):\n    return item\n")
        async with AsyncClient(peer.url) as client:
            sha1 = (await client.push_bundle(app)).sha1
            await client.start_workers(sha1, 1)
        headers = {"Authorization": f"Bearer {peer.api_token}"}
        samples = []
        async with aiohttp.ClientSession(headers=headers) as session:
            for i in range(HTTP_ROUND_TRIPS + 50):
                start = time.perf_counter()
                async with session.post(
                    peer.url + "/jobs", json={"bundle": sha1, "items": [i]}
                ) as response:
                    body = await response.json()
                    assert body["values"][0] == i, body
                if i >= 50:  # warm-up left out
                    samples.append(time.perf_counter() - start)
        return samples
    finally:
        await peer.stop()


async def bench_dask() -> dict[str, Any] | None:
    try:
        from dask.distributed import Client as DaskClient  # type: ignore[import-not-found]
        from dask.distributed import LocalCluster as DaskCluster
    except ImportError:
        return None
    start = time.perf_counter()
    async with (
        DaskCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            asynchronous=True,
        ) as cluster,
        DaskClient(cluster, asynchronous=True) as client,
    ):
        await client.submit(echo, 0, pure=False)
        cold_s = time.perf_counter() - start
        for i in range(WARM_UP):
            await client.submit(echo, i, pure=False)
        await client.submit(echo_batch, [0], pure=False)
        samples = []
        stop_at = time.monotonic() + FRAMEWORK_ROUND_TRIP_S
        for i in range(ROUND_TRIPS):
            if time.monotonic() > stop_at:
                break
            start = time.perf_counter()
            assert await client.submit(echo, i, pure=False) == i
            samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        await client.gather(client.map(echo, range(PIPELINED // 10), pure=False))
        single_rate = (PIPELINED // 10) / (time.perf_counter() - start)
        start = time.perf_counter()
        values = await client.submit(echo_batch, list(range(PIPELINED)), pure=False)
        batch_rate = PIPELINED / (time.perf_counter() - start)
        assert len(values) == PIPELINED
    return {
        "cold_s": cold_s,
        "samples": samples,
        "single_rate": single_rate,
        "batch_rate": batch_rate,
    }


def bench_ray() -> dict[str, Any] | None:
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    start = time.perf_counter()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        one = ray.remote(echo)
        batch = ray.remote(echo_batch)
        ray.get(one.remote(0))
        cold_s = time.perf_counter() - start
        ray.get([one.remote(i) for i in range(WARM_UP)])
        ray.get(batch.remote([0]))
        samples = []
        stop_at = time.monotonic() + FRAMEWORK_ROUND_TRIP_S
        for i in range(ROUND_TRIPS):
            if time.monotonic() > stop_at:
                break
            start = time.perf_counter()
            assert ray.get(one.remote(i)) == i
            samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        ray.get([one.remote(i) for i in range(PIPELINED // 10)])
        single_rate = (PIPELINED // 10) / (time.perf_counter() - start)
        start = time.perf_counter()
        values = ray.get(batch.remote(list(range(PIPELINED))))
        batch_rate = PIPELINED / (time.perf_counter() - start)
        assert len(values) == PIPELINED
        return {
            "cold_s": cold_s,
            "samples": samples,
            "single_rate": single_rate,
            "batch_rate": batch_rate,
        }
    finally:
        ray.shutdown()


async def measure(isolation: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        root = Path(tmp)
        base_samples, base_rate = await bench_baseline()
        pool = await bench_pool(isolation, root)
        http = await bench_http(root)
    dask = await bench_dask()
    return {"base": (base_samples, base_rate), "pool": pool, "http": http, "dask": dask}


def cpu_s_of(pid: int | None) -> float | None:
    """CPU seconds a process has used, from /proc (None where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def million_on_pool(pool: WorkerPool, sha1: str, size: int) -> float:
    """Items/s for a million items through ``run_chunk``, list in, list out; the CPU the peer
    and (in plain mode, where a worker's pid is its interpreter's) its workers used is kept in
    ``MILLION_CPU_S``."""
    xs = list(range(MILLION))
    window = asyncio.Semaphore(max(1, MILLION_IN_FLIGHT // size))

    async def one(start: int) -> ChunkResult:
        async with window:
            return await pool.run_chunk(sha1, Chunk.of(xs[start : start + size]))

    pids = [w.pid for w in pool.workers()] if pool.mode == "plain" else []
    workers_before = [cpu_s_of(pid) for pid in pids]
    cpu_before = time.process_time()
    began = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(0, MILLION, size)))
    # One flat list, as multiprocessing returns: the chunks' arrays joined, then decoded at once.
    values = decode(join_arrays([r.values for r in results]))
    elapsed = time.perf_counter() - began
    peer_cpu_s = time.process_time() - cpu_before
    workers_after = [cpu_s_of(pid) for pid in pids]
    assert all(not r.errors for r in results) and values == [x * 2 for x in xs]
    used = [b - a for a, b in zip(workers_before, workers_after, strict=True) if a and b]
    MILLION_CPU_S.setdefault(f"v{pool.settings.protocol_max}, {size}", []).append(
        (peer_cpu_s, sum(used) if pids and len(used) == len(pids) else None)
    )
    return MILLION / elapsed


def double_chunk(items: list[int]) -> list[int]:
    return [item * 2 for item in items]


def million_on_ray(ray: Any, remote: Any, size: int) -> float:
    xs = list(range(MILLION))
    began = time.perf_counter()
    parts = ray.get([remote.remote(xs[i : i + size]) for i in range(0, MILLION, size)])
    values = list(itertools.chain.from_iterable(parts))
    elapsed = time.perf_counter() - began
    assert values == [x * 2 for x in xs]
    return MILLION / elapsed


def start_ray() -> tuple[Any, Any] | None:
    try:
        import ray  # type: ignore[import-not-found]
    except ImportError:
        return None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    ray.init(
        num_cpus=MILLION_WORKERS,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    remote = ray.remote(double_chunk)
    ray.get([remote.remote([i]) for i in range(MILLION_WORKERS * 4)])  # workers up and warm
    return ray, remote


def million_on_multiprocessing(mp_pool: Any, size: int) -> float:
    xs = list(range(MILLION))
    began = time.perf_counter()
    values = mp_pool.map(double, xs, chunksize=size)
    elapsed = time.perf_counter() - began
    assert values == [x * 2 for x in xs]
    return MILLION / elapsed


async def measure_million(
    isolation: str, rounds: int, mp_pool: Any, ray: tuple[Any, Any] | None
) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-million-") as tmp:
        root = Path(tmp)
        bundle = root / "double"
        bundle.mkdir()
        (bundle / "bundle.toml").write_text(
            'name = "double"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'
            f"count = {MILLION_WORKERS}\n"
        )
        (bundle / "app.py").write_text("def handle(item):\n    return item * 2\n")
        sha1 = "d" * 40
        pools: dict[int, WorkerPool] = {}
        for protocol in (2, 1):
            state = root / f"state-v{protocol}"
            state.mkdir()
            settings = WorkerSettings(isolation=isolation, protocol_max=protocol)
            pools[protocol] = WorkerPool(DirectorySource({sha1: bundle}), state, settings)
            await pools[protocol].start()
            await pools[protocol].start_workers(sha1)
            assert {w.protocol for w in pools[protocol].workers()} == {protocol}
        try:
            for size in MILLION_CHUNKS:  # warm up every path once, untimed
                await million_on_pool(pools[2], sha1, size)
            million_on_multiprocessing(mp_pool, MILLION_CHUNKS[0])
            if ray is not None:
                million_on_ray(*ray, MILLION_CHUNKS[0])
            MILLION_CPU_S.clear()  # the warm-up's figures are not counted
            for round_ in range(rounds):
                for size in MILLION_CHUNKS:
                    for protocol in (2, 1):
                        rate = await million_on_pool(pools[protocol], sha1, size)
                        rates.setdefault(f"pool v{protocol}, chunks of {size}", []).append(rate)
                    rate = million_on_multiprocessing(mp_pool, size)
                    rates.setdefault(f"multiprocessing, chunksize {size}", []).append(rate)
                    if ray is not None:
                        rate = million_on_ray(*ray, size)
                        rates.setdefault(f"ray, tasks of {size}", []).append(rate)
                print(f"round {round_ + 1}/{rounds} done, load average {os.getloadavg()[0]:.1f}")
        finally:
            for pool in pools.values():
                await pool.stop()
    return rates


def report_million(rates: dict[str, list[float]]) -> None:
    print(f"\nload average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'system':34} {'min items/s':>12} {'median items/s':>15}")
    for name, values in rates.items():
        print(f"{name:34} {min(values):12,.0f} {statistics.median(values):15,.0f}")
    for size in MILLION_CHUNKS:
        base = rates[f"multiprocessing, chunksize {size}"]
        for protocol in (2, 1):
            mine = rates[f"pool v{protocol}, chunks of {size}"]
            ratios = [m / b for m, b in zip(mine, base, strict=True)]
            print(
                f"pool v{protocol} / multiprocessing, chunks of {size}: "
                f"min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x"
            )
        v2, v1 = rates[f"pool v2, chunks of {size}"], rates[f"pool v1, chunks of {size}"]
        ratios = [a / b for a, b in zip(v2, v1, strict=True)]
        print(
            f"pool v2 / pool v1, chunks of {size}: "
            f"min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x"
        )
        for protocol in (2, 1):
            samples = MILLION_CPU_S.get(f"v{protocol}, {size}", [])
            peer = statistics.median(p for p, _ in samples) if samples else float("nan")
            workers = [w for _, w in samples if w is not None]
            print(
                f"pool v{protocol}, chunks of {size}: CPU per million, median: peer {peer:.3f} s, "
                + (f"workers {statistics.median(workers):.3f} s" if workers else "workers n/a")
            )
        if f"ray, tasks of {size}" in rates:
            ratios = [a / b for a, b in zip(v2, rates[f"ray, tasks of {size}"], strict=True)]
            print(
                f"pool v2 / ray, chunks of {size}: "
                f"min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--isolation", default="auto", choices=["auto", "bwrap", "plain"])
    parser.add_argument("--million", action="store_true", help="only the million-item runs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the million-item runs")
    args = parser.parse_args()
    if args.million:
        # Forked before any event loop or thread exists, and kept warm for every round.
        with multiprocessing.get_context("fork").Pool(MILLION_WORKERS) as mp_pool:
            ray = start_ray()
            try:
                rounds = max(3, args.repeat)
                rates = asyncio.run(measure_million(args.isolation, rounds, mp_pool, ray))
            finally:
                if ray is not None:
                    ray[0].shutdown()
        report_million(rates)
        return
    figures = asyncio.run(measure(args.isolation))
    others = {"ray": bench_ray(), "dask": figures["dask"]}  # Ray blocks: run outside the loop
    base_samples, base_rate = figures["base"]
    pool, http = figures["pool"], figures["http"]
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"bare pipe round trip        {percentiles(base_samples)}")
    print(f"pool round trip ({pool['mode']:5})   {percentiles(pool['samples'])}")
    ratio = statistics.median(pool["samples"]) / statistics.median(base_samples)
    print(f"  pool / bare pipe (p50)    {ratio:.2f}x")
    print(f"bare pipe pipelined         {base_rate:10.0f} msgs/s")
    print(f"pool, single-item requests  {pool['single_rate']:10.0f} items/s (2,000 at once)")
    print(f"pool, one {PIPELINED}-item batch  {pool['batch_rate']:10.0f} items/s")
    print(f"cold start of one worker    {pool['cold_s'] * 1000:7.1f} ms")
    print(f"HTTP POST /jobs, 1 item     {percentiles(http)}")
    pool_p50 = statistics.median(pool["samples"])
    for name, theirs in others.items():
        if theirs is None:
            print(f"{name}: not installed (pip install '.[bench]')")
            continue
        samples = theirs["samples"]
        their_p50 = statistics.median(samples)
        print(f"{name} task round trip {percentiles(samples)}   ({len(samples)} sequential)")
        print(f"  pool / {name} (p50)        {pool_p50 / their_p50:.2f}x")
        print(f"  HTTP job / {name} (p50)    {statistics.median(http) / their_p50:.2f}x")
        print(
            f"{name}, single-item tasks   {theirs['single_rate']:10.0f} items/s (2,000 at once;"
            f" pool {pool['single_rate'] / theirs['single_rate']:.2f}x)"
        )
        print(
            f"{name}, one {PIPELINED}-item task {theirs['batch_rate']:10.0f} items/s"
            f" (pool {pool['batch_rate'] / theirs['batch_rate']:.2f}x)"
        )
        print(f"{name}, start to first result {theirs['cold_s'] * 1000:7.1f} ms (whole cluster)")


if __name__ == "__main__":
    main()
