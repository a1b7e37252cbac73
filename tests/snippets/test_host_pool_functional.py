"""Real host processes: the watchdog for C-level runaways, memory limits, the fence around hosts."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from disruptor.chunks import Chunk
from disruptor.errors import Overloaded, Unavailable
from disruptor.outcome import ItemOutcome
from disruptor.snippets.host_pool import HostPool, host_command
from disruptor.snippets.host_wire import Mode, Part, Ready, Run, Started, encode_frame, encode_raw
from disruptor.snippets.names import snippet_sha1
from disruptor.snippets.settings import SnippetSettings

from ..cluster import eventually

FAST = SnippetSettings(item_timeout_s=0.5, watchdog_grace_s=0.5, hosts_max=2, hosts_prestart=0)


def host_children() -> list[int]:
    """This process's children that are snippet hosts."""
    found = []
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"disruptor.snippets.host_main" in cmdline:
                found.append(int(pid))
    return found


async def values_of(pool: HostPool, source: str, items: list[Any]) -> list[Any]:
    return [o.value for o in await run_items(pool, source, items, 2.0)]


async def run_items(
    pool: HostPool, source: str, items: list[Any], timeout_s: float
) -> list[ItemOutcome]:
    """Map ``source`` over ``items`` on the pool, as one chunk; one outcome per item."""
    chunk = Chunk.of(items)
    run = Run(snippet_sha1(source), source, Mode.MAP, timeout_s, chunk.count, chunk.data)
    return (await pool.run(run)).outcomes()


async def test_watchdog_kills_a_host_stuck_in_c_code() -> None:
    # Catastrophic regex backtracking runs inside the C regex engine: no tick can interrupt it.
    source = (
        "import re\ndef handle(item):\n"
        "    return bool(re.match('(a+)+$', 'a' * item + 'b')) if item else 'fine'\n"
    )
    pool = HostPool(FAST)
    try:
        outcomes = await run_items(pool, source, [0, 64, 0], timeout_s=0.5)
    finally:
        await pool.stop()
    assert outcomes[0].value == "fine" and outcomes[2].value == "fine"
    error = outcomes[1].error
    assert error is not None and error.kind == "snippet-budget" and "watchdog" in error.message
    assert pool.stats.watchdog_kills >= 1


async def test_memory_limit_fails_the_item_and_the_next_batch_runs() -> None:
    source = "def handle(item):\n    return len([bytes(10**6) for i in range(item)])\n"
    pool = HostPool(FAST)
    try:
        first = await run_items(pool, source, [10_000], timeout_s=5)
        second = await run_items(pool, source, [3], timeout_s=5)
    finally:
        await pool.stop()
    assert first[0].error is not None and first[0].error.kind == "snippet-budget"
    assert "memory" in first[0].error.message
    assert second[0].value == 3


async def test_hosts_hold_no_environment_no_descriptors_and_no_working_directory() -> None:
    os.environ["DISRUPTOR_TEST_CANARY"] = "canary-in-the-peer-environment"
    pool = HostPool(FAST)
    try:
        host = await pool.acquire()
        pid = host.pid
        assert host_children() == [pid]
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        fds = {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
        cwd = os.readlink(f"/proc/{pid}/cwd")
        limits = Path(f"/proc/{pid}/limits").read_text()
        await pool.release(host)
    finally:
        del os.environ["DISRUPTOR_TEST_CANARY"]
        await pool.stop()
    assert environ == b""
    assert sorted(fds) == [0, 1, 2]
    assert fds[0].startswith("pipe:") and fds[1].startswith("pipe:") and fds[2] == "/dev/null"
    assert cwd == "/"
    assert "Max address space" in limits and str(FAST.memory_mb * 1024 * 1024) in limits


async def test_two_hosts_serve_two_batches_at_once() -> None:
    slow = "def handle(item):\n    while True:\n        pass\n"
    quick = "def handle(item):\n    return item + 1\n"
    pool = HostPool(FAST)
    try:
        runaway = asyncio.create_task(run_items(pool, slow, [1], timeout_s=1.5))
        await eventually(
            lambda: pool.stats.batches_running >= 1, "the runaway to start", timeout_s=30
        )
        result = await run_items(pool, quick, [41], timeout_s=1.5)
        # The quick batch finished while the runaway still holds the other host.
        assert not runaway.done()
        assert result[0].value == 42
        stopped = await runaway
    finally:
        await pool.stop()
    assert stopped[0].error is not None and "time budget" in stopped[0].error.message


async def test_stopping_while_hosts_start_leaves_no_process_behind() -> None:
    pool = HostPool(SnippetSettings(hosts_prestart=2, hosts_max=2))
    await pool.start()
    # Let the first host start, so that stop meets one running and one starting.
    await eventually(lambda: pool.stats.hosts_started >= 1, "a host to start", timeout_s=30)
    await pool.stop()
    assert pool.stats.hosts_running == 0
    # Whatever had been spawned is gone (killed and reaped), and later calls are refused.
    assert host_children() == []
    with pytest.raises(Overloaded):
        await pool.acquire()


async def test_the_watchdog_blames_one_item_of_a_long_chunk_and_the_rest_complete() -> None:
    source = (
        "import re\ndef handle(item):\n"
        "    return bool(re.match('(a+)+$', 'a' * 64 + 'b')) if item == 1500 else item * 3\n"
    )
    pool = HostPool(FAST)
    try:
        outcomes = await run_items(pool, source, list(range(3000)), timeout_s=0.5)
    finally:
        await pool.stop()
    assert len(outcomes) == 3000
    assert [o.value for o in outcomes if o.error is None] == [
        i * 3 for i in range(3000) if i != 1500
    ]
    error = outcomes[1500].error
    assert error is not None and error.kind == "snippet-budget" and "watchdog" in error.message
    assert pool.stats.hosts_started >= 2


# A host impostor: it answers its first request with ``frames`` then ``tail`` (garbage) and
# waits to be killed; started again (a marker file says so) it becomes a real host.
IMPOSTOR = """
import os, sys, time
marker, real = sys.argv[1], sys.argv[2:]
if os.path.exists(marker):
    os.execv(real[0], real)
open(marker, "w").close()
out = sys.stdout.buffer
out.write(bytes.fromhex(READY))
out.flush()
header = sys.stdin.buffer.read(5)
sys.stdin.buffer.read(int.from_bytes(header[:4], "big"))
out.write(bytes.fromhex(REPLY))
out.flush()
time.sleep(60)
"""


def impostor(tmp_path: Path, ready: bytes, reply: bytes) -> list[str]:
    script = IMPOSTOR.replace("READY", repr(ready.hex())).replace("REPLY", repr(reply.hex()))
    return [
        sys.executable,
        "-c",
        script,
        str(tmp_path / "impostor-ran"),
        *host_command(FAST),
    ]


READY = encode_frame(Ready(pid=1))
GARBAGE = b"\x00\x00\x00\x03\x01\xc1\xc1\xc1"


@pytest.mark.parametrize(
    "tail",
    [GARBAGE, struct.pack(">IB", 1 << 30, 1), encode_frame(Ready(pid=2))],
    ids=["garbage", "oversized", "unexpected-frame"],
)
async def test_a_host_that_breaks_the_wire_is_replaced_and_the_chunk_completes(
    tmp_path: Path, tail: bytes
) -> None:
    # Started, the first item's part (a made-up 99), then something that is not the wire.
    reply = encode_frame(Started(cached=False)) + encode_frame(Part(0, encode_raw([99]))) + tail
    pool = HostPool(FAST, command=impostor(tmp_path, READY, reply))
    try:
        outcomes = await run_items(pool, "def handle(item):\n    return item * 2\n", [5, 6, 7], 2.0)
        again = await run_items(pool, "def handle(item):\n    return -item\n", [1], 2.0)
    finally:
        await pool.stop()
    # Nothing was blamed for a host's fault while parts were buffered: the rest ran again, one
    # item a part, on a fresh (real) host.
    assert [o.value for o in outcomes] == [99, 12, 14]
    assert [o.value for o in again] == [-1]
    assert pool.stats.protocol_errors == 1 and pool.stats.hosts_started == 2
    assert host_children() == []


async def test_a_host_that_never_says_ready_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    pool = HostPool(FAST, command=impostor(tmp_path, GARBAGE, b""))
    try:
        with pytest.raises(Unavailable):
            await run_items(pool, "def handle(item):\n    return item\n", [1], 2.0)
        # The impostor's marker now makes the next start a real host.
        assert await values_of(pool, "def handle(item):\n    return item\n", [4]) == [4]
    finally:
        await pool.stop()


async def test_idle_hosts_stop_and_the_next_run_starts_one() -> None:
    pool = HostPool(dataclasses.replace(FAST, hosts_idle_s=0.2))
    try:
        assert await values_of(pool, "def handle(item):\n    return item\n", [1]) == [1]
        await eventually(
            lambda: pool.stats.hosts_running == 0, "the idle host to stop", timeout_s=30
        )
        assert pool.stats.hosts_expired == 1 and host_children() == []
        assert await values_of(pool, "def handle(item):\n    return item\n", [2]) == [2]
        assert pool.stats.hosts_started == 2
    finally:
        await pool.stop()


async def test_a_run_cancelled_midway_never_hands_its_replies_to_the_next() -> None:
    slow = (
        "def handle(item):\n    n = 0\n    while n < 200000:\n        n += 1\n    return 'slow'\n"
    )
    pool = HostPool(dataclasses.replace(FAST, hosts_max=1))
    try:
        running = asyncio.create_task(run_items(pool, slow, list(range(50)), 5.0))
        await eventually(
            lambda: pool.stats.parts >= 1, "the slow run to answer a part", timeout_s=30
        )
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        # The host still owed the slow run's parts: it was stopped, not handed on.
        assert await values_of(pool, "def handle(item):\n    return item + 1\n", [1, 2]) == [2, 3]
        assert pool.stats.hosts_started == 2
    finally:
        await pool.stop()
