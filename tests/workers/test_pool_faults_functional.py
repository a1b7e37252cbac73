"""Workers that break the protocol, crash, never start or hang: items fail clearly, the pool
recovers, and other bundles keep running."""

from __future__ import annotations

from typing import Any

import pytest

from disruptor.errors import Unprocessable

from .test_pool_functional import ECHO, values

# A handler that finds the runtime's private protocol pipe and writes to it directly: the one way
# Python code can still break the protocol (print() cannot).
PROTOCOL_WRITER = """\
    import os, stat
    def protocol_fd():
        for fd in range(3, 64):
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    return fd
            except OSError:
                pass
        raise RuntimeError("no protocol pipe")
    def handle(item):
        if item == "garbage":
            os.write(protocol_fd(), b"this is not json\\n")
        elif item == "long":
            os.write(protocol_fd(), b"x" * 200_000 + b"\\n")
        return item
"""


@pytest.mark.parametrize(
    ("protocol", "item", "words"),
    [
        (1, "garbage", "not JSON"),
        (1, "long", "longer than"),
        (2, "garbage", "exceeds the 65536-byte limit"),
        (2, "long", "exceeds the 65536-byte limit"),
    ],
)
async def test_garbage_or_over_long_stdout_line(
    make_pool: Any, protocol: int, item: str, words: str
) -> None:
    pool, bundles = await make_pool(
        line_bytes_max=64 * 1024, frame_bytes_max=64 * 1024, protocol_max=protocol
    )
    sha1 = bundles.add("writer", {"app.py": PROTOCOL_WRITER})
    other = bundles.add("echo", ECHO)
    (outcome,) = await pool.run_batch(sha1, [item])
    assert outcome.error is not None and outcome.error.kind == "protocol-error"
    assert words in outcome.error.message and "broke the protocol" in outcome.error.message
    # Retried once on a fresh worker (which broke it again), then failed: two protocol errors.
    assert pool.stats.protocol_errors == 2 and pool.stats.restarts >= 1
    assert values(await pool.run_batch(sha1, ["fine"])) == ["fine"], "the pool recovered"
    assert values(await pool.run_batch(other, [1])) == [1]


async def test_worker_that_exits_at_once_marks_the_bundle_failed(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    sha1 = bundles.add(
        "dies",
        {},
        command=["sh", "-c", "echo 'fatal: cannot open the model' >&2; exit 3"],
    )
    other = bundles.add("echo", ECHO)
    outcomes = await pool.run_batch(sha1, [1, 2])
    for outcome in outcomes:
        assert outcome.error is not None and outcome.error.kind == "worker-crashed"
        assert "cannot open the model" in outcome.error.message
        assert "status 3" in outcome.error.message
    assert sha1 in pool.failed_bundles() and "crashed 3 times" in pool.failed_bundles()[sha1]
    assert pool.stats.crashes == 3 and pool.stats.bundles_failed == 1
    # Failed means no more restarts: a new request fails at once, without starting anything.
    started = pool.stats.workers_started
    (again,) = await pool.run_batch(sha1, [3])
    assert again.error is not None and pool.stats.workers_started == started
    # Starting it explicitly tries again, and says why it fails.
    with pytest.raises(Unprocessable, match="cannot open the model"):
        await pool.start_workers(sha1)
    assert values(await pool.run_batch(other, ["still serving"])) == ["still serving"]


async def test_handler_that_fails_to_import_reports_its_traceback(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    sha1 = bundles.add("badimport", {"app.py": "import no_such_module_here\n"})
    with pytest.raises(Unprocessable, match="no_such_module_here"):
        await pool.start_workers(sha1)
    assert pool.workers() == []


async def test_worker_that_never_says_ready_is_killed(make_pool: Any) -> None:
    pool, bundles = await make_pool(ready_timeout_s=1.0)
    sha1 = bundles.add("silent", {}, command=["sleep", "1000"])
    with pytest.raises(Unprocessable, match="did not say ready within 1s"):
        await pool.start_workers(sha1)
    assert pool.workers() == [] and pool.stats.workers_running == 0


async def test_worker_crash_mid_call_is_retried_once_then_fails_with_stderr(
    make_pool: Any,
) -> None:
    pool, bundles = await make_pool()
    code = """\
        import os, sys
        def handle(item):
            if item == "die":
                print("about to die on", item, file=sys.stderr, flush=True)
                os._exit(7)
            return item
    """
    sha1 = bundles.add("crashy", {"app.py": code}, worker="count = 2")
    await pool.start_workers(sha1)
    outcomes = await pool.run_batch(sha1, ["die", 0, 1, 2, 3, 4])
    error = outcomes[0].error
    assert error is not None and error.kind == "worker-crashed"
    assert "status 7" in error.message and "about to die on die" in error.message
    assert pool.stats.crashes == 2, "the lost call ran once more, then failed"
    assert sha1 not in pool.failed_bundles()
    assert values(await pool.run_batch(sha1, ["after"])) == ["after"]


async def test_hanging_task_times_out_and_its_worker_is_replaced(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        import time
        def handle(item):
            if item == "hang":
                time.sleep(3600)
            return item
    """
    sha1 = bundles.add("hangs", {"app.py": code}, worker="timeout_s = 60")
    (outcome,) = await pool.run_batch(sha1, ["hang"], timeout_s=1.0)
    assert outcome.error is not None and outcome.error.kind == "task-timeout"
    assert "timeout of 1s" in outcome.error.message
    assert pool.stats.timeouts == 1 and pool.stats.crashes == 0
    assert values(await pool.run_batch(sha1, ["quick"])) == ["quick"]
    (info,) = pool.workers()
    assert info.restarts == 1 and info.state == "ready"
