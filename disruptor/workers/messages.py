"""The worker protocol's messages as data, and the check that turns a JSON object into one.

Rule: every frame carries ``"v": PROTOCOL_VERSION`` and a ``"type"``; fields we do not know are
ignored (so either side may add some), but a known field with the wrong shape is a violation,
reported with what was wrong. See ``docs/worker-protocol.md`` for the prose version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
# How long an error's message and traceback from a worker may be before we cut them.
MESSAGE_CHARS_MAX = 4000
TRACEBACK_CHARS_MAX = 16000

CallId = int


@dataclass(frozen=True)
class WorkerError:
    """An exception inside the worker: its type name, message and (optional) traceback."""

    type: str
    message: str
    traceback: str | None = None


@dataclass(frozen=True)
class Ready:
    pid: int | None
    info: dict[str, Any]


@dataclass(frozen=True)
class ItemResult:
    """One item's reply: a value, or the error it raised."""

    value: Any = None
    error: WorkerError | None = None


@dataclass(frozen=True)
class Result:
    id: CallId
    results: tuple[ItemResult, ...]


@dataclass(frozen=True)
class CallError:
    """The whole call failed (e.g. a batch handler raised): every item gets this error."""

    id: CallId
    error: WorkerError


Inbound = Ready | Result | CallError


class BadMessage(ValueError):
    """A well-framed JSON object that is not a valid worker message."""


def call_frame(call_id: CallId, items: list[Any]) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": "call", "id": call_id, "items": items}


def shutdown_frame() -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": "shutdown"}


def parse_inbound(body: dict[str, Any]) -> Inbound:
    """Check one frame from a worker; raise ``BadMessage`` saying what is wrong."""
    version = body.get("v")
    if version != PROTOCOL_VERSION:
        raise BadMessage(f"unsupported protocol version {version!r} (this peer speaks 1)")
    kind = body.get("type")
    if kind == "ready":
        pid = body.get("pid")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            raise BadMessage("ready.pid must be an integer")
        return Ready(pid, {k: v for k, v in body.items() if k not in ("v", "type")})
    if kind == "result":
        call_id = _call_id(body)
        results = body.get("results")
        if not isinstance(results, list):
            raise BadMessage("result.results must be an array")
        return Result(call_id, tuple(_item_result(r, i) for i, r in enumerate(results)))
    if kind == "error":
        return CallError(_call_id(body), _worker_error(body.get("error"), "error.error"))
    raise BadMessage(f"unknown message type {kind!r} from a worker")


def _call_id(body: dict[str, Any]) -> CallId:
    call_id = body.get("id")
    if isinstance(call_id, bool) or not isinstance(call_id, int):
        raise BadMessage(f"{body.get('type')}.id must be the integer id of a call")
    return call_id


def _item_result(entry: Any, index: int) -> ItemResult:
    if not isinstance(entry, dict):
        raise BadMessage(f"result.results[{index}] must be an object")
    if entry.get("error") is not None:
        return ItemResult(error=_worker_error(entry["error"], f"result.results[{index}].error"))
    if "value" not in entry:
        raise BadMessage(f"result.results[{index}] has neither value nor error")
    return ItemResult(value=entry["value"])


def _worker_error(raw: Any, where: str) -> WorkerError:
    if not isinstance(raw, dict):
        raise BadMessage(f"{where} must be an object with type and message")
    type_ = raw.get("type", "Error")
    message = raw.get("message", "")
    traceback = raw.get("traceback")
    if not isinstance(type_, str) or not isinstance(message, str):
        raise BadMessage(f"{where}.type and .message must be strings")
    if traceback is not None and not isinstance(traceback, str):
        raise BadMessage(f"{where}.traceback must be a string")
    return WorkerError(
        type_[:200] or "Error",
        message[:MESSAGE_CHARS_MAX],
        traceback[-TRACEBACK_CHARS_MAX:] if traceback else None,
    )
