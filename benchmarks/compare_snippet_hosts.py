"""The snippet host path of one source tree, measured the same way whatever its version.

For before/after comparisons: run it in turns against a copy of an older tree and this one, e.g.

    git archive 2bc7a0e | (mkdir -p /tmp/before && tar -x -C /tmp/before)
    for i in 1 2 3; do
        .venv/bin/python benchmarks/compare_snippet_hosts.py /tmp/before
        .venv/bin/python benchmarks/compare_snippet_hosts.py .
    done

It measures the host's per-item bookkeeping in process (host minus plain, 100,000 items of
``return item * 2``), 100,000 items through one real host and its pipe, and 1,000,000 items on
two hosts in batches or chunks of 10,000. Trees before the binary host wire are driven through
their JSON requests and ``run_batch``; later ones through ``Run`` frames and ``run_chunk``.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
sys.path.insert(0, str(ROOT))

from disruptor.snippets.host_main import Host  # noqa: E402
from disruptor.snippets.host_pool import HostPool  # noqa: E402
from disruptor.snippets.names import snippet_sha1  # noqa: E402
from disruptor.snippets.settings import SnippetSettings  # noqa: E402

SOURCE = "def handle(item):\n    return item * 2\n"
ITEMS = list(range(100_000))
try:
    from disruptor.chunks import Chunk  # type: ignore[attr-defined, unused-ignore]
    from disruptor.snippets.host_wire import Mode, Run  # type: ignore[import-not-found, unused-ignore]

    WIRE = "binary"
except ImportError:
    WIRE = "json"


def request(items: list[int]) -> Any:
    if WIRE == "binary":
        chunk = Chunk.of(items)
        return Run(snippet_sha1(SOURCE), SOURCE, Mode.MAP, 5.0, chunk.count, chunk.data)
    return {"sha1": snippet_sha1(SOURCE), "source": SOURCE, "items": items, "timeout_s": 5}


def host_loop() -> str:
    host = Host(SnippetSettings(), io.BytesIO())
    run = request(ITEMS)

    def plain(item: int) -> int:
        return item * 2

    extra = []
    for _ in range(7):
        started = time.perf_counter()
        [plain(x) for x in ITEMS]
        t_plain = time.perf_counter() - started
        host.out = io.BytesIO()
        started = time.perf_counter()
        host.handle(run)
        extra.append((time.perf_counter() - started - t_plain) / len(ITEMS) * 1e9)
    return f"bookkeeping min {min(extra):.0f} ns/item, median {statistics.median(extra):.0f}"


async def pipe() -> str:
    pool = HostPool(SnippetSettings(hosts_max=1, hosts_prestart=0))
    try:
        if WIRE == "binary":
            run = request(ITEMS)

            async def once() -> None:
                await pool.run(run)
        else:
            mapping = {"sha1": snippet_sha1(SOURCE), "source": SOURCE, "mode": "map"}

            async def once() -> None:
                await pool.run(mapping, ITEMS, 5)  # type: ignore[call-arg, arg-type, unused-ignore]

        await once()
        times = []
        for _ in range(3):
            started = time.perf_counter()
            await once()
            times.append(time.perf_counter() - started)
    finally:
        await pool.stop()
    return f"pipe min {min(times) / len(ITEMS) * 1e9:.0f} ns/item"


async def million() -> str:
    from disruptor.snippets import SnippetEngine

    with tempfile.TemporaryDirectory() as tmp:
        engine = SnippetEngine(SnippetSettings(hosts_max=2), Path(tmp))
        await engine.start()
        batches = [list(range(i, i + 10_000)) for i in range(0, 1_000_000, 10_000)]
        if WIRE == "binary":
            chunks = [Chunk.of(b) for b in batches]

            async def once() -> None:
                await asyncio.gather(*(engine.run_chunk(c, source=SOURCE) for c in chunks))
        else:

            async def once() -> None:
                await asyncio.gather(*(engine.run_batch(b, source=SOURCE) for b in batches))

        try:
            await once()
            rates = []
            for _ in range(3):
                started = time.perf_counter()
                await once()
                rates.append(1e6 / (time.perf_counter() - started))
        finally:
            await engine.stop()
    return f"1M items median {statistics.median(rates) / 1e6:.2f}M items/s"


async def through_hosts() -> list[str]:
    # One event loop for both: trees of either age then start and reap their hosts alike.
    return [await pipe(), await million()]


def main() -> None:
    figures = [host_loop(), *asyncio.run(through_hosts())]
    print(f"{ROOT} ({WIRE} wire, load {os.getloadavg()[0]:.1f}): " + "; ".join(figures))


if __name__ == "__main__":
    main()
