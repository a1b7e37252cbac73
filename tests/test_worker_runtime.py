"""The worker runtime (the Python SDK) speaks the package's protocol: same constants, same frames.

``disruptor/worker_runtime.py`` imports nothing of the package (it runs where the package is not
installed), so it repeats the protocol's constants; these tests pin them to the package's, and
run the runtime's serve loop in-process on frames the pool would send, checking every line it
writes with the pool's own parser.
"""

from __future__ import annotations

import io
import json
from typing import Any

from disruptor import worker_runtime as runtime
from disruptor.workers import framing, messages


def test_the_runtime_repeats_the_protocol_constants_exactly() -> None:
    assert runtime.PROTOCOL_VERSION == messages.PROTOCOL_VERSION
    assert runtime.LINE_BYTES_MAX == framing.LINE_BYTES_MAX
    assert runtime.TRACEBACK_CHARS_MAX == messages.TRACEBACK_CHARS_MAX


def serve(handler: Any, *frames: dict[str, Any]) -> list[messages.Inbound]:
    stdin = io.BytesIO(b"".join(json.dumps(f).encode() + b"\n" for f in frames))
    out = io.BytesIO()
    assert runtime.serve(handler, 1, stdin, runtime._Protocol(out)) == 0
    return [messages.parse_inbound(json.loads(line)) for line in out.getvalue().splitlines()]


def test_frames_the_pool_sends_get_replies_the_pool_accepts() -> None:
    def handle(item: Any) -> Any:
        return 10 // item

    # Two replies, no more: the shutdown frame ends the loop without an answer.
    ready, result = serve(handle, messages.call_frame(1, [2, 0]), messages.shutdown_frame())
    assert isinstance(ready, messages.Ready) and ready.pid is not None
    assert isinstance(result, messages.Result) and result.id == 1
    assert result.results[0] == messages.ItemResult(value=5)
    error = result.results[1].error
    assert error is not None and error.type == "ZeroDivisionError"


def test_a_failed_batch_is_a_call_error_the_pool_accepts() -> None:
    @runtime.batch
    def handle(items: list[Any]) -> list[Any]:
        raise RuntimeError("the whole batch")

    _, failed = serve(handle, messages.call_frame(7, [1, 2]), messages.shutdown_frame())
    assert isinstance(failed, messages.CallError) and failed.id == 7
    assert failed.error.type == "RuntimeError"


def test_batch_decorator_marks_the_handler() -> None:
    @runtime.batch
    def handle(items: list[int]) -> list[int]:
        return items

    assert getattr(handle, "batch", False) is True
