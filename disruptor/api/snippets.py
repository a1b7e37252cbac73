"""``PUT /snippets/<sha1>`` and ``GET /snippets/<sha1>``: the peer's store of named snippets.

PUT's body is the snippet's UTF-8 source; its SHA-1 must equal the name in the path, and it must
compile under the sandbox's policy, before it is stored (201 when new, 204 when already held).
GET returns the source as ``text/x-python``. A job may then name the snippet by ``snippet_sha1``.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidPayload, PayloadTooLarge
from ..snippets.engine import SnippetEngine
from ..snippets.names import check_sha1
from .context import PARTS


def _engine(request: web.Request) -> SnippetEngine:
    return request.app[PARTS].snippets


async def put_snippet(request: web.Request) -> web.Response:
    sha1 = check_sha1(request.match_info["sha1"])
    engine = _engine(request)
    limit = engine.settings.source_bytes_max
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"snippet source is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"snippet source is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("snippet source must be UTF-8 text") from None
    _, new = await engine.put(source, sha1)
    if not new:
        return web.Response(status=204)
    return web.Response(
        status=201, headers={"Location": f"/snippets/{sha1}"}, content_type="text/plain", text=sha1
    )


async def get_snippet(request: web.Request) -> web.Response:
    sha1 = check_sha1(request.match_info["sha1"])
    source = await _engine(request).get(sha1)
    return web.Response(text=source, content_type="text/x-python", charset="utf-8")


def add_routes(app: web.Application) -> None:
    app.router.add_put("/snippets/{sha1}", put_snippet)
    app.router.add_get("/snippets/{sha1}", get_snippet)
