"""Handles on a running job: ``AsyncJob`` for asyncio code, ``Job`` for any thread (notebooks).

``client.start(work, items)`` sends a job and returns at once with a handle: its ``progress``
(items done, total, failed) moves as the peer sends pieces of results, and it waits for the job,
gives its values or outcomes, or cancels it. Both handles read one ``Collected``; ``Job`` is the
blocking twin for code outside the client's event loop (the ``Client``, a notebook cell), and
cancels by asking that loop. ``progress_bar`` draws a tqdm bar from the same pieces (what
``map(..., progress=True)`` shows).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..outcome import ItemOutcome
from .collected import Collected, Progress


class AsyncJob:
    def __init__(self, collected: Collected, task: asyncio.Task[dict[str, Any]]) -> None:
        self._collected = collected
        self._task = task

    @property
    def id(self) -> str | None:
        """The job's id at the peer coordinating it (None until that peer has taken it)."""
        return self._collected.job_id

    @property
    def progress(self) -> Progress:
        return self._collected.progress

    @property
    def state(self) -> str:
        """``running``, ``completed``, ``failed``, ``cancelled``, or ``broken`` (no peer could
        carry it to its end)."""
        return self._collected.state

    @property
    def collected(self) -> Collected:
        return self._collected

    def done(self) -> bool:
        return self._collected.finished

    async def wait(self) -> None:
        """Until the job has ended, however it ended."""
        await asyncio.wait({self._task})

    async def answer(self) -> dict[str, Any]:
        """The peer's last answer (id, state, progress; a reduced value): the job's failure to
        run raised."""
        return await asyncio.shield(self._task)

    async def result(self) -> list[Any]:
        """Every item's value, in order; the first failed item's error raised."""
        await self.wait()
        return self._collected.values()

    async def outcomes(self) -> list[ItemOutcome]:
        await self.wait()
        return self._collected.outcomes()

    async def cancel(self) -> None:
        """Stop the job on every peer running part of it; returns once it has ended."""
        self.cancel_nowait()
        await self.wait()

    def cancel_nowait(self) -> None:
        """Ask for the job to stop (on the client's event loop thread), without waiting."""
        self._task.cancel()

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id or '(starting)'} {self.state}: {self.progress}>"


class Job:
    """A job seen from any thread: ``progress``, ``wait``, ``result``, ``cancel``."""

    def __init__(self, job: AsyncJob, loop: asyncio.AbstractEventLoop) -> None:
        self._job = job
        self._collected = job.collected
        self._loop = loop

    @property
    def id(self) -> str | None:
        """The job's id at the peer coordinating it (None until that peer has taken it)."""
        return self._collected.job_id

    @property
    def progress(self) -> Progress:
        return self._collected.progress

    @property
    def state(self) -> str:
        return self._collected.state

    def done(self) -> bool:
        return self._collected.finished

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the job to end; whether it did within ``timeout_s``."""
        return self._collected.wait(timeout_s)

    def result(self, timeout_s: float | None = None) -> list[Any]:
        """Every item's value, in order (``TimeoutError`` if the job runs past ``timeout_s``)."""
        self._wait_or_raise(timeout_s)
        return self._collected.values()

    def outcomes(self, timeout_s: float | None = None) -> list[ItemOutcome]:
        self._wait_or_raise(timeout_s)
        return self._collected.outcomes()

    def iter_values(self, timeout_s: float | None = None) -> Iterator[Any]:
        """Values in item order, each as soon as it and those before it have arrived; an item's
        error raised at its turn. ``timeout_s`` bounds the whole iteration, counted from now."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        return self._in_order(deadline)

    def _in_order(self, deadline: float | None) -> Iterator[Any]:
        for index in range(self._collected.total):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._collected.wait_for(index, remaining):
                raise TimeoutError(f"item {index} had no result in time")
            yield self._collected.item(index)

    def cancel(self) -> None:
        """Ask for the job to stop on every peer running part of it (``wait`` for the end)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._job.cancel_nowait)

    def _wait_or_raise(self, timeout_s: float | None) -> None:
        if not self._collected.wait(timeout_s):
            raise TimeoutError(f"job {self.id} still running after {timeout_s} s")

    def __repr__(self) -> str:
        return f"<Job {self.id or '(starting)'} {self.state}: {self.progress}>"


def progress_bar(collected: Collected) -> Any:
    """Draw a tqdm bar (a widget in a notebook) that moves with each piece of results; the bar
    is returned, and closes itself when the job ends."""
    from tqdm.auto import tqdm  # only when a bar is asked for

    bar = tqdm(total=collected.total, unit="item", leave=True)

    def on_new(indexes: Sequence[int]) -> None:
        if indexes:
            bar.update(len(indexes))
            failed = collected.progress.failed
            if failed:
                bar.set_postfix(failed=failed, refresh=False)
        else:
            bar.close()

    collected.listen(on_new)
    return bar
