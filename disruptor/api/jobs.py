"""``/jobs`` (submit, watch, cancel) and ``/tasks`` (attempts placed here by other peers).

``POST /jobs`` request: ``{"bundle": SHA1 | "snippet": SOURCE | "snippet_sha1": SHA1,
"items": [...]}`` plus optional ``policy`` (least-loaded, round-robin, weighted,
least-connections, broadcast), ``peers`` (a count, or a list of HOST:PORT), ``chunk_size``,
``reduce`` (snippet source with ``reduce(results)`` or ``combine(acc, item)``), ``timeout_s`` (per
item), ``retries``, ``fail_fast``, ``wait`` (default true) and ``stream``. Header
``Idempotency-Key`` makes a resubmission return the job already started for that key.

Response (``wait``): ``{"id", "state", "progress", "results": [ItemOutcome JSON, ...]}`` in item
order (``reduced`` instead of nothing else when a reduce snippet was given; for ``broadcast``, one
``{"peer", "results"}`` per peer). With ``Accept: application/x-ndjson`` (or ``stream: true``)
each result is a line ``{"index": I, "value"|"error", "peer"}`` as it completes, then a last line
``{"done": true, "id", "state", "progress"}``. ``wait: false``: 202 and ``{"id", "state"}``.

``GET /jobs/<id>`` gives state, progress and results; ``DELETE /jobs/<id>`` cancels it on every
peer. ``POST /tasks`` and ``DELETE /tasks/<job>`` are the peers' own calls (cluster secret), served
by the ``TaskServer``; jobs are the ``JobCoordinator``'s.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..address import Address
from ..errors import InvalidPayload, UnsupportedMediaType
from ..jobs.coordinator import JobCoordinator
from ..jobs.job import Job
from ..jobs.model import JobOptions, Kind, Work
from ..jobs.policies import POLICY_NAMES
from ..jobs.served import TaskServer
from .context import PARTS

ITEMS_MAX = 1_000_000
RETRIES_MAX = 10
CHUNK_SIZE_MAX = 100_000
SNIPPET_CHARS_MAX = 1_000_000
IDEMPOTENCY_KEY_CHARS_MAX = 128
NDJSON = "application/x-ndjson"


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 4xx saying what is wrong with it."""
    if request.content_type not in ("application/json", "application/octet-stream", ""):
        raise UnsupportedMediaType(f"expected application/json, got {request.content_type}")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidPayload("body must be a JSON object")
    return body


def coordinator_of(request: web.Request) -> JobCoordinator:
    return request.app[PARTS].jobs


def tasks_of(request: web.Request) -> TaskServer:
    return request.app[PARTS].tasks


def parse_work(body: dict[str, Any]) -> Work:
    """What a job or a task runs: exactly one of bundle, snippet, snippet_sha1."""
    named = [k for k in ("bundle", "snippet", "snippet_sha1") if body.get(k) is not None]
    if len(named) != 1:
        raise InvalidPayload("a job names exactly one of 'bundle', 'snippet' or 'snippet_sha1'")
    value = body[named[0]]
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"'{named[0]}' must be a non-empty string")
    if named[0] == "snippet":
        if len(value) > SNIPPET_CHARS_MAX:
            raise InvalidPayload(f"'snippet' is longer than {SNIPPET_CHARS_MAX} characters")
        return Work(Kind.SNIPPET, snippet=value)
    if len(value) != 40 or any(c not in "0123456789abcdef" for c in value):
        raise InvalidPayload(f"'{named[0]}' must be 40 lowercase hex digits (a SHA-1)")
    if named[0] == "bundle":
        return Work(Kind.BUNDLE, bundle=value)
    return Work(Kind.SNIPPET, snippet_sha1=value)


def parse_items(body: dict[str, Any]) -> list[Any]:
    items = body.get("items")
    if not isinstance(items, list):
        raise InvalidPayload("'items' must be a JSON array")
    if len(items) > ITEMS_MAX:
        raise InvalidPayload(f"at most {ITEMS_MAX} items in one job")
    return items


def _positive_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidPayload(f"'{key}' must be a positive number")
    return float(value)


def _int_in(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidPayload(f"'{key}' must be an integer from {low} to {high}")
    return value


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise InvalidPayload(f"'{key}' must be true or false")
    return value


def parse_options(body: dict[str, Any]) -> JobOptions:
    policy = body.get("policy", "least-loaded")
    if policy not in POLICY_NAMES:
        raise InvalidPayload(f"'policy' must be one of {', '.join(POLICY_NAMES)}")
    peers = body.get("peers")
    peer_count: int | None = None
    peer_list: tuple[str, ...] = ()
    if isinstance(peers, list):
        if not peers or not all(isinstance(p, str) for p in peers):
            raise InvalidPayload("'peers' must be a count or a non-empty list of HOST:PORT")
        peer_list = tuple(str(Address.parse(p)) for p in peers)
    elif peers is not None and peers != "all":
        peer_count = _int_in(body, "peers", 1, 100_000)
    retries = _int_in(body, "retries", 0, RETRIES_MAX)
    return JobOptions(
        policy=policy,
        chunk_size=_int_in(body, "chunk_size", 1, CHUNK_SIZE_MAX),
        timeout_s=_positive_number(body, "timeout_s"),
        retries=1 if retries is None else retries,
        fail_fast=_bool(body, "fail_fast", False),
        peer_count=peer_count,
        peer_list=peer_list,
    )


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_CHARS_MAX or not key.isprintable():
        raise InvalidPayload(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_CHARS_MAX} printable characters"
        )
    return key


async def post_jobs(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    work, items, options = parse_work(body), parse_items(body), parse_options(body)
    reduce = body.get("reduce")
    if reduce is not None and (not isinstance(reduce, str) or len(reduce) > SNIPPET_CHARS_MAX):
        raise InvalidPayload("'reduce' must be snippet source text")
    stream = _bool(body, "stream", False) or NDJSON in request.headers.get("Accept", "")
    wait = _bool(body, "wait", True)
    coordinator = coordinator_of(request)
    key = idempotency_key(request)
    if key is None or coordinator.by_key(key) is None:
        work = await coordinator.prepare(work)
    job = coordinator.submit(work, items, options, reduce=reduce, idempotency_key=key)
    if not wait:
        return web.json_response({"id": job.job_id, "state": job.state.value}, status=202)
    if stream:
        return await stream_results(request, job)
    await job.done.wait()
    return web.json_response(job.to_json())


async def stream_results(request: web.Request, job: Job) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "X-Job-Id": job.job_id})
    await response.prepare(request)
    finished = False
    try:
        async for index, outcome in job.results_as_completed():
            line = {"index": index, **job.outcome_json(outcome)}
            await response.write(json.dumps(line).encode() + b"\n")
        await job.done.wait()
        tail = {"done": True, **job.to_json(results=False)}
        await response.write(json.dumps(tail).encode() + b"\n")
        finished = True
    finally:
        if not finished and not job.state.finished:
            # The requester went away: nobody will read these results.
            coordinator_of(request).cancel(job.job_id)
    await response.write_eof()
    return response


async def get_jobs(request: web.Request) -> web.Response:
    coordinator = coordinator_of(request)
    return web.json_response(
        {
            "peers": coordinator.live_peers(),
            "running": coordinator.in_flight(),
            "recent": coordinator.recent(),
        }
    )


async def get_job(request: web.Request) -> web.Response:
    job = coordinator_of(request).get(request.match_info["job_id"])
    results = request.query.get("results", "true") != "false"
    return web.json_response(job.to_json(results=results))


async def delete_job(request: web.Request) -> web.Response:
    job = coordinator_of(request).cancel(request.match_info["job_id"])
    return web.json_response(job.to_json(results=False))


async def post_tasks(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    work, items = parse_work(body), parse_items(body)
    for key in ("job", "task"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise InvalidPayload(f"'{key}' must be a non-empty string")
    body["items"] = items
    _positive_number(body, "timeout_s")
    outcomes = await tasks_of(request).serve_task(work, body)
    return web.json_response({"results": [o.to_json() for o in outcomes]})


async def post_fetch(request: web.Request) -> web.Response:
    """A peer deploying a bundle asks this one to fetch it from the named sources."""
    body = await read_json_object(request)
    work = parse_work({"bundle": body.get("bundle")})
    sources = body.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise InvalidPayload("'sources' must be a list of HOST:PORT")
    assert work.bundle is not None
    await tasks_of(request).ensure_bundle(work.bundle, [str(Address.parse(s)) for s in sources])
    return web.json_response({"bundle": work.bundle, "held": True})


async def delete_tasks(request: web.Request) -> web.Response:
    stopped = tasks_of(request).abandon_served(
        request.match_info["job_id"], request.query.get("task")
    )
    return web.json_response({"stopped": stopped})


async def get_tasks(request: web.Request) -> web.Response:
    return web.json_response({"serving": tasks_of(request).serving()})


async def cluster_workers(
    request: web.Request, method: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    """``/workers`` on several peers: ``{"peers": {address: reply | {"error": problem}}}``.

    The scope is ``peers`` in a POST body, ``?peers=all|N|HOST:PORT,...`` on a DELETE, and
    every live peer for ``GET /workers?scope=cluster``.
    """
    spec: Any = "all"
    if body is not None:
        spec = body.get("peers")
    elif method == "DELETE":
        text = request.query.get("peers", "all")
        spec = int(text) if text.isdigit() else ("all" if text == "all" else text.split(","))
    fanout = request.app[PARTS].fanout
    return {"peers": await fanout.fan_out(method, request.path, body, spec)}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/jobs", post_jobs)
    app.router.add_get("/jobs", get_jobs)
    app.router.add_get("/jobs/{job_id}", get_job)
    app.router.add_delete("/jobs/{job_id}", delete_job)
    app.router.add_post("/tasks", post_tasks)
    app.router.add_get("/tasks", get_tasks)
    app.router.add_post("/tasks/fetch", post_fetch)
    app.router.add_delete("/tasks/{job_id}", delete_tasks)
