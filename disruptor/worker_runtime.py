"""The Python side of a worker: ``python -m disruptor.worker_runtime BUNDLE_DIR`` runs a
bundle's handler.

A bundle needs nothing but ``bundle.toml`` naming ``handler = "module:function"`` and the module::

    def handle(item):              # one item in, one JSON value out
        return len(item.split())

Optional, in the same module: ``setup()`` runs once before the worker says ready (load a model,
open a file). A handler marked ``handle.batch = True`` (or decorated with ``@batch``) receives the
whole list of a call's items and returns a list of the same length. ``async def`` handlers work
too; with ``concurrency > 1`` in the manifest, several calls run at once (threads for plain
functions, one event loop for coroutines). Modules are imported from the bundle root, then its
``vendor/`` directory.

Rule: stdout belongs to the protocol alone. The runtime keeps a private duplicate of fd 1 for it
and points fd 1 and ``sys.stdout`` at stderr, so ``print()`` in a handler (or a C library writing
to fd 1) lands in the worker's log instead of corrupting a reply. This module imports only the
standard library (it runs inside the sandbox, where the peer's packages are not installed), and
starts fast.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import threading
import tomllib
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

# The same version and line limit as disruptor.workers (this module imports nothing of the
# package, so that it runs where the package is not installed).
PROTOCOL_VERSION = 1
LINE_BYTES_MAX = 16 * 1024 * 1024
TRACEBACK_CHARS_MAX = 16000

Handler = Callable[..., Any]


def batch(function: Handler) -> Handler:
    """Mark a handler as taking the list of a call's items and returning a list of results."""
    function.batch = True  # type: ignore[attr-defined]
    return function


class _Protocol:
    """The protocol's output side: whole lines on the private stdout, one writer at a time."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, body: dict[str, Any]) -> None:
        body = {"v": PROTOCOL_VERSION, **body}
        try:
            line = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            line = _error_line(body.get("id"), "TypeError", f"reply is not JSON: {exc}")
        if len(line) > LINE_BYTES_MAX:
            line = _error_line(body.get("id"), "ValueError", "reply exceeds the line size limit")
        with self._lock:
            self._out.write(line + b"\n")
            self._out.flush()


def _error_line(call_id: Any, type_: str, message: str) -> bytes:
    body = {"v": PROTOCOL_VERSION, "type": "error", "id": call_id}
    body["error"] = {"type": type_, "message": message}
    return json.dumps(body, separators=(",", ":")).encode()


def _error_json(exc: BaseException) -> dict[str, Any]:
    # Leave out this runtime's own frames: the traceback should show the bundle's code.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    tail = text[-TRACEBACK_CHARS_MAX:]
    return {"type": type(exc).__name__, "message": str(exc), "traceback": tail}


def _item_json(value: Any) -> dict[str, Any]:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return {"error": {"type": "TypeError", "message": f"result is not JSON: {exc}"}}
    return {"value": value}


class Calls:
    """Runs calls through the handler and writes their replies."""

    def __init__(self, handler: Handler, protocol: _Protocol) -> None:
        self.handler = handler
        self.protocol = protocol
        self.is_batch = bool(getattr(handler, "batch", False))
        self.is_async = inspect.iscoroutinefunction(handler)
        self._loop: Any = None
        if self.is_async:
            # One event loop for every call, made before any call thread exists: calls that run
            # at once share it (and whatever the handler binds to it).
            import asyncio  # only async handlers pay for asyncio

            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def run_call(self, message: dict[str, Any]) -> None:
        call_id = message.get("id")
        items = message.get("items")
        if not isinstance(items, list):
            self.protocol.send(
                {
                    "type": "error",
                    "id": call_id,
                    "error": {"type": "ValueError", "message": "call.items must be an array"},
                }
            )
            return
        if self.is_batch:
            try:
                values = self._invoke(items)
                if not isinstance(values, list) or len(values) != len(items):
                    raise TypeError(f"batch handler must return a list of {len(items)} results")
            except Exception as exc:  # the handler's failure is the call's error, not ours
                self.protocol.send({"type": "error", "id": call_id, "error": _error_json(exc)})
                return
            results = [_item_json(v) for v in values]
        else:
            results = []
            for item in items:
                try:
                    results.append(_item_json(self._invoke(item)))
                except Exception as exc:  # one item's failure leaves the others alone
                    results.append({"error": _error_json(exc)})
        self.protocol.send({"type": "result", "id": call_id, "results": results})

    def _invoke(self, argument: Any) -> Any:
        if not self.is_async:
            return self.handler(argument)
        import asyncio

        future = asyncio.run_coroutine_threadsafe(self.handler(argument), self._loop)
        return future.result()


def load_handler(bundle_dir: str) -> tuple[Handler, int]:
    """Import the manifest's ``module:function`` from the bundle; run its ``setup()``."""
    with open(os.path.join(bundle_dir, "bundle.toml"), "rb") as f:
        manifest = tomllib.load(f)
    worker = manifest.get("worker", {})
    spec = worker.get("handler")
    if not isinstance(spec, str) or ":" not in spec:
        raise SystemExit("bundle.toml: worker.handler must be 'module:function'")
    concurrency = int(worker.get("concurrency", 1))
    module_name, _, function_name = spec.partition(":")
    sys.path[:0] = [bundle_dir, os.path.join(bundle_dir, "vendor")]
    import importlib

    module = importlib.import_module(module_name)
    handler = getattr(module, function_name)
    setup = getattr(module, "setup", None)
    if callable(setup):
        setup()
    return handler, max(1, concurrency)


def serve(handler: Handler, concurrency: int, stdin: BinaryIO, protocol: _Protocol) -> int:
    """Say ready, then answer calls until a shutdown message or the end of stdin."""
    calls = Calls(handler, protocol)
    slots = threading.BoundedSemaphore(concurrency)
    threads: list[threading.Thread] = []
    protocol.send(
        {
            "type": "ready",
            "pid": os.getpid(),
            "concurrency": concurrency,
            "runtime": f"python/{sys.version_info[0]}.{sys.version_info[1]}",
        }
    )
    while True:
        line = stdin.readline(LINE_BYTES_MAX + 1)
        if not line:
            break
        if not line.endswith(b"\n"):
            print("disruptor.worker_runtime: over-long request line ignored", file=sys.stderr)
            while line and not line.endswith(b"\n"):
                line = stdin.readline(LINE_BYTES_MAX + 1)
            continue
        try:
            message = json.loads(line)
        except ValueError:
            print("disruptor.worker_runtime: request line is not JSON; ignored", file=sys.stderr)
            continue
        if not isinstance(message, dict):
            continue
        kind = message.get("type")
        if kind == "shutdown":
            break
        if kind != "call":
            continue  # unknown messages are ignored, as the protocol says
        if concurrency == 1:
            calls.run_call(message)
            continue
        slots.acquire()
        thread = threading.Thread(target=_run_in_slot, args=(calls, message, slots), daemon=True)
        thread.start()
        threads = [t for t in threads if t.is_alive()] + [thread]
    for thread in threads:
        thread.join()
    return 0


def _run_in_slot(calls: Calls, message: dict[str, Any], slots: threading.BoundedSemaphore) -> None:
    try:
        calls.run_call(message)
    finally:
        slots.release()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    bundle_dir = os.path.abspath(args[0] if args else os.environ.get("WORKER_BUNDLE_DIR", "."))
    # Keep fd 1 for the protocol, then make fd 1 and sys.stdout the log (stderr).
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    protocol = _Protocol(protocol_out)
    try:
        handler, concurrency = load_handler(bundle_dir)
    except Exception:
        traceback.print_exc()
        print("disruptor.worker_runtime: the handler failed to load", file=sys.stderr)
        return 1
    return serve(handler, concurrency, sys.stdin.buffer, protocol)


if __name__ == "__main__":
    sys.exit(main())
