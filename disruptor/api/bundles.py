"""``/bundles/``: the WebDAV-like bundle store over HTTP.

    OPTIONS  /bundles/[<sha1>]        DAV: 1 and the Allow list
    PROPFIND /bundles/[<sha1>]        207 multistatus (Depth 0 or 1; infinity -> 403 with a
                                      DAV:error body for XML clients); allprop, propname, prop
    GET      /bundles/                JSON list of held bundles
    PUT      /bundles/<sha1>          body = the .tar.zst; header X-Disruptor-Manifest = the
                                      signed manifest (base64url JSON); 201 stored, 204 held
    GET/HEAD /bundles/<sha1>          the bytes, with ETag "<sha1>", Last-Modified,
                                      Content-Length, Range -> 206
    DELETE   /bundles/<sha1>          204
    GET      /bundles/<sha1>/manifest the signed manifest as JSON
    MKCOL, PROPPATCH, COPY, MOVE, LOCK, UNLOCK anywhere: 405 (a content-addressed store)

Rule: the handlers only translate HTTP to store calls; the store decides. Names are checked first
(exactly 40 lower-case hex digits), PUT bodies are never decompressed by the server (any
``Content-Encoding`` but identity is refused), are counted against the size limit as they stream,
and leave nothing behind when they fail. Uploads are few at a time (``body_limits.UploadGate``:
per client, in all, and never into the descriptor reserve: 503 with Retry-After past that). Request
XML goes through ``webdav.parse_propfind`` (defusedxml, no DTD or entity in any encoding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from ..bundles.signing import SignedManifest
from ..bundles.store import BundleInfo, validate_sha1
from ..errors import (
    DigestMismatch,
    DisruptorError,
    Forbidden,
    InvalidName,
    InvalidPayload,
    MethodNotAllowed,
    PayloadTooLarge,
    RangeNotSatisfiable,
    SignatureInvalid,
    Unavailable,
    UnsupportedMediaType,
)
from . import webdav
from .body_limits import UploadGate
from .context import PARTS
from .problem import problem_response

if TYPE_CHECKING:
    from ..bundles.store import BundleStore

MANIFEST_HEADER = "X-Disruptor-Manifest"
BUNDLE_CONTENT_TYPE = webdav.BUNDLE_CONTENT_TYPE
PROPFIND_BODY_BYTES_MAX = 64 * 1024
# Properties one PROPFIND may name: clients ask for a handful; each is answered per bundle.
PROPFIND_NAMES_MAX = 64
READ_CHUNK_BYTES = 256 * 1024
SEND_CHUNK_BYTES = 1024 * 1024

COLLECTION_METHODS = ["OPTIONS", "GET", "HEAD", "PROPFIND"]
RESOURCE_METHODS = ["OPTIONS", "GET", "HEAD", "PUT", "DELETE", "PROPFIND"]
MANIFEST_METHODS = ["OPTIONS", "GET", "HEAD"]
# WebDAV methods that would create, change or lock names: a content-addressed store has no use
# for them, so they are not allowed (405) wherever they are sent, whatever the name.
NEVER_ALLOWED = frozenset({"MKCOL", "PROPPATCH", "COPY", "MOVE", "LOCK", "UNLOCK"})

UPLOADS: web.AppKey[UploadGate] = web.AppKey("bundle_uploads", UploadGate)


def _store(request: web.Request) -> BundleStore:
    return request.app[PARTS].store


def _etag(sha1: str) -> str:
    return f'"{sha1}"'


async def dispatch(request: web.Request) -> web.StreamResponse:
    """One entry point for every method and path under ``/bundles``; names are checked here."""
    try:
        return await _dispatch(request)
    except DisruptorError as error:
        # A WebDAV precondition goes to an XML client as DAV:error (problem details inside).
        precondition = error.extra.get("precondition")
        if isinstance(precondition, str) and webdav.takes_xml(request):
            return webdav.dav_error(error, precondition, request.path)
        raise


async def _dispatch(request: web.Request) -> web.StreamResponse:
    tail = request.match_info.get("tail", "")
    if request.method in NEVER_ALLOWED:
        raise _not_allowed(request, RESOURCE_METHODS if tail else COLLECTION_METHODS)
    if not tail:
        return await _collection(request)
    sha1, slash, rest = tail.partition("/")
    if slash and rest != "manifest":
        raise InvalidName(f"{tail[:80]!r} is not a bundle path: /bundles/<sha1>[/manifest]")
    validate_sha1(sha1)
    if "%" in request.raw_path.partition("?")[0]:
        raise InvalidName("percent-encoded characters are not allowed in a bundle path")
    if rest == "manifest":
        return await _manifest(request, sha1)
    return await _resource(request, sha1)


def _not_allowed(request: web.Request, allow: list[str]) -> MethodNotAllowed:
    return MethodNotAllowed(f"{request.method} is not allowed here", allow=allow)


def _options(allow: list[str]) -> web.Response:
    return web.Response(status=200, headers={"DAV": "1", "Allow": ", ".join(allow)})


async def _collection(request: web.Request) -> web.StreamResponse:
    method = request.method
    store = _store(request)
    if method == "OPTIONS":
        return _options(COLLECTION_METHODS)
    if method in ("GET", "HEAD"):
        return web.json_response({"bundles": [_info_json(i) for i in store.list()]})
    if method == "PROPFIND":
        depth, ask = await _propfind_request(request)
        resources = [("/bundles/", webdav.collection_properties(store.changed_at()))]
        if depth == "1":
            resources += [_resource_properties(info) for info in store.list()]
        return webdav.multistatus(ask, resources)
    raise _not_allowed(request, COLLECTION_METHODS)


async def _manifest(request: web.Request, sha1: str) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return _options(MANIFEST_METHODS)
    if request.method not in ("GET", "HEAD"):
        raise _not_allowed(request, MANIFEST_METHODS)
    manifest = _store(request).manifest(sha1)
    return web.Response(
        body=manifest.to_json(), content_type="application/json", headers={"ETag": _etag(sha1)}
    )


async def _resource(request: web.Request, sha1: str) -> web.StreamResponse:
    method = request.method
    store = _store(request)
    if method == "OPTIONS":
        return _options(RESOURCE_METHODS)
    if method == "PUT":
        return await _put(request, store, sha1)
    if method in ("GET", "HEAD"):
        return await _get(request, store, sha1)
    if method == "DELETE":
        store.delete(sha1)
        return web.Response(status=204)
    if method == "PROPFIND":
        _depth, ask = await _propfind_request(request)
        return webdav.multistatus(ask, [_resource_properties(store.info(sha1))])
    raise _not_allowed(request, RESOURCE_METHODS)


def _resource_properties(info: BundleInfo) -> tuple[str, dict[str, webdav.Filler]]:
    return f"/bundles/{info.sha1}", webdav.bundle_properties(info)


async def _put(request: web.Request, store: BundleStore, sha1: str) -> web.Response:
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is refused: send the bundle's bytes as they are"
        )
    limit = store.limits.upload_bytes_max
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"bundle body exceeds {limit} bytes", limit_bytes=limit)
    manifest = _manifest_from(request, store)
    if manifest is not None:
        if manifest.sha1 != sha1:
            raise DigestMismatch(
                f"the URL names {sha1} but the signed manifest names {manifest.sha1}"
            )
        # Refuse a bad or untrusted signature before reading a byte of the body.
        store.check_signer(manifest)
    if store.has(sha1):
        return web.Response(status=204, headers={"ETag": _etag(sha1)})
    client = request.remote or "local"
    gate = request.app[UPLOADS]
    try:
        gate.enter(client)
    except Unavailable:
        store.stats.uploads_refused_busy += 1
        raise
    try:
        return await _receive(request, store, sha1, manifest)
    finally:
        gate.leave(client)


async def _receive(
    request: web.Request, store: BundleStore, sha1: str, manifest: SignedManifest | None
) -> web.Response:
    upload = store.begin_upload(sha1)
    try:
        while True:
            try:
                chunk = await request.content.read(READ_CHUNK_BYTES)
            except Exception as exc:
                # The client went away, sent fewer bytes than it announced, or too slowly.
                store.stats.uploads_broken += 1
                detail = f"the request body broke off after {upload.size} bytes"
                raise InvalidPayload(detail) from exc
            if not chunk:
                break
            upload.write(chunk)  # the store's errors (size, full disk) are its own
        created = await upload.commit(manifest)
    finally:
        if not upload.done:
            upload.abort()
    headers = {"ETag": _etag(sha1), "Location": f"/bundles/{sha1}"}
    return web.Response(status=201 if created else 204, headers=headers)


def _manifest_from(request: web.Request, store: BundleStore) -> SignedManifest | None:
    value = request.headers.get(MANIFEST_HEADER)
    if value is None:
        if store.insecure_dev:
            return None
        raise SignatureInvalid(
            f"missing signature: send the signed manifest in the {MANIFEST_HEADER} header "
            "(disruptor push does this)"
        )
    return SignedManifest.from_header(value, store.limits.manifest_bytes_max)


async def _get(request: web.Request, store: BundleStore, sha1: str) -> web.StreamResponse:
    path = store.path(sha1)
    st = path.stat()
    size = st.st_size
    headers = {
        "ETag": _etag(sha1),
        "Last-Modified": webdav.http_date(st.st_mtime),
        "Accept-Ranges": "bytes",
        "Content-Type": BUNDLE_CONTENT_TYPE,
        "Cache-Control": "public, max-age=31536000, immutable",
    }
    if _etag(sha1) in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={"ETag": _etag(sha1)})
    start, end, status = 0, size, 200
    if "Range" in request.headers:
        span = _byte_range(request, size)
        if span is None:
            refusal = problem_response(
                RangeNotSatisfiable(f"the bundle has {size} bytes"), request.path
            )
            refusal.headers["Content-Range"] = f"bytes */{size}"
            return refusal
        start, end, status = span[0], span[1], 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response = web.StreamResponse(status=status, headers=headers)
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(SEND_CHUNK_BYTES, left))
            if not chunk:
                break
            left -= len(chunk)
            await response.write(chunk)
    await response.write_eof()
    return response


def _byte_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a satisfiable single byte range, else None."""
    try:
        rng = request.http_range
    except ValueError:
        return None
    start = 0 if rng.start is None else rng.start
    stop = size if rng.stop is None else min(rng.stop, size)
    if start < 0:  # a suffix range: the last -start bytes
        start, stop = max(0, size + start), size
    if start >= stop:
        return None
    return start, stop


async def _propfind_request(request: web.Request) -> tuple[str, webdav.Propfind]:
    """The Depth (0 or 1) and what a PROPFIND asks for, its body read within its limit."""
    depth = request.headers.get("Depth", "infinity").strip().lower()
    if depth not in ("0", "1"):
        raise Forbidden(
            "PROPFIND needs Depth: 0 or 1 (Depth: infinity is refused)",
            precondition="propfind-finite-depth",
        )
    if request.content_length is not None and request.content_length > PROPFIND_BODY_BYTES_MAX:
        raise PayloadTooLarge(f"PROPFIND body exceeds {PROPFIND_BODY_BYTES_MAX} bytes")
    body = await request.content.read(PROPFIND_BODY_BYTES_MAX + 1)
    if len(body) > PROPFIND_BODY_BYTES_MAX:
        raise PayloadTooLarge(f"PROPFIND body exceeds {PROPFIND_BODY_BYTES_MAX} bytes")
    ask = webdav.parse_propfind(body)
    if len(ask.names) > PROPFIND_NAMES_MAX:
        raise InvalidPayload(f"PROPFIND may name at most {PROPFIND_NAMES_MAX} properties")
    return depth, ask


def _info_json(info: BundleInfo) -> dict[str, object]:
    return {
        "sha1": info.sha1,
        "size": info.size,
        "name": info.name,
        "version": info.version,
        "signer": info.key_id,
        "signed_at": info.signed_at,
        "created_at": info.created_at,
    }


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/bundles", dispatch)
    app.router.add_route("*", "/bundles/{tail:.*}", dispatch)
