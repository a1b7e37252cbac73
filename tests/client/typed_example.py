"""A script as a user writes one with the client: ``Client``, ``AsyncClient`` and ``Executor``.

``test_typed_example_functional.py`` type-checks it with ``mypy --strict`` (it must pass, and a
copy with a misspelt method or option must not) and runs it against a real peer, so the types the
client declares are those it returns. Run it yourself: ``python typed_example.py HOST:PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import disruptor
from disruptor.client import Job, JobOptions


def square(x: int) -> int:  # shipped to the peers as a sandboxed snippet
    return x * x


TOTAL = "def reduce(values):\n    return sum(values)\n"


def with_client(peers: Sequence[str]) -> int:
    options: JobOptions = {"policy": "round-robin", "chunk_size": 2, "timeout_s": 10.0}
    with disruptor.Client(peers) as client:
        squares = client.map(square, range(10), **options)
        total = client.map(square, range(10), reduce=TOTAL)
        assert sum(squares) == total == 285

        job: Job = client.start(square, range(100), chunk_size=10)
        assert job.wait(timeout_s=60), f"{job!r} still running"
        print(f"job {job.id}: {job.progress.done} of {job.progress.total} done")
        assert job.result()[99] == 9801

        firsts = {index: value for index, value in client.stream(square, [3, 4])}
        outcomes = client.outcomes("def handle(x):\n    return 1 // x\n", [1, 0], retries=0)
        failed = [outcome.error.type for outcome in outcomes if outcome.error is not None]
        one: int = client.submit(square, [5]).result(timeout=60)[0]
        return int(firsts[0] + firsts[1]) + len(failed) + one


async def with_async_client(peers: Sequence[str]) -> int:
    async with disruptor.AsyncClient(peers) as client:
        values = await client.map(square, range(5), policy="least-loaded")
        job = await client.start(square, range(20), chunk_size=5)
        await job.wait()
        streamed: list[int] = [value async for _, value in client.stream(square, range(3))]
        return int(sum(values) + sum(await job.result())) + sum(streamed)


def with_executor(peers: Sequence[str]) -> list[int]:
    with disruptor.Executor(peers, policy="least-loaded") as pool:
        return list(pool.map(square, range(8), chunksize=2, timeout=60))


def main(peers: Sequence[str]) -> None:
    assert with_client(peers) == 9 + 16 + 1 + 25
    assert asyncio.run(with_async_client(peers)) == 30 + 2470 + 5
    assert with_executor(peers) == [n * n for n in range(8)]
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
