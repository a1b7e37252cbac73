"""Jobs that report as they go, against a real peer: ``start`` handles (async and blocking),
``progress=True`` bars, and ``stream`` on the job stream's pieces."""

from __future__ import annotations

import asyncio

import pytest

from disruptor.client import AsyncClient, Client, Progress
from disruptor.errors import JobCancelled
from disruptor.home import Home
from disruptor.peer import Peer

from ..cluster import eventually, wait_for

DOUBLE = "def handle(item):\n    return item * 2\n"
# Doubles an item; a negative one runs until its job is cancelled (or its item timeout).
SPIN_ON_NEGATIVE = "def handle(item):\n    while item < 0:\n        pass\n    return item * 2\n"


async def test_a_started_job_shows_its_progress_while_it_runs_and_can_be_cancelled(
    peer: Peer, home: Home
) -> None:
    async with AsyncClient(peer.url, home=home) as client:
        job = await client.start(SPIN_ON_NEGATIVE, [1, 2, 3, -1], chunk_size=1, timeout_s=120)
        await eventually(lambda: job.progress.done == 3, "three items to be done")
        assert job.progress == Progress(done=3, total=4, failed=0)
        assert not job.done() and job.state == "running"
        assert job.id is not None and job.id in {j["id"] for j in peer.jobs.in_flight()}
        await job.cancel()
        assert job.state == "cancelled"
        with pytest.raises(JobCancelled):
            await job.result()
        await eventually(lambda: not peer.jobs.in_flight(), "the job to stop at the peer")


async def test_the_blocking_job_handle_from_another_thread(peer: Peer, home: Home) -> None:
    def use_handle() -> tuple[list[Progress], bool, str, list[int]]:
        with Client(peer.url, home=home) as client:
            spinning = client.start(SPIN_ON_NEGATIVE, [5, -1], chunk_size=1, timeout_s=120)
            wait_for(lambda: spinning.progress.done == 1, 30, "the first item to be done")
            seen = [spinning.progress]
            waited = spinning.wait(timeout_s=0.2)  # the spinning item keeps it running
            spinning.cancel()
            assert spinning.wait(timeout_s=30)
            finished = client.start(DOUBLE, range(10), chunk_size=3)
            values = finished.result(timeout_s=60)
            seen.append(finished.progress)
            return seen, waited, spinning.state, values

    # The client blocks; the peer runs on this test's loop, so the client runs in a thread.
    seen, waited, state, values = await asyncio.to_thread(use_handle)
    assert seen == [Progress(1, 2), Progress(10, 10)]
    assert not waited and state == "cancelled"
    assert values == [2 * n for n in range(10)]


async def test_progress_true_draws_a_bar_and_gives_the_same_answers(
    peer: Peer, home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "def handle(item):\n    return 10 // item\n"
    async with AsyncClient(peer.url, home=home) as client:
        assert await client.map(DOUBLE, range(12), chunk_size=4, progress=True) == [
            2 * n for n in range(12)
        ]
        folded = await client.map(
            DOUBLE, range(4), reduce="def reduce(values):\n    return sum(values)\n", progress=True
        )
        outcomes = await client.outcomes(source, [1, 0, 5], chunk_size=1, progress=True)
    assert folded == 12
    assert [o.value for o in outcomes] == [10, None, 2]
    assert outcomes[1].error is not None and outcomes[1].error.type == "ZeroDivisionError"
    err = capsys.readouterr().err
    assert "12/12" in err and "4/4" in err and "3/3" in err and "failed=1" in err


async def test_stream_yields_pieces_as_they_arrive_and_leaving_early_cancels(
    peer: Peer, home: Home
) -> None:
    async with AsyncClient(peer.url, home=home) as client:
        got = {}
        stream = client.stream(SPIN_ON_NEGATIVE, [4, 5, -1], chunk_size=1, timeout_s=120)
        async for index, value in stream:
            got[index] = value
            if len(got) == 2:
                break
        await stream.aclose()
        assert got == {0: 8, 1: 10}
        await eventually(lambda: not peer.jobs.in_flight(), "the left job to be cancelled")
        assert peer.jobs.recent()[0]["state"] == "cancelled"


async def test_leaving_a_blocking_stream_early_cancels_its_job(peer: Peer, home: Home) -> None:
    def take_two() -> dict[int, int]:
        with Client(peer.url, home=home) as client:
            got = {}
            results = client.stream(SPIN_ON_NEGATIVE, [4, 5, -1], chunk_size=1, timeout_s=120)
            for index, value in results:
                got[index] = value
                if len(got) == 2:
                    break
            results.close()  # what the end of a for loop's scope does, said at once
            return got

    assert await asyncio.to_thread(take_two) == {0: 8, 1: 10}
    await eventually(lambda: not peer.jobs.in_flight(), "the left job to be cancelled")
    assert peer.jobs.recent()[0]["state"] == "cancelled"
