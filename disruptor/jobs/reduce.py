"""Folding a job's results at the coordinator with a reduce snippet.

The snippet defines ``reduce(results)`` (all values at once) or ``combine(acc, item)`` (one at a
time); the snippet engine runs it inside its sandbox and budgets. Rule: only values are folded —
items that failed are reported as errors beside the folded value, never passed to the snippet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class SnippetFolder(Protocol):
    """The snippet engine, as the coordinator folds with it."""

    async def reduce(self, values: Sequence[Any], *, source: str | None = None) -> Any: ...


async def reduce_values(folder: SnippetFolder, source: str, values: Sequence[Any]) -> Any:
    """The snippet's fold of ``values`` (a ``disruptor.errors`` class if it cannot be folded)."""
    return await folder.reduce(list(values), source=source)
