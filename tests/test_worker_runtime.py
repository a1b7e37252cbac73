"""The worker runtime (the Python SDK) repeats the package's protocol constants exactly, and
runs every item once, in order, whichever of its loops runs them.

``disruptor/worker_runtime.py`` imports nothing of the package (it runs where the package is not
installed), so it repeats the protocol's constants; these tests pin them to the package's. The
runtime run as a process, speaking both versions, is in ``test_worker_runtime_functional.py``.
"""

from __future__ import annotations

from disruptor import worker_runtime as runtime
from disruptor.workers import framing, isolation, messages


def test_batch_decorator_marks_the_handler() -> None:
    @runtime.batch
    def handle(items: list[int]) -> list[int]:
        return items

    assert getattr(handle, "batch", False) is True


def test_protocol_constants_match_the_package() -> None:
    assert runtime.PROTOCOL_VERSIONS == messages.PROTOCOL_VERSIONS
    assert runtime.LINE_BYTES_MAX == framing.LINE_BYTES_MAX
    assert runtime.FRAME_BYTES_MAX == framing.FRAME_BYTES_MAX
    assert runtime.FRAME_HEADER_BYTES == framing.FRAME_HEADER_BYTES
    assert runtime.TRACEBACK_CHARS_MAX == messages.TRACEBACK_CHARS_MAX
    assert runtime.LIB_DIR == isolation.RUNTIME_LIB


def test_items_run_once_each_in_order_whichever_loop_runs_them() -> None:
    seen: list[int] = []

    def handler(x: int) -> int:
        seen.append(x)
        if x % 3 == 0:
            raise ValueError(x)
        return x * 2

    assert runtime._EXTEND_KEEPS_PARTIAL, "CPython keeps what list.extend appended before a raise"
    for run in (runtime._run_extending, runtime._run_looping):
        seen.clear()
        values, failures = run(handler, list(range(8)))
        assert seen == list(range(8)), "no item runs twice"
        assert values == [None, 2, 4, None, 8, 10, None, 14]
        assert [offset for offset, _ in failures] == [0, 3, 6]
