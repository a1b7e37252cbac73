from __future__ import annotations

import concurrent.futures
import subprocess
import sys

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


def test_importing_the_package_does_not_load_the_http_stack() -> None:
    code = "import sys, disruptor; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
