"""The Python worker runtime, spoken to directly over its pipes, as any peer would."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest

from disruptor import worker_runtime as runtime
from disruptor.workers import framing, isolation


def bundle(tmp_path: Path, code: str, worker: str = "") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "bundle.toml").write_text(
        f'name = "t"\nversion = "1"\n[worker]\nhandler = "app:handle"\n{worker}\n'
    )
    (tmp_path / "app.py").write_text(textwrap.dedent(code))
    return tmp_path


def converse(directory: Path, *requests: Any) -> tuple[list[dict[str, Any]], str, int]:
    lines = b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in requests
    )
    done = subprocess.run(
        [sys.executable, "-m", "disruptor.worker_runtime", str(directory)],
        input=lines,
        capture_output=True,
        timeout=60,
        check=False,
    )
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    return replies, done.stderr.decode(), done.returncode


def call(call_id: int, items: list[Any]) -> dict[str, Any]:
    return {"v": 1, "type": "call", "id": call_id, "items": items}


SHUTDOWN = {"v": 1, "type": "shutdown"}


def test_ready_then_results_then_clean_shutdown(tmp_path: Path) -> None:
    code = """\
        def handle(item):
            print("log line for", item)
            return {"twice": item * 2}
    """
    replies, stderr, status = converse(bundle(tmp_path, code), call(1, [1, "a"]), SHUTDOWN)
    ready, result = replies
    assert ready["v"] == 1 and ready["type"] == "ready" and ready["concurrency"] == 1
    assert result == {
        "v": 1,
        "type": "result",
        "id": 1,
        "results": [{"value": {"twice": 2}}, {"value": {"twice": "aa"}}],
    }
    assert "log line for 1" in stderr and status == 0


def test_unknown_and_malformed_requests_are_ignored(tmp_path: Path) -> None:
    code = "def handle(item):\n    return item\n"
    replies, stderr, status = converse(
        bundle(tmp_path, code),
        {"v": 1, "type": "ping", "future_field": True},
        b"not json at all",
        {**call(5, [7]), "future_field": {"x": 1}},
        SHUTDOWN,
        call(6, [8]),  # after shutdown: never answered
    )
    assert [r["type"] for r in replies] == ["ready", "result"]
    assert replies[1]["id"] == 5 and replies[1]["results"] == [{"value": 7}]
    assert "not JSON" in stderr and status == 0


def test_results_that_are_not_json_become_item_errors(tmp_path: Path) -> None:
    code = """\
        def handle(item):
            return {1, 2} if item == "set" else float("nan") if item == "nan" else item
    """
    replies, _, _ = converse(bundle(tmp_path, code), call(1, ["set", "nan", "ok"]), SHUTDOWN)
    results = replies[1]["results"]
    assert results[0]["error"]["type"] == "TypeError"
    assert results[1]["error"]["type"] == "TypeError"
    assert results[2] == {"value": "ok"}


def test_async_handler_and_setup(tmp_path: Path) -> None:
    code = """\
        import asyncio
        PREFIX = []
        def setup():
            PREFIX.append("ready:")
        async def handle(item):
            await asyncio.sleep(0)
            return PREFIX[0] + item
    """
    replies, _, _ = converse(bundle(tmp_path, code), call(1, ["a", "b"]), SHUTDOWN)
    assert replies[1]["results"] == [{"value": "ready:a"}, {"value": "ready:b"}]


def test_failing_setup_exits_before_ready_with_the_traceback(tmp_path: Path) -> None:
    code = "def setup():\n    raise OSError('no model')\ndef handle(item):\n    return item\n"
    replies, stderr, status = converse(bundle(tmp_path, code), SHUTDOWN)
    assert replies == [] and status == 1
    assert "OSError: no model" in stderr


def test_runtime_imports_nothing_heavy() -> None:
    probe = (
        "import sys, runpy; sys.argv = ['x']; "
        "import disruptor.worker_runtime; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp', 'cryptography', 'zstandard', 'asyncio')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("over", [1, 1000])
def test_over_long_request_line_is_skipped(tmp_path: Path, over: int, monkeypatch: Any) -> None:
    code = "def handle(item):\n    return item\n"
    long_line = json.dumps(call(1, ["x" * (runtime.LINE_BYTES_MAX + over)])).encode()
    replies, stderr, _ = converse(bundle(tmp_path, code), long_line, call(2, [1]), SHUTDOWN)
    assert [r.get("id") for r in replies] == [None, 2]
    assert "over-long" in stderr


# --- protocol version 2 ---


def frame(body: dict[str, Any]) -> bytes:
    return framing.encode_frame(msgspec.msgpack.encode({"v": 2, **body}))


def call_v2(call_id: int, *parts: list[Any]) -> bytes:
    return frame({"type": "call", "id": call_id, "parts": list(parts)})


SWITCH = json.dumps({"v": 1, "type": "protocol", "version": 2}).encode() + b"\n"
SHUTDOWN_V2 = frame({"type": "shutdown"})


def converse_v2(
    argv: list[str], *requests: bytes, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], str, int]:
    """The ready line, then every frame the worker wrote after the switch."""
    done = subprocess.run(
        argv,
        input=SWITCH + b"".join(requests),
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    ready_line, _, rest = done.stdout.partition(b"\n")
    events = framing.FrameDecoder().feed(rest)
    assert all(isinstance(e, framing.BinaryFrame) for e in events), events
    replies = [msgspec.msgpack.decode(e.data) for e in events]  # type: ignore[union-attr]
    return json.loads(ready_line), replies, done.stderr.decode(), done.returncode


def module_argv(directory: Path) -> list[str]:
    return [sys.executable, "-m", "disruptor.worker_runtime", str(directory)]


def test_version_2_results_per_part_with_item_errors(tmp_path: Path) -> None:
    code = """\
        def handle(item):
            print("log line for", item)
            return 10 // item
    """
    ready, replies, stderr, status = converse_v2(
        module_argv(bundle(tmp_path, code)), call_v2(7, [5, 0, 2], [1]), SHUTDOWN_V2
    )
    assert ready["protocols"] == [1, 2]
    ((reply),) = replies
    assert reply["v"] == 2 and reply["type"] == "result" and reply["id"] == 7
    first, second = reply["parts"]
    assert first["values"] == [2, None, 5] and second == {"values": [10], "errors": []}
    ((offset, error),) = first["errors"]
    assert offset == 1 and error["type"] == "ZeroDivisionError"
    assert "app.py" in error["traceback"] and "worker_runtime" not in error["traceback"]
    assert "log line for 5" in stderr and status == 0


def test_version_2_values_that_cannot_be_encoded_fail_alone(tmp_path: Path) -> None:
    code = """\
        def handle(item):
            return {"object": object(), "huge": 2**70, "nan": float("nan")}.get(item, item)
    """
    _, (reply,), _, _ = converse_v2(
        module_argv(bundle(tmp_path, code)), call_v2(1, ["ok", "object", "huge", "nan"])
    )
    ((part),) = reply["parts"]
    assert part["values"][:3] == ["ok", None, None] and math.isnan(part["values"][3])
    assert [(o, e["type"]) for o, e in part["errors"]] == [(1, "TypeError"), (2, "TypeError")]
    assert "cannot be encoded" in part["errors"][0][1]["message"]


def test_version_2_batch_handler_runs_per_part_and_fails_only_its_part(tmp_path: Path) -> None:
    code = """\
        CALLS = []
        def handle(items):
            CALLS.append(len(items))
            if "bad" in items:
                raise ValueError("bad batch")
            return [f"{i} (call {len(CALLS)})" for i in items]
        handle.batch = True
    """
    _, (reply,), _, _ = converse_v2(
        module_argv(bundle(tmp_path, code)), call_v2(1, ["a", "b"], ["bad"], ["c"])
    )
    first, bad, third = reply["parts"]
    assert first["values"] == ["a (call 1)", "b (call 1)"] and third["values"] == ["c (call 3)"]
    assert bad["error"]["message"] == "bad batch" and "values" not in bad


def test_version_2_async_handler_with_concurrency(tmp_path: Path) -> None:
    code = """\
        import asyncio
        BARRIER = None
        async def handle(item):
            global BARRIER
            BARRIER = BARRIER or asyncio.Barrier(2)
            await asyncio.wait_for(BARRIER.wait(), 30)
            return item + 1
    """
    directory = bundle(tmp_path, code, worker="concurrency = 2")
    # Each call holds one item; both must run at once for the barrier to open.
    _, replies, _, _ = converse_v2(module_argv(directory), call_v2(1, [1]), call_v2(2, [2]))
    assert sorted((r["id"], r["parts"][0]["values"]) for r in replies) == [(1, [2]), (2, [3])]


def test_version_2_garbage_and_over_long_frames_are_skipped(tmp_path: Path) -> None:
    code = "def handle(item):\n    return item\n"
    over = runtime.FRAME_BYTES_MAX + 1
    _, replies, stderr, status = converse_v2(
        module_argv(bundle(tmp_path, code)),
        framing.encode_frame(b"\xc1"),
        frame({"type": "ping"}),
        frame({"type": "call", "id": 2, "parts": "not parts"}),
        struct.pack(">I", over) + b"\x00" * over,
        call_v2(3, [1]),
        SHUTDOWN_V2,
        call_v2(4, [2]),  # after shutdown: never answered
    )
    assert [(r["type"], r["id"]) for r in replies] == [("error", 2), ("result", 3)]
    assert "not MessagePack" in stderr and "over-long request frame" in stderr and status == 0


def test_protocol_max_setting_keeps_the_runtime_on_version_1(tmp_path: Path) -> None:
    code = "def handle(item):\n    return item\n"
    env = {**os.environ, runtime.PROTOCOL_MAX_ENV: "1"}
    done = subprocess.run(
        module_argv(bundle(tmp_path, code)),
        input=SWITCH + json.dumps(call(1, [5])).encode() + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
    )
    ready, result = (json.loads(line) for line in done.stdout.splitlines())
    assert ready["protocols"] == [1]
    assert result == {"v": 1, "type": "result", "id": 1, "results": [{"value": 5}]}
    assert "msgspec" not in done.stderr.decode()


def installed_argv(tmp_path: Path, directory: Path) -> tuple[list[str], Path]:
    """The runtime as the pool runs it: a file beside its ``lib/``, on an interpreter told to
    ignore every installed package (``-S``), so only that copy of msgspec can be found."""
    target = isolation.install_runtime(tmp_path / "runtime")
    python = os.path.realpath(sys.executable)
    return [python, "-I", "-S", "-B", str(target), str(directory)], target.parent


def test_the_installed_runtime_speaks_version_2_with_its_own_copy_of_msgspec(
    tmp_path: Path,
) -> None:
    directory = bundle(tmp_path / "app", "def handle(item):\n    return [item]\n")
    argv, installed = installed_argv(tmp_path, directory)
    assert (installed / "lib" / "msgspec" / "__init__.py").stat().st_mode & 0o777 == 0o644
    ready, (reply,), stderr, _ = converse_v2(argv, call_v2(1, [1, "a"]), SHUTDOWN_V2)
    assert "msgspec" not in stderr
    assert ready["protocols"] == [1, 2]
    assert reply["parts"] == [{"values": [[1], ["a"]], "errors": []}]
    assert not list(installed.rglob("__pycache__")), "nothing written beside the runtime"


def test_a_msgspec_that_does_not_import_falls_back_to_version_1_saying_so_once(
    tmp_path: Path,
) -> None:
    directory = bundle(tmp_path / "app", "def handle(item):\n    return item\n")
    argv, installed = installed_argv(tmp_path, directory)
    broken = installed / "lib" / "msgspec" / "__init__.py"
    broken.write_text("raise ImportError('built for another interpreter')\n")
    requests = SWITCH + json.dumps(call(1, ["x"])).encode() + b"\n"
    done = subprocess.run(argv, input=requests, capture_output=True, timeout=60, check=False)
    ready, result = (json.loads(line) for line in done.stdout.splitlines())
    assert ready["protocols"] == [1] and result["results"] == [{"value": "x"}]
    stderr = done.stderr.decode()
    assert stderr.count("msgspec cannot be imported") == 1
    assert "built for another interpreter" in stderr and "version 1 only" in stderr
