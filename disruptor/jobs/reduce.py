"""Folding a job's results at the coordinator with a reduce snippet.

The snippet defines ``reduce(results)`` (all values at once) or ``combine(acc, item)`` (one at a
time); the snippet runner runs it inside its sandbox and budgets. Rule: only values are folded —
items that failed are reported as errors beside the folded value, never passed to the snippet.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ..errors import NotFound


async def reduce_values(peer: Any, source: str, values: Sequence[Any]) -> Any:
    """The snippet's fold of ``values`` (a ``disruptor.errors`` class if it cannot be folded)."""
    runner = getattr(peer, "snippets", None)
    fold = getattr(runner, "reduce", None)
    if fold is None:
        raise NotFound("this peer's snippet runner cannot fold results")
    result = fold(list(values), source=source)
    return await result if inspect.isawaitable(result) else result
