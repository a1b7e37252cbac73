"""disruptor: peer-to-peer, fault-tolerant, real-time computation.

The public API is small and listed in ``__all__`` (a test pins it); everything else is internal.
``Client``, ``AsyncClient``, ``Executor`` and ``Peer`` are imported on first use, so a process
that only needs the errors (a worker, say) does not load the HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .errors import (
    BadRequest,
    DisruptorError,
    JobCancelled,
    NotFound,
    Overloaded,
    PeerUnreachable,
    SnippetBudgetExceeded,
    TaskFailed,
    TaskTimeout,
    Unavailable,
    WorkerCrashed,
)
from .version import __version__

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .executor import Executor
    from .peer import Peer

_LAZY = {
    "AsyncClient": "disruptor.client",
    "Client": "disruptor.client",
    "Executor": "disruptor.executor",
    "Peer": "disruptor.peer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'disruptor' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "DisruptorError",
    "Executor",
    "JobCancelled",
    "NotFound",
    "Overloaded",
    "Peer",
    "PeerUnreachable",
    "SnippetBudgetExceeded",
    "TaskFailed",
    "TaskTimeout",
    "Unavailable",
    "WorkerCrashed",
    "__version__",
    "errors",
]
