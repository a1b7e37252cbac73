"""``Client``: the blocking twin of ``AsyncClient``, running it on a private event loop thread.

Every public method of ``AsyncClient`` is here under the same name with the same arguments, typed
(a test holds the two lists equal): a coroutine's result is waited for, an async iterator becomes
a plain iterator (leaving the loop early closes it, which cancels its job), and ``start`` gives a
``Job`` handle usable from any thread. Nothing is looked up by name at run time, so a type checker
knows every method and refuses a misspelt one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar, Unpack, overload

from .. import event_loop
from ..bundles.signing import SignedManifest
from ..home import Home
from ..outcome import ItemOutcome
from .aio import AsyncClient
from .bundles import Progress as TransferProgress
from .bundles import PushResult
from .handles import Job
from .options import JobOptions
from .work import Work

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

T = TypeVar("T")


class Client:
    def __init__(
        self,
        peers: str | Sequence[str],
        *,
        token: str | None = None,
        home: Home | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        self._loop = event_loop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._closing: set[asyncio.Task[None]] = set()  # iterators closed on the loop's thread
        self._aio: AsyncClient = self._call(_make(peers, token, home, timeout_s))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _next(self, aiter: AsyncGenerator[T, None]) -> T:
        return await aiter.__anext__()

    def _iterate(self, aiter: AsyncGenerator[T, None]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._call(self._next(aiter))
                except StopAsyncIteration:
                    return
        finally:
            # Closing it cancels its job if it had not ended. Never wait on the loop's own
            # thread (a generator may be collected there): there, schedule the close.
            if self._loop.is_closed():
                pass
            elif threading.current_thread() is self._thread:
                closing = self._loop.create_task(aiter.aclose())
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
            else:
                self._call(aiter.aclose())

    @property
    def aio(self) -> AsyncClient:
        """The underlying ``AsyncClient`` (its coroutines run on this client's loop only)."""
        return self._aio

    @property
    def url(self) -> str:
        """The peer the next call goes to."""
        return self._aio.url

    @property
    def urls(self) -> list[str]:
        """Every peer given, in failover order."""
        return self._aio.urls

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._call(self._aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- jobs (``AsyncClient`` in ``client/jobs.py`` says what each does) -------------------

    def run_job(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        idempotency_key: str | None = None,
        reduce: str | None = None,
        **options: Unpack[JobOptions],
    ) -> dict[str, Any]:
        """Submit a job and wait: the peer's whole answer (``id``, ``state``, ``values``...)."""
        return self._call(
            self._aio.run_job(
                work, items, idempotency_key=idempotency_key, reduce=reduce, **options
            )
        )

    @overload
    def map(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        reduce: str,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> Any: ...

    @overload
    def map(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        reduce: None = None,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> list[Any]: ...

    def map(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        reduce: str | None = None,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> Any:
        """Every item's value, in order; ``reduce=SOURCE``: the folded value; ``progress=True``
        draws a progress bar as results arrive."""
        return self._call(self._aio.map(work, items, reduce=reduce, progress=progress, **options))

    def send(self, work: Work, item: Any, **options: Unpack[JobOptions]) -> Any:
        """One item's value."""
        return self._call(self._aio.send(work, item, **options))

    def outcomes(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> list[ItemOutcome]:
        """Every item's ``ItemOutcome`` (value or error, and where it ran), in order."""
        return self._call(self._aio.outcomes(work, items, progress=progress, **options))

    def start(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        progress: bool = False,
        **options: Unpack[JobOptions],
    ) -> Job:
        """Send a job and return at once with a ``Job`` handle: ``progress``, ``wait``,
        ``result``, ``outcomes``, ``cancel``, ``id`` (from any thread, a notebook too)."""
        return Job(
            self._call(self._aio.start(work, items, progress=progress, **options)), self._loop
        )

    @overload
    def submit(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        outcomes: Literal[True],
        **options: Unpack[JobOptions],
    ) -> concurrent.futures.Future[list[ItemOutcome]]: ...

    @overload
    def submit(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        outcomes: Literal[False] = False,
        **options: Unpack[JobOptions],
    ) -> concurrent.futures.Future[list[Any]]: ...

    def submit(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        outcomes: bool = False,
        **options: Unpack[JobOptions],
    ) -> concurrent.futures.Future[Any]:
        """Start a job; its values (or outcomes) arrive in the returned future."""
        if outcomes:
            return self._call(self._aio.submit(work, items, outcomes=True, **options))
        return self._call(self._aio.submit(work, items, **options))

    def stream(
        self,
        work: Work,
        items: Iterable[Any],
        *,
        return_exceptions: bool = False,
        **options: Unpack[JobOptions],
    ) -> Iterator[tuple[int, Any]]:
        """``(index, value)`` pairs as items complete, each exactly once, even across failover."""
        return self._iterate(
            self._aio.stream(work, items, return_exceptions=return_exceptions, **options)
        )

    def stream_outcomes(
        self, work: Work, items: Iterable[Any], **options: Unpack[JobOptions]
    ) -> Iterator[tuple[int, ItemOutcome]]:
        """``(index, ItemOutcome)`` as pieces of the job complete, each index exactly once."""
        return self._iterate(self._aio.stream_outcomes(work, items, **options))

    def job(self, job_id: str, *, results: bool = True) -> dict[str, Any]:
        """A job's state, progress and (unless ``results=False``) results."""
        return self._call(self._aio.job(job_id, results=results))

    def start_job(self, work: Work, items: Iterable[Any], **options: Unpack[JobOptions]) -> str:
        """Start a job over HTTP without waiting: its id, for ``job`` and ``cancel``."""
        return self._call(self._aio.start_job(work, items, **options))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job on every peer running part of it."""
        return self._call(self._aio.cancel(job_id))

    # --- workers ----------------------------------------------------------------------------

    def start_workers(self, bundle: str, count: int | None = None) -> list[dict[str, Any]]:
        """Start warm workers of ``bundle`` on the peer; returns them once they are ready."""
        return self._call(self._aio.start_workers(bundle, count))

    def stop_workers(self, bundle: str) -> None:
        """Drain, then stop, the bundle's workers on the peer."""
        self._call(self._aio.stop_workers(bundle))

    def list_workers(self) -> dict[str, Any]:
        """``{"workers": [...], "failed": {sha1: reason}}`` for the peer."""
        return self._call(self._aio.list_workers())

    def start_workers_on(
        self, bundle: str, peers: str | int | list[str] = "all", count: int | None = None
    ) -> dict[str, Any]:
        """Start warm workers on ``peers`` ("all", N, or addresses)."""
        return self._call(self._aio.start_workers_on(bundle, peers, count))

    def stop_workers_on(self, bundle: str, peers: str | int | list[str] = "all") -> dict[str, Any]:
        """Drain, then stop, the bundle's workers on ``peers``."""
        return self._call(self._aio.stop_workers_on(bundle, peers))

    def cluster_workers(self) -> dict[str, Any]:
        """Every live peer's workers: ``{address: {"workers": [...], "failed": {...}}}``."""
        return self._call(self._aio.cluster_workers())

    # --- bundles ----------------------------------------------------------------------------

    def push_bundle(
        self,
        path: str | os.PathLike[str],
        *,
        key: Ed25519PrivateKey | None = None,
        home: Home | None = None,
        progress: TransferProgress | None = None,
    ) -> PushResult:
        """Upload a bundle (a ``.tar.zst`` or an app directory, packed first)."""
        return self._call(self._aio.push_bundle(path, key=key, home=home, progress=progress))

    def has_bundle(self, sha1: str) -> bool:
        return self._call(self._aio.has_bundle(sha1))

    def list_bundles(self) -> list[dict[str, Any]]:
        return self._call(self._aio.list_bundles())

    def bundle_manifest(self, sha1: str) -> SignedManifest:
        return self._call(self._aio.bundle_manifest(sha1))

    def delete_bundle(self, sha1: str) -> None:
        self._call(self._aio.delete_bundle(sha1))

    def pull_bundle(
        self,
        sha1: str,
        destination: str | os.PathLike[str],
        progress: TransferProgress | None = None,
    ) -> Path:
        """Download ``sha1`` to ``destination``, checking SHA-1 and the manifest's SHA-256."""
        return self._call(self._aio.pull_bundle(sha1, destination, progress))

    # --- snippets, peers, raw requests ------------------------------------------------------

    def put_snippet(self, source: str) -> str:
        """Store ``source`` on the peer (it must compile there); returns its SHA-1 name."""
        return self._call(self._aio.put_snippet(source))

    def get_snippet(self, sha1: str) -> str:
        return self._call(self._aio.get_snippet(sha1))

    def peers(self) -> dict[str, Any]:
        """``GET /peers``: ``{"self": "HOST:PORT", "peers": [{address, state, since, ...}]}``."""
        return self._call(self._aio.peers())

    def request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        failover: bool = True,
    ) -> Any:
        """Any API call; its JSON answer (None for 204)."""
        return self._call(
            self._aio.request_json(
                method,
                path,
                json_body=json_body,
                data=data,
                headers=headers,
                params=params,
                failover=failover,
            )
        )


async def _make(
    peers: str | Sequence[str], token: str | None, home: Home | None, timeout_s: float
) -> AsyncClient:
    return AsyncClient(peers, token=token, home=home, timeout_s=timeout_s)
