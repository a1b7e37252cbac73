"""The worker protocol's messages as data, and the checks that turn a frame into one.

Rule: every frame carries its protocol version (``"v"``) and a ``"type"``; fields we do not know
are ignored (so either side may add some), but a known field with the wrong shape is a violation,
reported with what was wrong. Version 1 frames are JSON objects; version 2 frames are MessagePack
maps whose item and value arrays are carried as raw bytes (``msgspec.Raw``), never decoded here.
See ``docs/worker-protocol.md`` for the prose version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..chunks import read_array_header
from ..errors import InvalidPayload

# The versions this peer speaks. Every worker starts in version 1 (its ready line says which
# versions it speaks); the peer then switches to the highest both speak with one version 1 line.
V1 = 1
V2 = 2
PROTOCOL_VERSIONS = (V1, V2)
# How long an error's type, message and traceback from a worker may be before we cut them.
TYPE_CHARS_MAX = 200
MESSAGE_CHARS_MAX = 4000
TRACEBACK_CHARS_MAX = 16000
# Versions a ready line may list (more is a broken worker, not a richer one).
PROTOCOLS_LISTED_MAX = 16

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
    protocols: tuple[int, ...] = (V1,)


@dataclass(frozen=True)
class Result:
    """Version 1: one value slot per item of the call (``None`` where it failed), errors apart."""

    id: CallId
    values: list[Any]
    errors: tuple[tuple[int, WorkerError], ...]


@dataclass(frozen=True)
class PartResult:
    """Version 2: what one part of a call gave, its values still encoded.

    Either ``values`` (a MessagePack array of ``count`` values) with the sparse ``errors``, or
    ``error`` alone: every item of the part failed with it (a batch handler that raised).
    """

    values: bytes | None
    count: int
    errors: tuple[tuple[int, WorkerError], ...] = ()
    error: WorkerError | None = None


@dataclass(frozen=True)
class PartsResult:
    """Version 2: one ``PartResult`` per part of the call, in order."""

    id: CallId
    parts: tuple[PartResult, ...]


@dataclass(frozen=True)
class CallError:
    """The whole call failed (e.g. a batch handler raised): every item gets this error."""

    id: CallId
    error: WorkerError


Inbound = Ready | Result | PartsResult | CallError


class BadMessage(ValueError):
    """A well-framed object that is not a valid worker message."""


# --- version 1: JSON objects ---


def call_frame(call_id: CallId, items: list[Any]) -> dict[str, Any]:
    return {"v": V1, "type": "call", "id": call_id, "items": items}


def shutdown_frame() -> dict[str, Any]:
    return {"v": V1, "type": "shutdown"}


def protocol_frame(version: int) -> dict[str, Any]:
    """The peer's one-line answer to a ready line: from now on, both sides speak ``version``."""
    return {"v": V1, "type": "protocol", "version": version}


def parse_inbound(body: dict[str, Any]) -> Inbound:
    """Check one version 1 frame from a worker; raise ``BadMessage`` saying what is wrong."""
    version = body.get("v")
    if version != V1:
        raise BadMessage(f"unsupported protocol version {version!r} (this line must be 1)")
    kind = body.get("type")
    if kind == "ready":
        pid = body.get("pid")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            raise BadMessage("ready.pid must be an integer")
        info = {k: v for k, v in body.items() if k not in ("v", "type")}
        return Ready(pid, info, _protocols(body.get("protocols", [V1])))
    if kind == "result":
        call_id = _call_id(body)
        results = body.get("results")
        if not isinstance(results, list):
            raise BadMessage("result.results must be an array")
        values: list[Any] = [None] * len(results)
        errors: list[tuple[int, WorkerError]] = []
        for i, entry in enumerate(results):
            if not isinstance(entry, dict):
                raise BadMessage(f"result.results[{i}] must be an object")
            if entry.get("error") is not None:
                errors.append((i, _worker_error(entry["error"], f"result.results[{i}].error")))
            elif "value" in entry:
                values[i] = entry["value"]
            else:
                raise BadMessage(f"result.results[{i}] has neither value nor error")
        return Result(call_id, values, tuple(errors))
    if kind == "error":
        return CallError(_call_id(body), _worker_error(body.get("error"), "error.error"))
    raise BadMessage(f"unknown message type {kind!r} from a worker")


def _protocols(raw: Any) -> tuple[int, ...]:
    if (
        not isinstance(raw, list)
        or not 0 < len(raw) <= PROTOCOLS_LISTED_MAX
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    ):
        raise BadMessage("ready.protocols must be a short array of integer versions")
    return tuple(raw)


def _call_id(body: dict[str, Any]) -> CallId:
    call_id = body.get("id")
    if isinstance(call_id, bool) or not isinstance(call_id, int):
        raise BadMessage(f"{body.get('type')}.id must be the integer id of a call")
    return call_id


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
    return _cut(type_, message, traceback)


def _cut(type_: str, message: str, traceback: str | None) -> WorkerError:
    return WorkerError(
        type_[:TYPE_CHARS_MAX] or "Error",
        message[:MESSAGE_CHARS_MAX],
        traceback[-TRACEBACK_CHARS_MAX:] if traceback else None,
    )


# --- version 2: MessagePack maps ---


class _WireError(msgspec.Struct):
    type: str = "Error"
    message: str = ""
    traceback: str | None = None


class _WirePart(msgspec.Struct):
    # Kept encoded: the values of a part go on to the caller as the bytes they arrived in.
    values: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    errors: list[tuple[int, _WireError]] = msgspec.field(default_factory=list)
    error: _WireError | None = None


class _WireResult(msgspec.Struct, tag="result", tag_field="type"):
    v: int
    id: int
    parts: list[_WirePart]


class _WireCallError(msgspec.Struct, tag="error", tag_field="type"):
    v: int
    id: int
    error: _WireError


class _WireCall(msgspec.Struct, tag="call", tag_field="type"):
    v: int
    id: int
    parts: Sequence[msgspec.Raw]


class _WireShutdown(msgspec.Struct, tag="shutdown", tag_field="type"):
    v: int


_inbound_decoder = msgspec.msgpack.Decoder(_WireResult | _WireCallError)
_encoder = msgspec.msgpack.Encoder()
_SHUTDOWN = _encoder.encode(_WireShutdown(V2))


def call_body(call_id: CallId, parts: Sequence[bytes]) -> bytes:
    """A version 2 call: each part one MessagePack array of items, embedded as it is."""
    return _encoder.encode(_WireCall(V2, call_id, [msgspec.Raw(p) for p in parts]))


def shutdown_body() -> bytes:
    return _SHUTDOWN


def parse_inbound_v2(data: bytes) -> PartsResult | CallError:
    """Check one version 2 frame body from a worker; raise ``BadMessage`` saying what is wrong."""
    try:
        message = _inbound_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise BadMessage(f"not a worker message: {exc}") from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadMessage(f"frame is not MessagePack ({exc})") from None
    if message.v != V2:
        raise BadMessage(f"unsupported protocol version {message.v!r} (this frame must be 2)")
    if isinstance(message, _WireCallError):
        return CallError(message.id, _from_wire(message.error))
    return PartsResult(message.id, tuple(_part(p, i) for i, p in enumerate(message.parts)))


def _part(part: _WirePart, index: int) -> PartResult:
    if part.error is not None:
        if len(part.values) or part.errors:
            raise BadMessage(f"result.parts[{index}] has both an error and values")
        return PartResult(None, 0, error=_from_wire(part.error))
    values = bytes(part.values)
    try:
        count, _ = read_array_header(values)
    except InvalidPayload:
        raise BadMessage(f"result.parts[{index}].values must be an array") from None
    errors = tuple((offset, _from_wire(e)) for offset, e in part.errors)
    return PartResult(values, count, errors)


def _from_wire(error: _WireError) -> WorkerError:
    return _cut(error.type, error.message, error.traceback)
