"""``LocalExecutor``: running a task's items on this peer, for its own jobs or another's.

A bundle task runs on the worker pool (after fetching the bundle from peers that hold it, if it
is not here); a snippet task on the snippet engine. Both keep the local-executor contract
(``BundleExecutor``, ``SnippetExecutor`` below): a chunk in, one value slot per item out. Rule: an
abandoned attempt stops being waited for, but the pool is left to finish what it already took (it
may be starting workers, which must not be cut short); its results are dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..address import Address
from ..chunks import Chunk, ChunkResult
from ..errors import NotFound
from .directory import BundleHolder, PeerDirectory
from .model import Kind, Work


class BundleExecutor(Protocol):
    """The worker pool, as the job layer sees it: a chunk in, its result out, one value slot per
    item in order, every failure an item's error (never raised for one item)."""

    async def run_chunk(
        self, bundle: str, chunk: Chunk, *, timeout_s: float | None = None
    ) -> ChunkResult: ...


class SnippetExecutor(Protocol):
    """The snippet engine, as the job layer sees it: the same contract, for a snippet given by
    source or by the SHA-1 of a stored one."""

    async def run_chunk(
        self,
        chunk: Chunk,
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> ChunkResult: ...


class BundleFetch(Protocol):
    """The bundle fetcher, as tasks need it."""

    async def fetch(self, sha1: str, sources: Sequence[Address]) -> None: ...


class LocalExecutor:
    def __init__(
        self,
        pool: BundleExecutor,
        snippets: SnippetExecutor,
        bundles: BundleHolder,
        fetcher: BundleFetch,
        directory: PeerDirectory,
        clock: Callable[[], float],
    ) -> None:
        self.pool = pool
        self.snippets = snippets
        self.bundles = bundles
        self.fetcher = fetcher
        self.directory = directory
        self._clock = clock

    async def run(
        self,
        work: Work,
        chunk: Chunk,
        timeout_s: float | None,
        sources: Sequence[str] = (),
    ) -> ChunkResult:
        """Run a chunk here (fetching the bundle first if need be)."""
        if work.kind is Kind.BUNDLE:
            assert work.bundle is not None
            if not self.bundles.has(work.bundle):
                await self.ensure_bundle(work.bundle, sources)
            inner = asyncio.ensure_future(
                self.pool.run_chunk(work.bundle, chunk, timeout_s=timeout_s)
            )
            inner.add_done_callback(_consume)
            return await asyncio.shield(inner)
        return await self.snippets.run_chunk(
            chunk, source=work.snippet, sha1=work.snippet_sha1, timeout_s=timeout_s
        )

    async def ensure_bundle(self, sha1: str, sources: Sequence[str]) -> None:
        """Have the bundle here: fetch it from ``sources``, else from peers that hold it."""
        if self.bundles.has(sha1):
            return
        me = self.directory.self_address
        candidates = [a for a in sources if a != me] or self.directory.holders(
            sha1, self._clock(), exclude=me
        )
        if not candidates:
            raise NotFound(f"bundle {sha1} is not here and no peer is known to hold it")
        await self.fetcher.fetch(sha1, [Address.parse(a) for a in candidates])


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an orphaned attempt's outcome so that its failure is not reported as lost."""
    if not future.cancelled():
        future.exception()
