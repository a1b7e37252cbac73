"""``SnippetEngine``: the peer's snippet part — store, host pool, and the executor contract.

Rule: ``run_batch`` keeps the local-executor contract of ``disruptor.outcome``: one outcome per
item, in order, an item's failure as data (``snippet-budget`` for a stopped budget, ``task-failed``
for an exception, with the snippet's own line); only whole-request problems raise (no such snippet
-> NotFound, does not compile -> SnippetRejected, too big -> PayloadTooLarge, every host busy ->
Overloaded). Nothing here runs snippet code: the hosts do, and file access goes through a thread
so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidPayload
from ..outcome import ItemOutcome
from .compile import check_sha1, check_source_size, snippet_sha1
from .host_pool import HostPool, SnippetStats
from .policy import SnippetSettings
from .store import SnippetStore


class SnippetEngine:
    def __init__(self, settings: SnippetSettings, state_dir: Path) -> None:
        self.settings = settings
        self.store = SnippetStore(
            state_dir / "snippets", settings.store_count_max, settings.source_bytes_max
        )
        self.stats = SnippetStats()
        self.hosts = HostPool(settings, self.stats)

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
            await self.hosts.check({"sha1": sha1, "source": source}, self.settings.item_timeout_s)
        except Exception:
            self.stats.rejected += 1
            raise

    # --- running ---

    async def _resolve(self, source: str | None, sha1: str | None) -> tuple[str, str]:
        if source is None and sha1 is None:
            raise InvalidPayload("a snippet run needs its source or its SHA-1")
        if source is None:
            assert sha1 is not None
            return await self.get(sha1), sha1
        check_source_size(source, self.settings.source_bytes_max)
        actual = snippet_sha1(source)
        if sha1 is not None and check_sha1(sha1) != actual:
            raise InvalidPayload(f"the snippet's SHA-1 is {actual}, not {sha1}")
        # Keep it, so that later jobs may name it by SHA-1 alone.
        await asyncio.to_thread(self.store.put, source, actual)
        return source, actual

    def _timeout(self, timeout_s: float | None) -> float:
        if timeout_s is None:
            return self.settings.item_timeout_s
        return max(0.001, min(float(timeout_s), self.settings.item_timeout_s_max))

    async def _run(
        self,
        mode: str,
        items: list[Any],
        source: str | None,
        sha1: str | None,
        timeout_s: float | None,
        extra: dict[str, Any] | None = None,
    ) -> list[ItemOutcome]:
        text, name = await self._resolve(source, sha1)
        request = {"sha1": name, "source": text, "mode": mode, **(extra or {})}
        try:
            outcomes = await self.hosts.run(request, items, self._timeout(timeout_s))
        except Exception:
            self.stats.rejected += 1
            raise
        self.stats.runs += 1
        self.stats.items += len(outcomes)
        for outcome in outcomes:
            if outcome.error is not None:
                self.stats.items_failed += 1
                if outcome.error.kind == "snippet-budget":
                    self.stats.budget_stops += 1
        return outcomes

    async def run_batch(
        self,
        items: Sequence[Any],
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> list[ItemOutcome]:
        """``handle(item)`` for each item, in order, one outcome each."""
        return await self._run("map", list(items), source, sha1, timeout_s)

    async def run_reduce(
        self,
        results: Sequence[Any],
        *,
        source: str | None = None,
        sha1: str | None = None,
        timeout_s: float | None = None,
    ) -> ItemOutcome:
        """``reduce(results)`` once, over the whole list."""
        return (await self._run("reduce", list(results), source, sha1, timeout_s))[0]

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
        extra = {"initial": initial, "has_initial": has_initial}
        return (await self._run("combine", list(items), source, sha1, timeout_s, extra))[0]

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
        outcome = (await self._run("fold", list(values), source, sha1, timeout_s))[0]
        if outcome.error is not None:
            raise outcome.error.to_exception()
        return outcome.value
