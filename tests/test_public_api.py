from __future__ import annotations

import concurrent.futures

import disruptor


def test_all_is_pinned() -> None:
    assert sorted(disruptor.__all__) == [
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


def test_every_name_resolves() -> None:
    for name in disruptor.__all__:
        assert getattr(disruptor, name) is not None
    assert issubclass(disruptor.Executor, concurrent.futures.Executor)
    assert issubclass(disruptor.WorkerCrashed, disruptor.TaskFailed)
