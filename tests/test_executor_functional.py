"""``disruptor.Executor`` as a drop-in for ``ProcessPoolExecutor``, against real peer processes."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Iterator
from typing import Any

import pytest

import disruptor
from disruptor.errors import TaskFailed
from disruptor.home import Home

from .cluster import PeerProcess, wait_for

LINES = [f"line {n} has {'word ' * (n % 7)}words" for n in range(200)]


def count_words(line):  # type: ignore[no-untyped-def]
    return len(line.split())


def inverse(x):  # type: ignore[no-untyped-def]
    return 1 // x


def spin_on_negative(x):  # type: ignore[no-untyped-def]
    """Doubles ``x``; a negative ``x`` runs until its job is cancelled (or its timeout)."""
    if x < 0:
        while True:
            pass
    return x * 2


def word_counts(pool: concurrent.futures.Executor) -> list[int]:
    """Code written for a process pool, unchanged."""
    return list(pool.map(count_words, LINES, chunksize=10))


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    home = tmp_path_factory.mktemp("executor") / "home"
    Home(home).ensure()
    first = PeerProcess(home).wait_ready()
    second = PeerProcess(home, seeds=[first.address]).wait_ready()
    # The executor finds the API token in the data directory, like any client.
    saved = os.environ.get("DISRUPTOR_HOME")
    os.environ["DISRUPTOR_HOME"] = str(home)
    try:
        yield [first.address, second.address]
    finally:
        if saved is None:
            os.environ.pop("DISRUPTOR_HOME", None)
        else:
            os.environ["DISRUPTOR_HOME"] = saved
        second.stop()
        first.stop()


def test_same_code_same_results_as_a_process_pool(peers: list[str]) -> None:
    with concurrent.futures.ProcessPoolExecutor(2) as local:
        expected = word_counts(local)
    with disruptor.Executor(peers) as cluster:
        assert word_counts(cluster) == expected


def test_submit_gives_a_future_and_errors_are_the_peers_exceptions(peers: list[str]) -> None:
    with disruptor.Executor(peers) as pool:
        futures = [pool.submit(inverse, n) for n in (1, 0, 2)]
        concurrent.futures.wait(futures, timeout=60)
        assert futures[0].result() == 1
        assert futures[2].result() == 0
        with pytest.raises(TaskFailed, match="ZeroDivisionError"):
            futures[1].result()
        results = pool.map(inverse, [1, 0, 1])
        assert next(results) == 1
        with pytest.raises(TaskFailed):
            next(results)


def test_several_arguments_travel_as_one_list(peers: list[str]) -> None:
    source = "def handle(pair):\n    return pair[0] * pair[1]\n"
    with disruptor.Executor(peers) as pool:
        assert list(pool.map(source, [1, 2, 3], [4, 5, 6])) == [4, 10, 18]
        assert pool.submit(source, 6, 7).result(timeout=60) == 42


def test_shutdown_refuses_new_work(peers: list[str]) -> None:
    pool = disruptor.Executor(peers)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(count_words, "a b")


def test_first_peer_down_fails_over(peers: list[str]) -> None:
    dead = "127.0.0.1:9"  # discard port: nothing listens
    with disruptor.Executor([dead, *peers]) as pool:
        assert pool.submit(count_words, "one two three").result(timeout=60) == 3


def running_jobs(peer: str) -> list[dict[str, Any]]:
    with disruptor.Client(peer) as client:
        return list(client.request_json("GET", "/jobs")["running"])


def test_map_yields_each_result_as_it_arrives_not_when_the_last_does(peers: list[str]) -> None:
    # The last item spins until cancelled: the first results must come while it still runs.
    with disruptor.Executor(peers, timeout_s=120) as pool:
        results = pool.map(spin_on_negative, [1, 2, 3, -1], chunksize=1, timeout=60)
        assert [next(results), next(results), next(results)] == [2, 4, 6]
        assert len(running_jobs(peers[0])) == 1, "the job is still running"
        results.close()  # leaving early cancels the rest of the job
        wait_for(lambda: not running_jobs(peers[0]), 30, "the job to be cancelled")


def test_map_timeout_bounds_the_whole_iteration(peers: list[str]) -> None:
    with disruptor.Executor(peers, timeout_s=120) as pool:
        results = pool.map(spin_on_negative, [5, -1, 6], chunksize=1, timeout=3)
        assert next(results) == 10
        with pytest.raises(TimeoutError):
            next(results)
        # A timed-out iteration cancels its job, as a process pool cancels its futures.
        wait_for(lambda: not running_jobs(peers[0]), 30, "the timed-out job to be cancelled")


def test_chunksize_is_the_jobs_chunk_size(peers: list[str]) -> None:
    def latest_runs() -> list[int]:
        with disruptor.Client(peers[0]) as client:
            (latest, *_) = client.request_json("GET", "/jobs")["recent"]
            return sorted(run["count"] for run in client.job(latest["id"])["chunks"])

    expected = [count_words(line) for line in LINES[:30]]
    with disruptor.Executor(peers) as pool:
        assert list(pool.map(count_words, LINES[:30], chunksize=7)) == expected
        assert latest_runs() == [2, 7, 7, 7, 7]
        # As with a process pool, 1 means one item per task.
        assert list(pool.map(count_words, LINES[:30], chunksize=1)) == expected
        assert latest_runs() == [1] * 30
