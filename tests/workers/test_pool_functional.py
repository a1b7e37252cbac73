"""The pool with real worker processes: results, batching, drain, and every hostile worker.

Each hostile bundle is written on the spot; each test checks the affected items get a clear
error, the pool recovers (the next item runs), and other bundles keep working.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from disruptor.errors import InvalidName, NotFound, Overloaded, Unprocessable
from disruptor.outcome import ItemOutcome
from disruptor.workers.isolation import processes_of_uid

from ..cluster import eventually
from .conftest import IS_ROOT, MODES

ECHO = {"app.py": "def handle(item):\n    return item\n"}
REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
WHERE_AM_I = """\
import os
def handle(item):
    bundle = os.environ["WORKER_BUNDLE_DIR"]
    with open(os.path.join(os.environ["PWD"], "app.py")) as f:
        source = f.read()
    here = os.path.samestat(os.stat("."), os.stat(bundle))
    return [dict(os.environ), os.getuid(), here, source]
"""


def values(outcomes: list[ItemOutcome]) -> list[Any]:
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if o.error]
    return [o.value for o in outcomes]


@pytest.mark.parametrize("mode", MODES)
async def test_items_come_back_in_order_from_several_workers(make_pool: Any, mode: str) -> None:
    pool, bundles = await make_pool(mode)
    sha1 = bundles.add(
        "double",
        {"app.py": "import os\nME = os.urandom(8).hex()\ndef handle(x):\n    return [x * 2, ME]\n"},
        worker="count = 2",
    )
    await pool.start_workers(sha1)
    outcomes = await pool.run_batch(sha1, list(range(40)))
    assert [v[0] for v in values(outcomes)] == [i * 2 for i in range(40)]
    assert len({v[1] for v in values(outcomes)}) == 2, "both warm workers took work"
    infos = pool.workers()
    assert {i.state for i in infos} == {"ready"} and {i.isolation for i in infos} == {mode}
    assert sum(i.tasks_done for i in infos) == 40 and pool.stats.tasks_done == 40
    assert pool.stats.workers_running == 2


async def test_one_items_error_leaves_the_others(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    sha1 = bundles.add("div", {"app.py": "def handle(item):\n    return 10 // item\n"})
    outcomes = await pool.run_batch(sha1, [5, 0, 2])
    assert outcomes[0].value == 2 and outcomes[2].value == 5
    error = outcomes[1].error
    assert error is not None and error.kind == "task-failed" and error.type == "ZeroDivisionError"
    assert error.traceback is not None and "app.py" in error.traceback
    assert "worker_runtime.py" not in error.traceback, "the runtime's own frames are left out"


async def test_print_and_fd1_writes_cannot_corrupt_the_protocol(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        import os, sys
        def handle(item):
            print("chatty handler", item)
            sys.stdout.write("more chatter\\n")
            os.write(1, b"raw bytes on fd 1\\n")
            return item + 1
    """
    sha1 = bundles.add("chatty", {"app.py": code})
    assert values(await pool.run_batch(sha1, [1, 2, 3])) == [2, 3, 4]


async def test_setup_batch_and_vendor_imports(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    files = {
        "app.py": """\
            import helper  # found in vendor/
            STATE = {}
            def setup():
                STATE["calls"] = 0
                STATE["ready"] = helper.GREETING
            def handle(items):
                STATE["calls"] += 1
                return [f"{STATE['ready']} {i} (call {STATE['calls']})" for i in items]
            handle.batch = True
        """,
        "vendor/helper.py": 'GREETING = "hello"\n',
    }
    sha1 = bundles.add("batchy", files)
    assert values(await pool.run_batch(sha1, ["a", "b"])) == [
        "hello a (call 1)",
        "hello b (call 1)",
    ]


async def test_batch_handler_that_raises_fails_its_call_only(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        def handle(items):
            if "bad" in items:
                raise ValueError("bad batch")
            return [i.upper() for i in items]
        handle.batch = True
    """
    sha1 = bundles.add("batchfail", {"app.py": code})
    bad = await pool.run_batch(sha1, ["x", "bad"])
    assert all(o.error is not None and o.error.message == "bad batch" for o in bad)
    assert values(await pool.run_batch(sha1, ["ok"])) == ["OK"]


async def test_concurrency_runs_calls_at_once_for_async_and_threads(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    # A barrier of 4 opens only if 4 items run at the same time in the one worker.
    async_code = """\
        import asyncio
        BARRIER = None
        async def handle(item):
            global BARRIER
            BARRIER = BARRIER or asyncio.Barrier(4)
            await asyncio.wait_for(BARRIER.wait(), 30)
            return item
    """
    thread_code = """\
        import threading
        BARRIER = threading.Barrier(4, timeout=30)
        def handle(item):
            BARRIER.wait()
            return item
    """
    for name, code in (("async4", async_code), ("threads4", thread_code)):
        sha1 = bundles.add(name, {"app.py": code}, worker="concurrency = 4")
        assert values(await pool.run_batch(sha1, [1, 2, 3, 4])) == [1, 2, 3, 4]
        assert len(pool.workers()) >= 1


@pytest.mark.parametrize("mode", MODES)
async def test_environment_is_scrubbed_and_worker_is_not_root(
    make_pool: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("DISRUPTOR_API_TOKEN", "leak-me")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak-me-too")
    pool, bundles = await make_pool(mode)
    sha1 = bundles.add("env", {"app.py": WHERE_AM_I}, worker='env = { GREETING = "hi" }')
    ((env, uid, starts_in_bundle, read_through_pwd),) = values(await pool.run_batch(sha1, [None]))
    assert env["GREETING"] == "hi"
    assert "leak-me" not in str(env) and not any(k.startswith("DISRUPTOR_") for k in env)
    assert set(env) <= {
        "GREETING",
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_CTYPE",
        "WORKER_BUNDLE_DIR",
        "WORKER_SCRATCH_DIR",
        "PWD",
    }
    # It starts in its bundle directory, which PWD and WORKER_BUNDLE_DIR name by a path it can
    # use (in plain mode as root, getcwd()'s answer runs through directories closed to its uid).
    assert starts_in_bundle and env["PWD"] == env["WORKER_BUNDLE_DIR"]
    assert read_through_pwd == WHERE_AM_I
    if IS_ROOT:
        assert uid != 0 and uid == pool.workers()[0].uid


async def test_stop_drains_work_in_flight_first(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    code = """\
        import time
        def handle(item):
            time.sleep(item)
            return "finished"
    """
    sha1 = bundles.add("slow", {"app.py": code})
    await pool.start_workers(sha1)
    running = asyncio.create_task(pool.run_batch(sha1, [0.5]))
    await eventually(lambda: pool.tasks_running == 1, "one task running")
    await pool.stop_workers(sha1)
    assert values(await running) == ["finished"]
    assert pool.workers() == [] and pool.stats.workers_running == 0
    assert pool.stats.crashes == 0


async def test_bounded_queue_refuses_with_overloaded(make_pool: Any) -> None:
    pool, bundles = await make_pool(queue_items_max=5)
    sha1 = bundles.add("echo", ECHO)
    with pytest.raises(Overloaded) as caught:
        await pool.run_batch(sha1, list(range(6)))
    assert caught.value.retry_after_s > 0 and pool.stats.overloaded_refusals == 1
    assert values(await pool.run_batch(sha1, [1, 2])) == [1, 2]


async def test_unknown_and_misnamed_bundles_are_refused(make_pool: Any) -> None:
    pool, _ = await make_pool()
    with pytest.raises(NotFound):
        await pool.run_batch("0" * 40, [1])
    with pytest.raises(InvalidName):
        await pool.run_batch("../etc", [1])


async def test_start_count_and_list(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    sha1 = bundles.add("echo", ECHO)
    started = await pool.start_workers(sha1, 3)
    assert len(started) == 3 and all(w.state == "ready" and w.pid for w in started)
    assert len(await pool.start_workers(sha1, 1)) == 1 and len(pool.workers()) == 4
    await pool.stop_workers(sha1)
    assert pool.workers() == []
    with pytest.raises(NotFound):
        await pool.stop_workers(sha1)


# --- example bundles of the repository ---


async def test_wordcount_example_with_its_vendored_stemmer(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    bundles.source.directories["1" * 40] = REPO_BUNDLES / "wordcount"
    text = "The First World War was to be the war to end all wars."
    (result,) = values(await pool.run_batch("1" * 40, [text]))
    assert (result["total"], result["unique"]) == (13, 9)
    assert result["counts"]["war"] == 3


async def test_primes_example(make_pool: Any) -> None:
    pool, bundles = await make_pool()
    bundles.source.directories["2" * 40] = REPO_BUNDLES / "primes"
    outcomes = await pool.run_batch("2" * 40, [100, {"factor": 600851475143}, "x"])
    assert outcomes[0].value == {"below": 100, "count": 25, "largest": 97}
    assert outcomes[1].value == {"factor": 600851475143, "factors": [71, 839, 1471, 6857]}
    assert outcomes[2].error is not None and outcomes[2].error.type == "TypeError"


@pytest.mark.parametrize("mode", MODES)
async def test_perl_worker_proves_the_protocol_is_language_neutral(
    make_pool: Any, mode: str
) -> None:
    pool, bundles = await make_pool(mode)
    bundles.source.directories["3" * 40] = REPO_BUNDLES / "stats-perl"
    outcomes = await pool.run_batch("3" * 40, [[1, 2, 3, 4], [], [5]])
    assert outcomes[0].value == {"count": 4, "sum": 10, "mean": 2.5, "min": 1, "max": 4}
    assert outcomes[1].error is not None and "empty" in outcomes[1].error.message
    assert outcomes[2].value["mean"] == 5
    await pool.stop_workers("3" * 40)
    assert pool.stats.crashes == 0, "the perl worker exits cleanly on shutdown"


def uid_processes(uid: int | None) -> list[int]:
    return processes_of_uid(uid) if uid is not None else []


__all__ = ["Unprocessable", "uid_processes"]


async def test_cancelled_queued_work_never_reaches_a_worker(make_pool: Any) -> None:
    pool, bundles = await make_pool("plain")
    sha1 = bundles.add(
        "remember",
        {
            "app.py": """
                import time
                seen = []

                def handle(item):
                    if item == "block":
                        time.sleep(1.0)
                        return "blocked"
                    if item == "seen":
                        return list(seen)
                    seen.append(item)
                    return item
            """
        },
        worker="count = 1\nconcurrency = 1",
    )
    await pool.start_workers(sha1)
    blocking = asyncio.create_task(pool.run_batch(sha1, ["block"]))
    await eventually(lambda: pool.tasks_running == 1, "one task running")
    abandoned = asyncio.create_task(pool.run_batch(sha1, ["abandoned"]))
    await eventually(lambda: pool.queue_items == 1, "one item queued")
    abandoned.cancel()
    assert [o.value for o in await blocking] == ["blocked"]
    (seen,) = await pool.run_batch(sha1, ["seen"])
    assert seen.value == []
    assert pool.stats.queue_items == 0
