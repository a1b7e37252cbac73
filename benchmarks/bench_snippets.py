"""Snippet costs: guards against plain Python, the host's per-item cost, a million items through
``SnippetEngine.run_chunk`` against ``multiprocessing.Pool``, compile, first use, idle memory.

Run: ``.venv/bin/python benchmarks/bench_snippets.py`` (about two minutes; ``--quick`` for a smoke
run). Every figure is measured in this run against a baseline in the same run (systems taking
turns A, B, A, B...), so ratios compare like with like on whatever machine runs it; the load
average is printed with each comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from disruptor.address import Address
from disruptor.chunks import Chunk
from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.ports import free_port
from disruptor.settings import PeerSettings
from disruptor.snippets import SnippetEngine
from disruptor.snippets.compile import compile_snippet
from disruptor.snippets.host_main import Host
from disruptor.snippets.host_pool import HostPool
from disruptor.snippets.host_wire import Mode, Run
from disruptor.snippets.names import snippet_sha1
from disruptor.snippets.policy import RunScope
from disruptor.snippets.settings import SnippetSettings

ITEMS = 100_000
SNIPPETS = {
    "double": "def handle(item):\n    return item * 2\n",
    "loop": (
        "def handle(item):\n    total = 0\n    for i in range(10):\n"
        "        total += i * item\n    return total\n"
    ),
    "calls": (
        "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"
        "def handle(item):\n    return clamp(item - 3, 0, 7) + len(str(item)) if item > 2 else 0\n"
    ),
    # Two variables multiplied: the general inline check (no loop variable known).
    "product": (
        "def handle(item):\n    total = 0\n    k = item + 1\n    for i in range(10):\n"
        "        total += k * item\n    return total\n"
    ),
}


def double(item: int) -> int:
    """The plain function ``multiprocessing.Pool`` runs (the snippet ``double``)."""
    return item * 2


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f}"


def turns(runs: int, *works: Callable[[], Any]) -> list[list[float]]:
    """Times of each work, the works taking turns so that load changes hit them alike."""
    times: list[list[float]] = [[] for _ in works]
    for _ in range(runs):
        for index, work in enumerate(works):
            started = time.perf_counter()
            work()
            times[index].append(time.perf_counter() - started)
    return times


def guarded_function(source: str) -> Callable[[Any], Any]:
    host = Host(SnippetSettings(), io.BytesIO())
    table = host.globals_for(RunScope())
    exec(compile_snippet(source, snippet_sha1(source), 65536), table)
    host.budget.start(3600)
    handle: Callable[[Any], Any] = table["handle"]
    return handle


def plain_function(source: str) -> Callable[[Any], Any]:
    table: dict[str, Any] = {}
    exec(compile(source, "plain", "exec"), table)
    handle: Callable[[Any], Any] = table["handle"]
    return handle


def bench_guards(runs: int) -> None:
    items = list(range(ITEMS))
    print(f"guards: one function mapped over {ITEMS:,} ints, {runs} interleaved runs ({load()})")
    for name, source in SNIPPETS.items():
        plain = plain_function(source)
        guarded = guarded_function(source)
        assert [plain(x) for x in items[:100]] == [guarded(x) for x in items[:100]]
        t_plain, t_guard = turns(
            runs,
            lambda f=plain: [f(x) for x in items],  # type: ignore[misc]
            lambda f=guarded: [f(x) for x in items],  # type: ignore[misc]
        )
        # Each sandboxed run against the plain run just before it.
        ratios = [g / p for g, p in zip(t_guard, t_plain, strict=True)]
        print(
            f"  {name:8s} best plain {min(t_plain) * 1e3:7.1f} ms, sandboxed"
            f" {min(t_guard) * 1e3:7.1f} ms;  ratio min {min(ratios):4.2f}x,"
            f" median {statistics.median(ratios):4.2f}x"
        )


def map_run(source: str, items: list[Any], timeout_s: float = 5.0) -> Run:
    chunk = Chunk.of(items)
    return Run(snippet_sha1(source), source, Mode.MAP, timeout_s, chunk.count, chunk.data)


def bench_host_loop(runs: int) -> None:
    """The host's own work per item: decode, budget, run, check, encode, frame (no pipe)."""
    items = list(range(ITEMS))
    source = SNIPPETS["double"]
    plain = plain_function(source)
    host = Host(SnippetSettings(), io.BytesIO())
    run = map_run(source, items)

    def handle() -> None:
        host.out = io.BytesIO()
        host.handle(run)

    t_plain, t_host = turns(runs, lambda: [plain(x) for x in items], handle)
    extra = [(h - p) / ITEMS for h, p in zip(t_host, t_plain, strict=True)]
    print(
        f"host loop, {ITEMS:,} items of `return item * 2` in one chunk ({load()}): "
        f"{min(t_host) * 1e3:.1f} ms vs plain {min(t_plain) * 1e3:.1f} ms; "
        f"bookkeeping per item (host - plain) min {min(extra) * 1e9:.0f} ns, "
        f"median {statistics.median(extra) * 1e9:.0f} ns"
    )


async def bench_pipe(runs: int) -> None:
    """One chunk of 100,000 items through a real host and its pipe, joined by the peer."""
    items = list(range(ITEMS))
    source = SNIPPETS["double"]
    pool = HostPool(SnippetSettings(hosts_max=1))
    run = map_run(source, items)
    try:
        await pool.run(run)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            result = await pool.run(run)
            times.append(time.perf_counter() - started)
        assert result.values_list()[-1] == 2 * (ITEMS - 1)
    finally:
        await pool.stop()
    per_item = [t / ITEMS * 1e9 for t in times]
    print(
        f"through a real host and its pipe, {ITEMS:,} items in one chunk: min "
        f"{min(per_item):.0f} ns/item, median {statistics.median(per_item):.0f} ns/item"
        f" (the peer never decodes the values)"
    )


def bench_million(reps: int, total: int, chunk_items: int) -> None:
    """``total`` items of ``item * 2``: run_chunk on 2 hosts against ``multiprocessing.Pool(2)``."""
    source = SNIPPETS["double"]
    items = list(range(total))
    chunks = [Chunk.of(items[i : i + chunk_items]) for i in range(0, total, chunk_items)]
    expected_last = 2 * (total - 1)
    loop = asyncio.new_event_loop()
    engine_dir = tempfile.TemporaryDirectory()
    engine = SnippetEngine(SnippetSettings(hosts_max=2), Path(engine_dir.name))
    loop.run_until_complete(engine.start())

    async def warm() -> None:
        await asyncio.gather(*(engine.run_chunk(c, source=source) for c in chunks[:4]))

    async def run_chunks(encode: bool) -> None:
        parts = (
            [Chunk.of(items[i : i + chunk_items]) for i in range(0, total, chunk_items)]
            if encode
            else chunks
        )
        results = await asyncio.gather(*(engine.run_chunk(c, source=source) for c in parts))
        if encode:
            values = [v for r in results for v in r.values_list()]
            assert values[-1] == expected_last
        assert sum(r.count for r in results) == total
        assert not any(r.errors for r in results)

    cpu: dict[str, list[float]] = {"peer": [], "hosts": []}

    def snippets() -> None:
        pids = [host.pid for host in engine.hosts._all]
        peer_before, hosts_before = time.process_time(), sum(map(cpu_s, pids))
        loop.run_until_complete(run_chunks(False))
        cpu["peer"].append(time.process_time() - peer_before)
        cpu["hosts"].append(sum(map(cpu_s, pids)) - hosts_before)

    def snippets_end_to_end() -> None:
        loop.run_until_complete(run_chunks(True))

    try:
        with multiprocessing.Pool(2) as pool:
            # Warm both sides: hosts started and the snippet compiled on each; workers forked.
            pool.map(double, items[: 4 * chunk_items], chunksize=chunk_items)
            loop.run_until_complete(warm())

            def pooled() -> None:
                out = pool.map(double, items, chunksize=chunk_items)
                assert out[-1] == expected_last

            print(
                f"{total:,} items of `item * 2` in chunks of {chunk_items:,}, 2 processes each, "
                f"{reps} interleaved repetitions ({load()} before)"
            )
            t_snip, t_e2e, t_pool = turns(reps, snippets, snippets_end_to_end, pooled)
    finally:
        loop.run_until_complete(engine.stop())
        loop.close()
        engine_dir.cleanup()
    for label, times in (
        ("SnippetEngine.run_chunk, chunks already encoded", t_snip),
        ("the same with Chunk.of and values_list() timed", t_e2e),
        ("multiprocessing.Pool(2).map, same plain function", t_pool),
    ):
        rates = [total / t for t in times]
        print(
            f"  {label:50s} min {min(rates) / 1e6:5.2f}M items/s, "
            f"median {statistics.median(rates) / 1e6:5.2f}M items/s"
        )
    for label, times in (("run_chunk", t_snip), ("end to end", t_e2e)):
        ratios = [p / s for s, p in zip(times, t_pool, strict=True)]
        print(
            f"  {label} / Pool throughput ratio: min {min(ratios):.2f}x, "
            f"median {statistics.median(ratios):.2f}x"
        )
    peer_cpu, hosts_cpu = statistics.median(cpu["peer"]), statistics.median(cpu["hosts"])
    print(
        f"  CPU time of one run_chunk repetition, median: peer {peer_cpu:.3f} s,"
        f" hosts {hosts_cpu:.3f} s ({total:,} items)"
    )
    print(f"  ({load()} after)")


def cpu_s(pid: int) -> float:
    """User and system CPU time of a process, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_compile() -> None:
    source = SNIPPETS["calls"]
    samples = []
    for n in range(20):
        variant = source + f"\nVERSION = {n}\n"
        started = time.perf_counter()
        compile_snippet(variant, snippet_sha1(variant), 65536)
        samples.append(time.perf_counter() - started)
    print(
        f"first-call compile (RestrictedPython + budget policy), median of 20: "
        f"{statistics.median(samples) * 1e3:.2f} ms"
    )


async def bench_first_use() -> None:
    source = SNIPPETS["double"]
    chunk = Chunk.of([1, 2, 3])
    cold, warm = [], []
    for _ in range(5):
        pool = HostPool(SnippetSettings(hosts_max=1))
        run = Run(snippet_sha1(source), source, Mode.MAP, 5.0, chunk.count, chunk.data)
        try:
            started = time.perf_counter()
            await pool.run(run)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            await pool.run(run)
            warm.append(time.perf_counter() - started)
        finally:
            await pool.stop()
    print(
        f"a 3-item chunk on a new pool (host started on first use), median of 5: "
        f"{statistics.median(cold) * 1e3:.0f} ms; the next one: {statistics.median(warm) * 1e3:.1f}"
        f" ms ({load()})"
    )


async def bench_http() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp)).ensure()
        peer = Peer(PeerSettings(address=Address("127.0.0.1", 0), home=home.root))
        await peer.start()
        try:
            async with AsyncClient(peer.url, home=home) as client:
                body = {"snippet": SNIPPETS["double"], "items": [1, 2, 3]}
                started = time.perf_counter()
                await client.request_json("POST", "/jobs", json_body=body)
                first = time.perf_counter() - started
                samples = []
                for _ in range(50):
                    started = time.perf_counter()
                    reply = await client.request_json("POST", "/jobs", json_body=body)
                    samples.append(time.perf_counter() - started)
                assert reply["values"] == [2, 4, 6]
        finally:
            await peer.stop()
    samples.sort()
    print(
        f"HTTP round trip, snippet job of 3 items (POST /jobs): first (host started on first use) "
        f"{first * 1e3:.0f} ms; then 50 runs: median {statistics.median(samples) * 1e3:.1f} ms, "
        f"p90 {samples[44] * 1e3:.1f} ms"
    )


def tree_rss_kb(pid: int) -> tuple[int, int]:
    """(RSS of ``pid``, RSS of its children), in kB, from /proc."""

    def rss(of: int) -> int:
        for line in Path(f"/proc/{of}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return rss(pid), sum(rss(c) for c in children)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def idle_peer_rss(prestart: int, settle_s: float) -> tuple[int, int, int]:
    """(peer kB, children kB, children) of a real idle peer started with ``hosts_prestart``."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port("127.0.0.1")
        env = {**os.environ, "DISRUPTOR_HOME": tmp}
        args: Sequence[str] = [
            sys.executable,
            "-m",
            "disruptor",
            "peer",
            f"127.0.0.1:{port}",
            "--set",
            f"snippets.hosts_prestart={prestart}",
        ]
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:

            def healthy() -> bool:
                try:
                    url = f"http://127.0.0.1:{port}/health"
                    with urllib.request.urlopen(url, timeout=1) as reply:
                        return bool(reply.status == 200)
                except OSError:
                    return False

            wait_for(healthy, 30, "the peer to serve")

            def hosts() -> int:
                return sum(
                    len((task / "children").read_text().split())
                    for task in Path(f"/proc/{proc.pid}/task").iterdir()
                )

            wait_for(lambda: hosts() >= prestart, 30, "the warm hosts")
            # Idle means idle: let start-up work (first gossip rounds, warm-up) finish.
            time.sleep(settle_s)
            peer_kb, children_kb = tree_rss_kb(proc.pid)
            return peer_kb, children_kb, hosts()
        finally:
            proc.terminate()
            proc.wait(30)


def bench_idle_memory(reps: int) -> None:
    print(f"idle peer (real process, nothing run), RSS; {reps} interleaved starts each ({load()})")
    rows: dict[int, list[tuple[int, int, int]]] = {1: [], 0: []}
    for _ in range(reps):
        for prestart in (1, 0):
            rows[prestart].append(idle_peer_rss(prestart, settle_s=2.0))
    for prestart, label in ((1, "one host started with the peer"), (0, "hosts on first use")):
        totals = [p + c for p, c, _ in rows[prestart]]
        peer = statistics.median(p for p, _, _ in rows[prestart])
        kids = statistics.median(c for _, c, _ in rows[prestart])
        print(
            f"  {label:32s} peer {peer / 1024:5.1f} MB + children {kids / 1024:5.1f} MB "
            f"= median {statistics.median(totals) / 1024:5.1f} MB "
            f"({rows[prestart][0][2]} host process(es))"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 200,000 items")
    args = parser.parse_args()
    reps = 3 if args.quick else 5
    bench_guards(5 if args.quick else 9)
    bench_host_loop(reps)
    asyncio.run(bench_pipe(reps))
    bench_million(reps, 200_000 if args.quick else 1_000_000, 10_000)
    bench_compile()
    asyncio.run(bench_first_use())
    asyncio.run(bench_http())
    bench_idle_memory(2 if args.quick else 3)


if __name__ == "__main__":
    main()
