"""The Python side of a worker: ``python -m disruptor.worker_runtime BUNDLE_DIR`` runs a
bundle's handler.

A bundle needs nothing but ``bundle.toml`` naming ``handler = "module:function"`` and the module::

    def handle(item):              # one item in, one value out
        return len(item.split())

Optional, in the same module: ``setup()`` runs once before the worker says ready (load a model,
open a file). A handler marked ``handle.batch = True`` (or decorated with ``@batch``) receives the
whole list of a call's items (in protocol version 2: of one part of a call) and returns a list of
the same length. ``async def`` handlers work too; with ``concurrency > 1`` in the manifest,
several calls run at once (threads for plain functions, one event loop for coroutines). Modules
are imported from the bundle root, then its ``vendor/`` directory.

Protocols: the runtime speaks version 1 (NDJSON) always, and offers version 2 (length-prefixed
MessagePack frames) when it can import msgspec: from the interpreter's own packages, or from the
``lib/`` directory the peer installs beside this file. When that import fails (say, an interpreter
of another ABI) it says so once on stderr and stays on version 1; ``WORKER_PROTOCOL_MAX=1`` in the
worker's environment keeps it there on purpose. In version 2 an item costs the handler's call and
nothing else: a part's items run in one loop (an item that raises leaves a ``None`` and an error
at its offset, and the loop carries on with the next), its values are encoded as one array, and
only when that fails are they encoded one by one to find the values that cannot be (those become
``TypeError`` errors of their items).

Rule: stdout belongs to the protocol alone. The runtime keeps a private duplicate of fd 1 for it
and points fd 1 and ``sys.stdout`` at stderr, so ``print()`` in a handler (or a C library writing
to fd 1) lands in the worker's log instead of corrupting a reply. This module imports only the
standard library and, if it can, msgspec (it runs inside the sandbox, where the peer's packages
are not installed), and starts fast.
"""

from __future__ import annotations

import inspect
import json
import os
import struct
import sys
import threading
import tomllib
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

# The same versions and limits as disruptor.workers (this module imports nothing of the package,
# so that it runs where the package is not installed; a test keeps the two in step).
PROTOCOL_VERSIONS = (1, 2)
LINE_BYTES_MAX = 16 * 1024 * 1024
FRAME_BYTES_MAX = 16 * 1024 * 1024
FRAME_HEADER_BYTES = 4
TRACEBACK_CHARS_MAX = 16000
# "1" keeps this worker on protocol version 1 even when it could speak version 2.
PROTOCOL_MAX_ENV = "WORKER_PROTOCOL_MAX"
# Beside this file: packages the peer installs for the runtime (msgspec).
LIB_DIR = "lib"
LOG_PREFIX = "disruptor.worker_runtime:"

Handler = Callable[..., Any]
Message = dict[str, Any]
# What reading the next message can give besides one: the end of stdin.
_END = object()


def batch(function: Handler) -> Handler:
    """Mark a handler as taking the list of a call's items and returning a list of results."""
    function.batch = True  # type: ignore[attr-defined]
    return function


def log(text: str) -> None:
    print(LOG_PREFIX, text, file=sys.stderr, flush=True)


def load_msgspec() -> Any | None:
    """The msgspec module when this worker may speak version 2, else ``None`` (said once)."""
    if os.environ.get(PROTOCOL_MAX_ENV, "").strip() == "1":
        return None
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIB_DIR)
    if os.path.isdir(lib) and lib not in sys.path:
        sys.path.append(lib)  # last: the interpreter's own copy, built for it, wins
    try:
        import msgspec
    except ImportError as exc:
        log(f"msgspec cannot be imported ({exc}); speaking protocol version 1 only")
        return None
    return msgspec


class _Protocol:
    """The protocol's output side: whole lines or frames on the private stdout, one at a time."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def send(self, body: Message) -> None:
        """One version 1 line."""
        body = {"v": 1, **body}
        try:
            line = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            if body.get("type") != "result":
                line = _error_line(body.get("id"), "TypeError", f"reply is not JSON: {exc}")
            else:
                # Only now find the values JSON cannot hold: they fail alone, as their items'
                # errors (checking every value up front would encode each one twice).
                results = [_item_json(r["value"]) if "value" in r else r for r in body["results"]]
                self.send({**body, "results": results})
                return
        if len(line) > LINE_BYTES_MAX:
            line = _error_line(body.get("id"), "ValueError", "reply exceeds the line size limit")
        self._write(line + b"\n")

    def send_frame(self, body: bytes) -> None:
        """One version 2 frame (``body`` is within ``FRAME_BYTES_MAX``)."""
        self._write(struct.pack(">I", len(body)) + body)

    def _write(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                written = self._out.write(view)
                view = view[written or 0 :]
            self._out.flush()


def _error_line(call_id: Any, type_: str, message: str) -> bytes:
    body = {"v": 1, "type": "error", "id": call_id}
    body["error"] = {"type": type_, "message": message}
    return json.dumps(body, separators=(",", ":")).encode()


def _error_json(exc: BaseException) -> Message:
    # Leave out this runtime's own frames: the traceback should show the bundle's code.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    tail = text[-TRACEBACK_CHARS_MAX:]
    return {"type": type(exc).__name__, "message": str(exc), "traceback": tail}


def _item_json(value: Any) -> Message:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return {"error": {"type": "TypeError", "message": f"result is not JSON: {exc}"}}
    return {"value": value}


Failures = list[tuple[int, BaseException]]


def _run_extending(handler: Handler, items: list[Any]) -> tuple[list[Any], Failures]:
    """Every item through ``handler`` once, in order; a failure leaves ``None`` at its offset.

    ``list.extend`` over ``map`` runs the loop in C; when the handler raises, the values appended
    so far stay and the iterator has moved past the failed item, so the loop resumes with the
    next one. (``_EXTEND_KEEPS_PARTIAL`` checks this at start-up; else ``_run_looping``.)
    """
    values: list[Any] = []
    failures: Failures = []
    rest = iter(items)
    while True:
        try:
            values.extend(map(handler, rest))
            return values, failures
        except Exception as exc:  # one item's failure leaves the others alone
            failures.append((len(values), exc))
            values.append(None)


def _run_looping(handler: Handler, items: list[Any]) -> tuple[list[Any], Failures]:
    values: list[Any] = []
    failures: Failures = []
    for item in items:
        try:
            values.append(handler(item))
        except Exception as exc:
            failures.append((len(values), exc))
            values.append(None)
    return values, failures


def _extend_keeps_partial() -> bool:
    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError(x)
        return x

    values, failures = _run_extending(fail_on_two, [1, 2, 3])
    return values == [1, None, 3] and [offset for offset, _ in failures] == [1]


_EXTEND_KEEPS_PARTIAL = _extend_keeps_partial()
run_items = _run_extending if _EXTEND_KEEPS_PARTIAL else _run_looping


class Calls:
    """Runs calls through the handler and writes their replies."""

    def __init__(self, handler: Handler, protocol: _Protocol, msgspec: Any | None = None) -> None:
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
        self.invoke: Handler = self._invoke_async if self.is_async else handler
        self._msgspec = msgspec
        if msgspec is not None:
            self._encoder = msgspec.msgpack.Encoder()
            self._decoder = msgspec.msgpack.Decoder()
            self._raw = msgspec.Raw
            self._cannot_encode: tuple[type[Exception], ...] = (
                TypeError,
                ValueError,
                OverflowError,
                RecursionError,
                msgspec.EncodeError,
            )

    # --- version 1 ---

    def run_call(self, message: Message) -> None:
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
                values = self.invoke(items)
                if not isinstance(values, list) or len(values) != len(items):
                    raise TypeError(f"batch handler must return a list of {len(items)} results")
            except Exception as exc:  # the handler's failure is the call's error, not ours
                self.protocol.send({"type": "error", "id": call_id, "error": _error_json(exc)})
                return
            results = [{"value": v} for v in values]
        else:
            results = []
            for item in items:
                try:
                    results.append({"value": self.invoke(item)})
                except Exception as exc:  # one item's failure leaves the others alone
                    results.append({"error": _error_json(exc)})
        self.protocol.send({"type": "result", "id": call_id, "results": results})

    # --- version 2 ---

    def decode(self, body: bytes) -> Any:
        return self._decoder.decode(body)

    def run_call_v2(self, message: Message) -> None:
        call_id = message.get("id")
        parts = message.get("parts")
        if not isinstance(parts, list) or not all(isinstance(p, list) for p in parts):
            error = {"type": "ValueError", "message": "call.parts must be an array of arrays"}
            self._send_v2({"v": 2, "type": "error", "id": call_id, "error": error})
            return
        replies = [self._run_part(items) for items in parts]
        body = {"v": 2, "type": "result", "id": call_id, "parts": replies}
        try:
            data = self._encoder.encode(body)
        except self._cannot_encode:
            body["parts"] = [self._encode_part(p) for p in replies]
            data = self._encoder.encode(body)
        if len(data) > FRAME_BYTES_MAX:
            data = self._fit(body)
        self.protocol.send_frame(data)

    def _run_part(self, items: list[Any]) -> Message:
        if self.is_batch:
            try:
                values = self.invoke(items)
                if not isinstance(values, list) or len(values) != len(items):
                    raise TypeError(f"batch handler must return a list of {len(items)} results")
            except Exception as exc:  # the handler's failure is the part's error, not ours
                return {"error": _error_json(exc)}
            return {"values": values, "errors": []}
        values, failures = run_items(self.invoke, items)
        return {"values": values, "errors": [[i, _error_json(exc)] for i, exc in failures]}

    def _encode_part(self, part: Message) -> Message:
        """The part with its values encoded apart; a value that cannot be is its item's error."""
        if "values" not in part:
            return part
        values = part["values"]
        try:
            return {"values": self._raw(self._encoder.encode(values)), "errors": part["errors"]}
        except self._cannot_encode:
            pass
        errors = {offset: error for offset, error in part["errors"]}
        kept = []
        for offset, value in enumerate(values):
            try:
                self._encoder.encode(value)
            except self._cannot_encode as exc:
                message = f"result cannot be encoded: {exc}"
                errors[offset] = {"type": "TypeError", "message": message}
                value = None
            kept.append(value)
        return {"values": kept, "errors": [[o, errors[o]] for o in sorted(errors)]}

    def _fit(self, body: Message) -> bytes:
        """A reply over the frame limit: its largest parts fail instead, until it fits."""
        parts = [self._raw(self._encoder.encode(p)) for p in body["parts"]]
        too_big = {"type": "ValueError", "message": "results exceed the frame size limit"}
        failed = self._raw(self._encoder.encode({"error": too_big}))
        for index in sorted(range(len(parts)), key=lambda i: -len(parts[i])):
            parts[index] = failed
            data: bytes = self._encoder.encode({**body, "parts": parts})
            if len(data) <= FRAME_BYTES_MAX:
                return data
        raise AssertionError("a reply of failed parts exceeds the frame limit")

    def _send_v2(self, body: Message) -> None:
        self.protocol.send_frame(self._encoder.encode(body))

    def _invoke_async(self, argument: Any) -> Any:
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


def read_line(stdin: BinaryIO) -> Any:
    """The next version 1 message, ``None`` for a line to ignore, or ``_END``."""
    line = stdin.readline(LINE_BYTES_MAX + 1)
    if not line:
        return _END
    if not line.endswith(b"\n"):
        log("over-long request line ignored")
        while line and not line.endswith(b"\n"):
            line = stdin.readline(LINE_BYTES_MAX + 1)
        return None
    try:
        message = json.loads(line)
    except ValueError:
        log("request line is not JSON; ignored")
        return None
    return message if isinstance(message, dict) else None


def read_frame(stdin: BinaryIO, calls: Calls) -> Any:
    """The next version 2 message, ``None`` for a frame to ignore, or ``_END``."""
    header = stdin.read(FRAME_HEADER_BYTES)
    if len(header) < FRAME_HEADER_BYTES:
        return _END
    (length,) = struct.unpack(">I", header)
    if length > FRAME_BYTES_MAX:
        log("over-long request frame ignored")
        while length:
            skipped = len(stdin.read(min(length, 1 << 20)))
            if not skipped:
                return _END
            length -= skipped
        return None
    body = stdin.read(length)
    if len(body) < length:
        return _END
    try:
        message = calls.decode(body)
    except Exception:
        log("request frame is not MessagePack; ignored")
        return None
    return message if isinstance(message, dict) else None


def serve(
    handler: Handler,
    concurrency: int,
    stdin: BinaryIO,
    protocol: _Protocol,
    msgspec: Any | None = None,
) -> int:
    """Say ready, then answer calls until a shutdown message or the end of stdin."""
    calls = Calls(handler, protocol, msgspec)
    slots = threading.BoundedSemaphore(concurrency)
    threads: list[threading.Thread] = []
    protocol.send(
        {
            "type": "ready",
            "pid": os.getpid(),
            "concurrency": concurrency,
            "runtime": f"python/{sys.version_info[0]}.{sys.version_info[1]}",
            "protocols": list(PROTOCOL_VERSIONS) if msgspec is not None else [1],
        }
    )
    version = 1
    while True:
        message = read_line(stdin) if version == 1 else read_frame(stdin, calls)
        if message is _END:
            break
        if message is None:
            continue
        kind = message.get("type")
        if kind == "protocol" and version == 1 and msgspec is not None:
            if message.get("version") == 2:
                version = 2  # from the next message on, in both directions
            continue
        if kind == "shutdown":
            break
        if kind != "call":
            continue  # unknown messages are ignored, as the protocol says
        run = calls.run_call if version == 1 else calls.run_call_v2
        if concurrency == 1:
            run(message)
            continue
        slots.acquire()
        thread = threading.Thread(target=_run_in_slot, args=(run, message, slots), daemon=True)
        thread.start()
        threads = [t for t in threads if t.is_alive()] + [thread]
    for thread in threads:
        thread.join()
    return 0


def _run_in_slot(
    run: Callable[[Message], None], message: Message, slots: threading.BoundedSemaphore
) -> None:
    try:
        run(message)
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
    msgspec = load_msgspec()
    try:
        handler, concurrency = load_handler(bundle_dir)
    except Exception:
        traceback.print_exc()
        log("the handler failed to load")
        return 1
    return serve(handler, concurrency, sys.stdin.buffer, protocol, msgspec)


if __name__ == "__main__":
    sys.exit(main())
