"""``SnippetEngine``: the peer's snippet part — store, host pool, and the executor contract.

Rule: ``run_chunk`` keeps the local-executor contract of ``disruptor.outcome``: one value slot
per item, in order, an item's failure as data (``snippet-budget`` for a stopped budget,
``task-failed`` for an exception, with the snippet's own line); only whole-request problems raise
(no such snippet -> NotFound, does not compile -> SnippetRejected, too big -> PayloadTooLarge,
items that are not a MessagePack array of ``count`` values -> InvalidPayload, every host busy ->
Overloaded). Nothing here runs snippet code or decodes a chunk: the hosts do; file access and
large encodings go through a thread so the event loop never waits on them.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..chunks import (
    CHUNK_BYTES_MAX,
    CHUNK_ITEMS_MAX,
    Chunk,
    ChunkResult,
    array_header,
    read_array_header,
)
from ..chunks import encode as encode_msgpack
from ..errors import InvalidPayload, PayloadTooLarge
from ..outcome import ItemOutcome
from .host_pool import HostPool, SnippetStats
from .host_wire import REQUEST_BYTES_MAX, Mode, Run
from .names import check_sha1, check_source_size, snippet_sha1
from .settings import SnippetSettings
from .store import SnippetStore

# Lists longer than this are encoded in a thread rather than on the event loop.
ITEMS_INLINE_MAX = 1000
# A fold's values, encoded, leave this much of a request frame to the snippet's source.
FOLD_BYTES_MAX = REQUEST_BYTES_MAX - 2 * 1024 * 1024
# Sources of the snippets run lately, by SHA-1, so that a job's thousand chunks do not each go to
# the disk; an entry older than KNOWN_REFRESH_S goes through the store again (which marks it used,
# so the store does not evict a snippet in use).
KNOWN_MAX = 64
KNOWN_REFRESH_S = 10.0


class SnippetEngine:
    def __init__(self, settings: SnippetSettings, state_dir: Path) -> None:
        self.settings = settings
        self.store = SnippetStore(
            state_dir / "snippets", settings.store_count_max, settings.source_bytes_max
        )
        self.stats = SnippetStats()
        self.hosts = HostPool(settings, self.stats)
        self._known: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def start(self) -> None:
        await self.hosts.start()

    async def stop(self) -> None:
        await self.hosts.stop()

    # --- the store ---

    async def put(self, source: str, sha1: str | None = None) -> tuple[str, bool]:
        """Check that ``source`` compiles, then store it; returns (SHA-1, newly stored)."""
        check_source_size(source, self.settings.source_bytes_max)
        actual = snippet_sha1(source)
        if sha1 is not None and check_sha1(sha1) != actual:
            raise InvalidPayload(f"the snippet's SHA-1 is {actual}, not {sha1}")
        await self._check(source, actual)
        name, new = await asyncio.to_thread(self.store.put, source, actual)
        self.stats.stored += int(new)
        return name, new

    async def get(self, sha1: str) -> str:
        check_sha1(sha1)
        return await asyncio.to_thread(self.store.get, sha1)

    async def _check(self, source: str, sha1: str) -> None:
        try:
            await self.hosts.check(sha1, source, self.settings.item_timeout_s)
        except Exception:
            self.stats.rejected += 1
            raise

    # --- running ---

    async def _resolve(self, source: str | None, sha1: str | None) -> tuple[str, str]:
        if source is None and sha1 is None:
            raise InvalidPayload("a snippet run needs its source or its SHA-1")
        if source is None:
            assert sha1 is not None
            known = self._recent(check_sha1(sha1))
            if known is not None:
                return known, sha1
            text = await self.get(sha1)
            self._remember(sha1, text)
            return text, sha1
        check_source_size(source, self.settings.source_bytes_max)
        actual = snippet_sha1(source)
        if sha1 is not None and check_sha1(sha1) != actual:
            raise InvalidPayload(f"the snippet's SHA-1 is {actual}, not {sha1}")
        if self._recent(actual) is None:
            # Keep it, so that later jobs may name it by SHA-1 alone.
            await asyncio.to_thread(self.store.put, source, actual)
            self._remember(actual, source)
        return source, actual

    def _recent(self, sha1: str) -> str | None:
        entry = self._known.get(sha1)
        if entry is None or time.monotonic() - entry[1] > KNOWN_REFRESH_S:
            return None
        self._known.move_to_end(sha1)
        return entry[0]

    def _remember(self, sha1: str, source: str) -> None:
        self._known[sha1] = (source, time.monotonic())
        self._known.move_to_end(sha1)
        while len(self._known) > KNOWN_MAX:
            self._known.popitem(last=False)

    def _timeout(self, timeout_s: float | None) -> float:
        if timeout_s is None:
            return self.settings.item_timeout_s
        return max(0.001, min(float(timeout_s), self.settings.item_timeout_s_max))

    async def _run(
        self,
        mode: Mode,
        items: bytes,
        count: int,
        source: str | None,
        sha1: str | None,
        timeout_s: float | None,
        initial: bytes | None = None,
    ) -> ChunkResult:
        text, name = await self._resolve(source, sha1)
        run = Run(
            sha1=name,
            source=text,
            mode=mode,
            timeout_s=self._timeout(timeout_s),
            count=count,
            items=items,
            has_initial=initial is not None,
            initial=b"\xc0" if initial is None else initial,
        )
        try:
            result = await self.hosts.run(run)
        except Exception:
            self.stats.rejected += 1
            raise
        self.stats.runs += 1
        self.stats.items += result.count
        self.stats.items_failed += len(result.errors)
        self.stats.budget_stops += sum(1 for _, e in result.errors if e.kind == "snippet-budget")
        return result

    async def run_chunk(
        self,
        chunk: Chunk,
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> ChunkResult:
        """``handle(item)`` for each item of ``chunk``, in order: one value slot each."""
        if len(chunk.data) > CHUNK_BYTES_MAX:
            raise PayloadTooLarge(f"a chunk exceeds {CHUNK_BYTES_MAX} bytes")
        if chunk.count > CHUNK_ITEMS_MAX:
            raise InvalidPayload(f"a chunk holds {chunk.count} items; at most {CHUNK_ITEMS_MAX}")
        if read_array_header(chunk.data)[0] != chunk.count:
            raise InvalidPayload(f"a chunk said to hold {chunk.count} items does not")
        if chunk.count == 0:
            await self._resolve(source, sha1)
            return ChunkResult(0, array_header(0))
        return await self._run(Mode.MAP, chunk.data, chunk.count, source, sha1, timeout_s)

    async def run_batch(
        self,
        items: Sequence[Any],
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> list[ItemOutcome]:
        """``handle(item)`` for each item, in order, one outcome each (``run_chunk``'s wrapper).

        Items MessagePack cannot hold (an int beyond 64 bits, an object) are ``InvalidPayload``.
        """
        outcomes: list[ItemOutcome] = []
        for chunk in await _chunks_of(list(items)):
            result = await self.run_chunk(chunk, source=source, sha1=sha1, timeout_s=timeout_s)
            outcomes.extend(result.outcomes())
        return outcomes

    async def _fold(
        self,
        mode: Mode,
        values: Sequence[Any],
        source: str | None,
        sha1: str | None,
        timeout_s: float | None,
        initial: bytes | None = None,
    ) -> ItemOutcome:
        data = await _encode(list(values))
        if len(data) > FOLD_BYTES_MAX:
            raise PayloadTooLarge(f"the values to fold exceed {FOLD_BYTES_MAX} bytes")
        result = await self._run(mode, data, len(values), source, sha1, timeout_s, initial)
        return result.outcomes()[0]

    async def run_reduce(
        self,
        results: Sequence[Any],
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> ItemOutcome:
        """``reduce(results)`` once, over the whole list."""
        return await self._fold(Mode.REDUCE, results, source, sha1, timeout_s)

    async def run_combine(
        self,
        items: Sequence[Any],
        *,
        initial: Any = None,
        has_initial: bool = False,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> ItemOutcome:
        """Fold ``combine(acc, item)`` over ``items`` from ``initial`` (else the first item)."""
        start = await _encode(initial) if has_initial else None
        return await self._fold(Mode.COMBINE, items, source, sha1, timeout_s, start)

    async def reduce(
        self,
        values: Sequence[Any],
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Fold ``values`` with the snippet's ``reduce(results)``, else its ``combine(acc, item)``.

        For the job layer's coordinator: returns the folded value, or raises the failure as the
        ``disruptor.errors`` class of its kind (``SnippetBudgetExceeded``, ``TaskFailed``).
        """
        outcome = await self._fold(Mode.FOLD, values, source, sha1, timeout_s)
        if outcome.error is not None:
            raise outcome.error.to_exception()
        return outcome.value


async def _encode(value: Any) -> bytes:
    """MessagePack of ``value`` (in a thread when it is a long list); ``InvalidPayload`` if it
    holds what MessagePack cannot (an int beyond 64 bits, an object)."""
    try:
        if isinstance(value, list) and len(value) > ITEMS_INLINE_MAX:
            return await asyncio.to_thread(encode_msgpack, value)
        return encode_msgpack(value)
    except (TypeError, OverflowError, ValueError) as exc:
        raise InvalidPayload(f"values cannot be encoded as MessagePack: {exc}") from None


async def _chunks_of(items: list[Any]) -> list[Chunk]:
    """``items`` as chunks within the chunk limits, in order (halved until each one fits)."""
    pieces = [items[i : i + CHUNK_ITEMS_MAX] for i in range(0, len(items), CHUNK_ITEMS_MAX)]
    chunks: list[Chunk] = []
    while pieces:
        piece = pieces.pop(0)
        try:
            if len(piece) > ITEMS_INLINE_MAX:
                chunk = await asyncio.to_thread(Chunk.of, piece)
            else:
                chunk = Chunk.of(piece)
        except InvalidPayload:
            if len(piece) < 2 or not _too_big(piece):
                raise
            half = len(piece) // 2
            pieces[:0] = [piece[:half], piece[half:]]
            continue
        chunks.append(chunk)
    return chunks or [Chunk.of([])]


def _too_big(piece: list[Any]) -> bool:
    try:
        return len(encode_msgpack(piece)) > CHUNK_BYTES_MAX
    except (TypeError, OverflowError, ValueError):
        return False
