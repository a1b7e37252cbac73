"""Request and response bodies in the two encodings the API speaks: JSON and MessagePack.

JSON is the public format; MessagePack is negotiated the usual way (``Content-Type`` for what a
client sends, ``Accept`` for what it wants back: ``application/msgpack``), and peers speak it to
each other. Both are decoded by msgspec straight into the typed messages of the part concerned,
so every refusal names the field. Rule: a body in any other media type is a 415 saying which ones
are accepted; a body that does not decode is a 400 saying why.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from ..chunks import MSGPACK, MSGPACK_TYPES
from ..errors import InvalidPayload, UnsupportedMediaType
from ..jobs.wire import decode_json, decode_msgpack

T = TypeVar("T")
JSON = "application/json"
NDJSON = "application/x-ndjson"
# Sent as JSON when nothing is said: clients that send no Content-Type mean JSON.
JSON_TYPES = frozenset({JSON, "application/octet-stream", "text/plain", ""})
_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()


def sends_msgpack(request: web.Request) -> bool:
    """Whether the request body is MessagePack (else JSON, or refused)."""
    kind = request.content_type
    if kind in MSGPACK_TYPES:
        return True
    if kind in JSON_TYPES:
        return False
    raise UnsupportedMediaType(f"expected {JSON} or {MSGPACK}, got {kind}")


def wants_msgpack(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(kind in accept for kind in MSGPACK_TYPES)


async def read_message(request: web.Request, kind: type[T]) -> T:
    """The body as a ``kind`` (a msgspec struct), in whichever encoding it came."""
    data = await request.read()
    if sends_msgpack(request):
        return decode_msgpack(data, kind)
    return decode_json(data, kind)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx saying what is wrong with it."""
    if request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType(f"expected {JSON}, got {request.content_type}")
    try:
        body = json.loads(await request.read())
    except RecursionError:
        raise InvalidPayload("body nests deeper than this peer decodes") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidPayload("body must be a JSON object")
    return body


def encoded(body: Any, *, binary: bool, status: int = 200) -> web.Response:
    """``body`` as MessagePack or JSON; ``msgspec.Raw`` values go out as they are."""
    if binary:
        return web.Response(body=_msgpack_encoder.encode(body), status=status, content_type=MSGPACK)
    return web.Response(body=_json_encoder.encode(body), status=status, content_type=JSON)


def answer(request: web.Request, body: Any, status: int = 200) -> web.Response:
    """``body`` in the encoding the request asked for."""
    return encoded(body, binary=wants_msgpack(request), status=status)


def json_line(body: Any) -> bytes:
    return _json_encoder.encode(body) + b"\n"
