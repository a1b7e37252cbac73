"""Log output (text or JSON lines) and the request id that ties one job's log lines together.

Every HTTP request runs with a request id in a context variable: the one its caller sent in
``X-Request-Id`` (if it looks sane) or a fresh one. Log lines written while serving it carry the
id, responses echo it, and calls this peer makes to other peers on the request's behalf forward it
with ``forward_headers()``, so one job's lines can be found on every peer it touched.

Rule: an id received from outside is used only if it is short and made of safe characters, so a
caller cannot inject line breaks or megabytes into the logs.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_CHARS_MAX = 128
_SAFE_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{REQUEST_ID_CHARS_MAX}}}")

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "disruptor_request_id", default=None
)


# Ids are a random prefix for this process and a count within it: unique across a cluster's logs
# without a call for randomness per request.
_ID_PREFIX = secrets.token_hex(4)
_ids = itertools.count()


def new_request_id() -> str:
    """A fresh id: 16 hex digits, unique enough to grep for across a cluster's logs."""
    return f"{_ID_PREFIX}{next(_ids) & 0xFFFFFFFF:08x}"


def accept_request_id(presented: str | None) -> str:
    """The caller's id if it is safe to log and echo, else a fresh one."""
    if presented and _SAFE_ID.fullmatch(presented):
        return presented
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return request_id_var.get()


def forward_headers() -> dict[str, str]:
    """Headers for a call to another peer made on behalf of the current request.

    Empty outside a request, so callers can always merge it into their headers.
    """
    request_id = request_id_var.get()
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


@contextmanager
def request_context(request_id: str) -> Iterator[str]:
    """Run a block (and the tasks it creates) with ``request_id`` as the current id."""
    token = request_id_var.set(request_id)
    try:
        yield request_id
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (or ``-``) to every record, so formats can name it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record, not when set up.

    So a program (or test runner) that swaps ``sys.stderr`` later still gets the lines, and a
    stream closed since is never written to.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_HANDLER_NAME = "disruptor"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(
    level: str = "warning", fmt: str = "text", stream: TextIO | None = None
) -> None:
    """Send logs to ``stream`` (stderr) as ``fmt`` at ``level``.

    Calling it again replaces the handler it installed before (and no other: a host program's
    or test runner's handlers stay).
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
