"""``disruptor.Executor``: a ``concurrent.futures.Executor`` whose work runs on a cluster.

Code written for a process pool switches by changing the line that makes the pool::

    with ProcessPoolExecutor() as pool:                 # before
    with disruptor.Executor("127.0.0.1:1111") as pool:  # after
        results = list(pool.map(count_words, lines))

The model, honestly: what a process pool pickles, a cluster cannot run on another machine, so a
task here is *data in, data out*. ``fn`` is one of

- a plain, self-contained Python function: its source is shipped as a snippet and runs in the
  peers' RestrictedPython sandbox (no module globals, no files, no network; imports from the
  snippet allow-list only);
- a bundle's SHA-1 (or ``BundleRef``): its worker's handler receives each item;
- snippet source text (or ``Snippet``) defining ``handle(item)``.

Arguments and results must be JSON values. The handler receives one item: the argument itself
when one is given, or the list of arguments when several are (``map(fn, xs, ys)`` sends ``[x,
y]``). Keyword arguments are not supported. Execution is at-least-once (a task lost with its peer
runs again elsewhere), so ``fn`` should be idempotent. ``map`` sends all items as one job and
yields results in order as they arrive: the first as soon as the task holding it is done, not
when the last is; an item's error is raised when its turn comes, as a process pool does.
``chunksize`` becomes the job's ``chunk_size`` (items per task; left out, the peers choose, small
for small jobs); ``timeout`` bounds the whole iteration from the call (``TimeoutError``), and
leaving the loop early cancels what is left of the job.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .client.handles import Job
from .client.jobs import Work
from .client.options import JobOptions, Policy
from .client.sync import Client


class Executor(concurrent.futures.Executor):
    def __init__(
        self,
        peers: str | Sequence[str],
        *,
        token: str | None = None,
        policy: Policy | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        client_timeout_s: float = 3600.0,
    ) -> None:
        self._client = Client(peers, token=token, timeout_s=client_timeout_s)
        self._options: JobOptions = {"policy": policy, "timeout_s": timeout_s, "retries": retries}
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._jobs: set[Job] = set()
        self._lock = threading.Lock()
        self._shutdown = False

    @property
    def client(self) -> Client:
        return self._client

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _track(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._untrack)

    def _untrack(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    def submit(self, fn: Work, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn`` on one item; the future holds its value (or raises the peer's exception)."""
        self._check_open()
        if kwargs:
            raise TypeError("keyword arguments cannot be sent to a cluster handler")
        item = args[0] if len(args) == 1 else list(args)
        batch: concurrent.futures.Future[list[Any]] = self._client.submit(
            fn, [item], **self._options
        )
        single: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def unpack(done: concurrent.futures.Future[list[Any]]) -> None:
            if done.cancelled():
                single.cancel()
            elif done.exception() is not None:
                single.set_exception(done.exception())
            else:
                single.set_result(done.result()[0])

        batch.add_done_callback(unpack)
        single.add_done_callback(lambda f: batch.cancel() if f.cancelled() else None)
        self._track(single)
        return single

    def map(
        self,
        fn: Work,
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
    ) -> Iterator[Any]:
        """Results in order, each as soon as it and those before it have arrived; all items go
        out at once as one job. ``timeout`` (seconds) bounds the whole iteration from this call."""
        self._check_open()
        items = [
            args[0] if len(args) == 1 else list(args) for args in zip(*iterables, strict=False)
        ]
        options: JobOptions = {**self._options, "chunk_size": chunksize}
        job = self._client.start(fn, items, **options)
        with self._lock:
            self._jobs.add(job)
        return self._results(job, job.iter_values(timeout))

    def _results(self, job: Job, values: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from values
        finally:
            # Left early (an error, a timeout, a break): the rest of the job is not wanted.
            if not job.done():
                job.cancel()
            with self._lock:
                self._jobs.discard(job)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            pending = list(self._futures)
            jobs = list(self._jobs)
        if cancel_futures:
            for future in pending:
                future.cancel()
            for job in jobs:
                job.cancel()
        if wait:
            concurrent.futures.wait(pending)
            for job in jobs:
                job.wait()
        self._client.close()
