"""What a hostile worker cannot do: read the peer's secrets, reach the network under bubblewrap,
outgrow its memory, file or process limits, or leave anything running after it is stopped."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from disruptor.workers.isolation import processes_of_uid

from ..cluster import eventually
from .conftest import HAS_BWRAP, IS_ROOT, MODES
from .test_pool_functional import ECHO, values

PROBE = """\
    import os
    def handle(path):
        try:
            with open(path) as f:
                return {"read": f.read()}
        except OSError as exc:
            pass
        try:
            return {"listed": os.listdir(os.path.dirname(path))}
        except OSError as exc2:
            return {"denied": type(exc2).__name__}
"""


@pytest.mark.parametrize("mode", MODES)
async def test_worker_cannot_read_the_peers_secrets(
    make_pool: Any, data_root: Path, mode: str
) -> None:
    if mode == "plain" and not IS_ROOT:
        pytest.skip("plain mode as the peer's own user shares its files (see SECURITY.md)")
    pool, bundles = await make_pool(mode)
    sha1 = bundles.add("probe", {"app.py": PROBE})
    targets = [
        data_root / "cluster.secret",
        data_root / "api.token",
        data_root / "keys" / "signing.key",
        data_root / "peers" / "whatever",
    ]
    outcomes = values(await pool.run_batch(sha1, [str(t) for t in targets]))
    for target, outcome in zip(targets, outcomes, strict=True):
        assert "read" not in outcome and "listed" not in outcome, (target, outcome)
    if mode == "bwrap":
        # The data directory is not even there inside the sandbox.
        assert {o["denied"] for o in outcomes} == {"FileNotFoundError"}


@pytest.mark.skipif(not HAS_BWRAP, reason="bwrap not installed")
async def test_no_network_under_bubblewrap(make_pool: Any) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = """\
        import socket
        def handle(target):
            host, port = target
            try:
                socket.create_connection((host, port), timeout=5).close()
                return "connected"
            except OSError as exc:
                return type(exc).__name__
    """
    try:
        pool, bundles = await make_pool("bwrap")
        sha1 = bundles.add("net", {"app.py": code})
        results = values(await pool.run_batch(sha1, [["127.0.0.1", port], ["192.0.2.1", 80]]))
        assert "connected" not in results, results
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody reached the peer's loopback
    finally:
        server.close()


async def test_memory_limit_fails_the_item_not_the_peer(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        def handle(megabytes):
            block = bytearray(megabytes * 1024 * 1024)
            return len(block)
    """
    sha1 = bundles.add("hog", {"app.py": code}, limits="memory_mb = 128")
    big, small = await pool.run_batch(sha1, [1024, 1])
    assert big.error is not None and big.error.type == "MemoryError"
    assert small.value == 1024 * 1024
    assert values(await pool.run_batch(sha1, [2])) == [2 * 1024 * 1024]


async def test_file_size_limit_stops_a_disk_filler(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        import os
        def handle(megabytes):
            path = os.path.join(os.environ["HOME"], "fill")
            with open(path, "wb") as f:
                for _ in range(megabytes):
                    f.write(b"\\0" * (1024 * 1024))
            return os.path.getsize(path)
    """
    sha1 = bundles.add("filler", {"app.py": code}, limits="file_mb = 2")
    filled, ok = await pool.run_batch(sha1, [50, 1])
    assert filled.error is not None and "File too large" in filled.error.message
    assert ok.value == 1024 * 1024
    scratch_usage = sum(
        p.stat().st_size for p in (pool.work_dir / "scratch").rglob("*") if p.is_file()
    )
    assert scratch_usage <= 2 * 1024 * 1024


@pytest.mark.skipif(not IS_ROOT, reason="the process limit binds only a non-root worker uid")
async def test_fork_bomb_is_capped_and_cleaned_up(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        import os, time
        def handle(item):
            if item != "bomb":
                return item
            refused = 0
            if os.fork() == 0:
                # Every descendant keeps forking: the classic bomb, minus the shell.
                while True:
                    try:
                        os.fork()
                    except OSError:
                        refused += 1
                        time.sleep(0.01)
            return "detonated"
    """
    sha1 = bundles.add("bomb", {"app.py": code}, limits="processes = 8")
    other = bundles.add("echo", ECHO)
    assert values(await pool.run_batch(sha1, ["bomb"])) == ["detonated"]
    (info,) = pool.workers()
    assert info.uid is not None
    await eventually(lambda: len(processes_of_uid(info.uid)) >= 8, "eight processes of the uid")
    assert len(processes_of_uid(info.uid)) <= 8, "the process limit held"
    assert values(await pool.run_batch(other, ["peer still serving"])) == ["peer still serving"]
    await pool.stop_workers(sha1)
    assert processes_of_uid(info.uid) == []


DAEMON = """\
    import os, time
    def handle(item):
        # Double fork and setsid: the classic daemon, which leaves its parent's process group.
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(3600)
            os._exit(0)
        os.wait()
        return "daemon started"
"""


@pytest.mark.skipif(not IS_ROOT, reason="tracking by uid needs a dedicated worker uid")
@pytest.mark.parametrize("mode", MODES)
async def test_stopping_a_worker_kills_its_daemonised_grandchildren(
    make_pool: Any, mode: str
) -> None:
    pool, bundles = await make_pool(mode)
    sha1 = bundles.add("daemon", {"app.py": DAEMON})
    assert values(await pool.run_batch(sha1, [1])) == ["daemon started"]
    (info,) = pool.workers()
    assert info.uid is not None
    before = processes_of_uid(info.uid)
    assert len(before) >= 2, "the worker and its daemon run as the worker's uid"
    await pool.stop_workers(sha1)
    assert processes_of_uid(info.uid) == []
