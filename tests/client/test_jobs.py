from __future__ import annotations

import pytest

from disruptor.client.jobs import (
    BundleRef,
    Snippet,
    job_body,
    snippet_source,
    values_or_raise,
    work_body,
)
from disruptor.errors import DisruptorError, TaskTimeout, WorkerCrashed

SHA1 = "0123456789abcdef0123456789abcdef01234567"


def square(x):  # type: ignore[no-untyped-def]
    return x * x


def test_work_is_named_by_what_it_is() -> None:
    assert work_body(SHA1) == {"bundle": SHA1}
    assert work_body(BundleRef(SHA1)) == {"bundle": SHA1}
    assert work_body("def handle(x):\n    return x\n") == {
        "snippet": "def handle(x):\n    return x\n"
    }
    assert work_body(Snippet("x")) == {"snippet": "x"}
    with pytest.raises(TypeError):
        work_body(42)  # type: ignore[arg-type]


def test_a_function_travels_as_its_own_source_with_a_handle() -> None:
    source = snippet_source(square)
    namespace: dict[str, object] = {}
    exec(compile(source, "snippet", "exec"), namespace)
    assert namespace["handle"](7) == 49  # type: ignore[operator]
    with pytest.raises(TypeError):
        snippet_source(lambda x: x)


def test_job_body_drops_unset_options() -> None:
    body = job_body(SHA1, iter([1, 2]), {"policy": None, "chunk_size": 5})
    assert body == {"bundle": SHA1, "items": [1, 2], "chunk_size": 5}


def test_item_errors_come_back_as_the_peers_classes() -> None:
    assert values_or_raise([{"value": 1}, {"value": 2}]) == [1, 2]
    crash = {"error": {"kind": "worker-crashed", "type": "WorkerCrashed", "message": "exit -9"}}
    with pytest.raises(WorkerCrashed, match="exit -9"):
        values_or_raise([{"value": 1}, crash])
    late = {"error": {"kind": "task-timeout", "type": "TaskTimeout", "message": "slow"}}
    with pytest.raises(TaskTimeout):
        values_or_raise([late])
    with pytest.raises(DisruptorError, match="no result"):
        values_or_raise([None])
