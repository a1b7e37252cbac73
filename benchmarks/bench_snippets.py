"""Snippet costs: guards against plain Python, first-call compile, host batch, HTTP round trip.

Run: ``.venv/bin/python benchmarks/bench_snippets.py`` (about 20 s). Every figure is measured in
this run, the sandboxed one against the same function as plain Python, so ratios compare like
with like on whatever machine runs it.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disruptor.address import Address
from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.peer import Peer
from disruptor.settings import PeerSettings
from disruptor.snippets.compile import compile_snippet, snippet_sha1
from disruptor.snippets.host_main import Host
from disruptor.snippets.host_pool import HostPool
from disruptor.snippets.policy import RunScope, SnippetSettings

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
}


def interleaved(runs: int, *works: Callable[[], Any]) -> list[float]:
    """Best time of each work, the works taking turns so that load changes hit them alike."""
    best = [float("inf")] * len(works)
    for _ in range(runs):
        for index, work in enumerate(works):
            started = time.perf_counter()
            work()
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def best_of(runs: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


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


def bench_guards() -> None:
    items = list(range(ITEMS))
    print(f"guards: one function mapped over {ITEMS:,} ints, best of 9 interleaved runs")
    for name, source in SNIPPETS.items():
        plain = plain_function(source)
        guarded = guarded_function(source)
        assert [plain(x) for x in items[:100]] == [guarded(x) for x in items[:100]]
        t_plain, t_guard = interleaved(
            9,
            lambda f=plain: [f(x) for x in items],  # type: ignore[misc]
            lambda f=guarded: [f(x) for x in items],  # type: ignore[misc]
        )
        print(
            f"  {name:7s} plain {t_plain * 1e3:7.1f} ms   sandboxed {t_guard * 1e3:7.1f} ms"
            f"   ratio {t_guard / t_plain:4.2f}x"
        )


def bench_host_loop() -> None:
    items = list(range(ITEMS))
    source = SNIPPETS["double"]
    plain = plain_function(source)
    host = Host(SnippetSettings(), io.BytesIO())
    request = {"sha1": snippet_sha1(source), "source": source, "items": items, "timeout_s": 5}

    def run() -> None:
        host.out = io.BytesIO()
        host.handle(request)

    t_plain, t_host = interleaved(5, lambda: [plain(x) for x in items], run)
    print(
        f"host loop (per-item budget, conversion, JSON reply), {ITEMS:,} items: "
        f"{t_host * 1e3:.1f} ms = {t_host / t_plain:.1f}x plain "
        f"({t_host / ITEMS * 1e6:.2f} us/item)"
    )


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


async def bench_pool() -> None:
    items = list(range(ITEMS))
    source = SNIPPETS["double"]
    pool = HostPool(SnippetSettings(hosts_prestart=0))
    try:
        request = {"sha1": snippet_sha1(source), "source": source, "mode": "map"}
        started = time.perf_counter()
        await pool.run(request, [1], 5)
        spawn = time.perf_counter() - started
        times = []
        for _ in range(3):
            started = time.perf_counter()
            outcomes = await pool.run(request, items, 5)
            times.append(time.perf_counter() - started)
        assert outcomes[-1].value == 2 * (ITEMS - 1)
    finally:
        await pool.stop()
    print(
        f"host process: first batch incl. host start {spawn * 1e3:.0f} ms; "
        f"{ITEMS:,} items through the pipe: {min(times) * 1e3:.0f} ms "
        f"({min(times) / ITEMS * 1e6:.2f} us/item)"
    )


async def bench_http() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp)).ensure()
        peer = Peer(PeerSettings(address=Address("127.0.0.1", 0), home=home.root))
        await peer.start()
        try:
            async with AsyncClient(peer.url, home=home) as client:
                body = {"snippet": SNIPPETS["double"], "items": [1, 2, 3]}
                await client.request_json("POST", "/jobs", json_body=body)
                samples = []
                for _ in range(50):
                    started = time.perf_counter()
                    reply = await client.request_json("POST", "/jobs", json_body=body)
                    samples.append(time.perf_counter() - started)
                assert [r["value"] for r in reply["results"]] == [2, 4, 6]
        finally:
            await peer.stop()
    samples.sort()
    print(
        f"HTTP round trip, snippet job of 3 items (POST /jobs, warm host), 50 runs: "
        f"median {statistics.median(samples) * 1e3:.1f} ms, p90 {samples[44] * 1e3:.1f} ms"
    )


def main() -> None:
    bench_guards()
    bench_host_loop()
    bench_compile()
    asyncio.run(bench_pool())
    asyncio.run(bench_http())


if __name__ == "__main__":
    main()
