"""Renders every failure of a request as RFC 9457 problem+json, in one place.

Rule: handlers raise ``disruptor.errors`` classes; aiohttp's own HTTP exceptions (no route, wrong
method, body too large) are translated here; anything else becomes a bare 500 whose body names no
internals (the traceback goes to the log with the request id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import (
    PROBLEM_CONTENT_TYPE,
    DisruptorError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger("disruptor.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BY_STATUS: dict[int, type[DisruptorError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
}


def problem_response(error: DisruptorError, instance: str | None = None) -> web.Response:
    """The HTTP response for ``error``, with the headers its status calls for."""
    body = error.to_problem(instance)
    response = web.Response(
        status=error.status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_CONTENT_TYPE,
    )
    if isinstance(error, Overloaded | Unavailable):
        response.headers["Retry-After"] = str(max(1, round(error.retry_after_s)))
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="disruptor"'
    allow = error.extra.get("allow")
    if isinstance(allow, list):
        response.headers["Allow"] = ", ".join(str(m) for m in allow)
    return response


def translate_http_exception(exc: web.HTTPException) -> DisruptorError:
    cls = _BY_STATUS.get(exc.status)
    if cls is None:
        cls = next(
            (c for c in DisruptorError.registry.values() if c.status == exc.status),
            DisruptorError,
        )
    detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else ""
    error = cls(detail or f"{exc.reason}")
    if exc.status == 405:
        allow = exc.headers.get("Allow", "")
        error.extra["allow"] = [m.strip() for m in allow.split(",") if m.strip()]
    return error


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DisruptorError as error:
        return problem_response(error, request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(translate_http_exception(exc), request.path)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return problem_response(DisruptorError("the peer failed to handle this request"))
