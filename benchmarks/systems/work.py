"""The work every system runs, written once: the same functions for Ray, Dask and the process
pool, the same source text as disruptor snippets and bundle handlers.

Rule: each system computes exactly the same thing, and every answer is checked after the clock
stops, so a system that returns wrong or missing results fails instead of looking fast.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

LOOP_STEPS = 10
CHUNK_ITEMS = 1000  # items per Ray/Dask task and the pool's chunksize: disruptor's own maximum

DOUBLE_SOURCE = "def handle(item):\n    return item * 2\n"
LOOP_SOURCE = (
    "def handle(item):\n"
    "    total = 0\n"
    f"    for i in range({LOOP_STEPS}):\n"
    "        total += i * item\n"
    "    return total\n"
)


def ignore_interrupts() -> None:
    """A pool worker's initializer: Ctrl-C reaches the whole process group, and the harness
    alone decides how to stop (the pool is terminated with the rest)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def double(item: int) -> int:
    return item * 2


def double_chunk(items: list[int]) -> list[int]:
    return [item * 2 for item in items]


def chunks(count: int) -> list[list[int]]:
    """``range(count)`` cut into lists of ``CHUNK_ITEMS``."""
    return [list(range(i, min(i + CHUNK_ITEMS, count))) for i in range(0, count, CHUNK_ITEMS)]


def check_doubled(values: list[int], count: int) -> None:
    if len(values) != count or values != [2 * i for i in range(count)]:
        raise AssertionError(f"wrong results: {len(values)} values for {count} items")


def check_looped(values: list[int], count: int) -> None:
    factor = sum(range(LOOP_STEPS))
    if len(values) != count or values != [factor * i for i in range(count)]:
        raise AssertionError(f"wrong results: {len(values)} values for {count} items")


def write_bundle(
    root: Path, name: str, source: str, workers: int, payload_bytes: int = 0, seed: int = 0
) -> Path:
    """An app directory whose handler is ``source``, ``workers`` warm workers per peer, and
    ``payload_bytes`` of incompressible data (seeded, so every bundle is a new one)."""
    app = root / name
    app.mkdir(parents=True)
    (app / "bundle.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\n\n[worker]\nhandler = "handler:handle"\n'
        f"count = {workers}\n"
    )
    (app / "handler.py").write_text(source)
    if payload_bytes:
        (app / "payload.bin").write_bytes(random.Random(seed).randbytes(payload_bytes))
    return app
