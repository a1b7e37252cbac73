"""The Python worker runtime, spoken to directly over its pipes, as any peer would."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from disruptor import worker_runtime as runtime


def bundle(tmp_path: Path, code: str, worker: str = "") -> Path:
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
