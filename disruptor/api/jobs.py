"""``POST /jobs``: run a job's items on this peer (bundle via the worker pool, or a snippet).

This first form runs everything locally; the distributed dispatcher replaces the body of
``run_job`` while keeping the request and response shapes.

Request: ``{"bundle": SHA1 | "snippet": SOURCE | "snippet_sha1": SHA1, "items": [...],
"timeout_s": optional}``. Response: ``{"results": [ItemOutcome JSON, ...]}`` in item order.
"""

from __future__ import annotations

import json
from typing import Any, cast

from aiohttp import web

from ..errors import InvalidPayload, NotFound, UnsupportedMediaType
from ..outcome import BundleExecutor, ItemOutcome, SnippetExecutor
from .context import PEER

ITEMS_MAX = 1_000_000


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx saying what is wrong with it."""
    if request.content_type not in ("application/json", ""):
        raise UnsupportedMediaType(f"expected application/json, got {request.content_type}")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidPayload("body must be a JSON object")
    return body


async def post_jobs(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    outcomes = await run_job(request.app[PEER], body)
    return web.json_response({"results": [o.to_json() for o in outcomes]})


async def run_job(peer: Any, body: dict[str, Any]) -> list[ItemOutcome]:
    items = body.get("items")
    if not isinstance(items, list):
        raise InvalidPayload("'items' must be a JSON array")
    if len(items) > ITEMS_MAX:
        raise InvalidPayload(f"at most {ITEMS_MAX} items in one job")
    timeout = body.get("timeout_s")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise InvalidPayload("'timeout_s' must be a positive number")
    timeout_s = float(timeout) if timeout is not None else None
    if "bundle" in body:
        pool = cast(BundleExecutor | None, getattr(peer, "pool", None))
        if pool is None:
            raise NotFound("this peer runs no worker pool")
        return await pool.run_batch(str(body["bundle"]), items, timeout_s=timeout_s)
    if "snippet" in body or "snippet_sha1" in body:
        runner = cast(SnippetExecutor | None, getattr(peer, "snippets", None))
        if runner is None:
            raise NotFound("this peer runs no snippets")
        source = body.get("snippet")
        sha1 = body.get("snippet_sha1")
        if source is not None and not isinstance(source, str):
            raise InvalidPayload("'snippet' must be Python source text")
        if sha1 is not None and not isinstance(sha1, str):
            raise InvalidPayload("'snippet_sha1' must be a SHA-1 hex string")
        return await runner.run_batch(items, source=source, sha1=sha1, timeout_s=timeout_s)
    raise InvalidPayload("a job names a 'bundle', a 'snippet' or a 'snippet_sha1'")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/jobs", post_jobs)
