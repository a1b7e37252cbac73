from __future__ import annotations

import asyncio
import io
import json
import logging

from disruptor.logs import (
    REQUEST_ID_CHARS_MAX,
    REQUEST_ID_HEADER,
    JsonFormatter,
    RequestIdFilter,
    accept_request_id,
    configure_logging,
    current_request_id,
    forward_headers,
    request_context,
)


def test_a_sane_id_is_kept_and_a_bad_one_replaced() -> None:
    assert accept_request_id("job-42.a_b:c") == "job-42.a_b:c"
    for bad in (None, "", "with space", "line\nbreak", "x" * (REQUEST_ID_CHARS_MAX + 1), "é"):
        fresh = accept_request_id(bad)
        assert fresh != bad
        assert len(fresh) == 16 and int(fresh, 16) >= 0


def test_forward_headers_carry_the_current_id_only_inside_a_request() -> None:
    assert forward_headers() == {}
    assert current_request_id() is None
    with request_context("abc123"):
        assert forward_headers() == {REQUEST_ID_HEADER: "abc123"}
    assert forward_headers() == {}


async def test_tasks_spawned_in_a_request_inherit_its_id() -> None:
    async def call_another_peer() -> dict[str, str]:
        await asyncio.sleep(0)
        return forward_headers()

    with request_context("r-1"):
        task = asyncio.create_task(call_another_peer())
    assert await task == {REQUEST_ID_HEADER: "r-1"}


def _record(message: str) -> logging.LogRecord:
    record = logging.LogRecord("disruptor.x", logging.INFO, __file__, 1, message, (), None)
    RequestIdFilter().filter(record)
    return record


def test_json_lines_name_the_request_id() -> None:
    with request_context("r-7"):
        line = JsonFormatter().format(_record('say "hi"\nthere'))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["msg"] == 'say "hi"\nthere'
    assert entry["request_id"] == "r-7"
    assert entry["level"] == "info" and entry["logger"] == "disruptor.x"
    assert "request_id" not in json.loads(JsonFormatter().format(_record("outside")))


def test_configure_logging_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    level = root.level
    try:
        first, second = io.StringIO(), io.StringIO()
        configure_logging("info", "json", stream=first)
        configure_logging("info", "text", stream=second)
        with request_context("r-9"):
            logging.getLogger("disruptor.test").info("hello")
        assert first.getvalue() == ""
        assert "[r-9] hello" in second.getvalue()
        assert foreign in root.handlers
    finally:
        for handler in list(root.handlers):
            if handler.get_name() == "disruptor" or handler is foreign:
                root.removeHandler(handler)
        root.setLevel(level)
