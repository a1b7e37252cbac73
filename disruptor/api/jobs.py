"""``/jobs``: submit a job, watch it, cancel it (``jobs/wire.py`` says what a job may hold).

``POST /jobs`` takes a ``JobSpec`` in JSON, or in MessagePack (``Content-Type:
application/msgpack``), where the items may come as ``chunks`` (each the bytes of one MessagePack
array) that the peers forward without decoding. Fields: exactly one of ``bundle`` (SHA-1),
``snippet`` (source) or ``snippet_sha1``; ``items`` (JSON) or ``chunks``; optional ``policy``
(least-loaded, round-robin, weighted, least-connections, broadcast), ``peers`` (a count, or a
list of HOST:PORT), ``chunk_size``, ``reduce`` (snippet source with ``reduce(results)`` or
``combine(acc, item)``), ``timeout_s`` (per item), ``retries``, ``fail_fast``, ``wait`` (default
true) and ``stream``. Header ``Idempotency-Key`` makes a resubmission return the job already
started for that key.

The answer (``jobs/answer.py`` has the shape) is JSON, or MessagePack with ``Accept:
application/msgpack`` (its values then one array, untouched since the workers encoded them).
With ``Accept: application/x-ndjson`` (or ``stream: true``) each piece of results is a line as it
completes, then a last line ``{"done": true, "id", "state", "progress"...}``. ``wait: false``:
202 and ``{"id", "state"}``. ``GET /jobs/<id>`` gives state, progress and results; ``DELETE
/jobs/<id>`` cancels it on every peer.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidPayload
from ..jobs.answer import job_body, piece_body
from ..jobs.coordinator import JobCoordinator
from ..jobs.job import Job
from ..jobs.wire import IDEMPOTENCY_KEY_CHARS_MAX, JobSpec, chunks_of, options_of, work_of
from .bodies import NDJSON, answer, encoded, json_line, read_message, wants_msgpack
from .context import PARTS


def coordinator_of(request: web.Request) -> JobCoordinator:
    return request.app[PARTS].jobs


def idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_CHARS_MAX or not key.isprintable():
        raise InvalidPayload(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_CHARS_MAX} printable characters"
        )
    return key


async def submit(coordinator: JobCoordinator, spec: JobSpec, key: str | None) -> Job:
    """Check a job's fields, then start it (or find the one started under ``key``)."""
    work, options = work_of(spec), options_of(spec)
    items, chunks = chunks_of(spec)
    if key is None or coordinator.by_key(key) is None:
        work = await coordinator.prepare(work)
    return coordinator.submit(
        work, items, options, chunks=chunks, reduce=spec.reduce, idempotency_key=key
    )


async def post_jobs(request: web.Request) -> web.StreamResponse:
    spec = await read_message(request, JobSpec)
    coordinator = coordinator_of(request)
    job = await submit(coordinator, spec, idempotency_key(request))
    if not spec.wait:
        return answer(request, {"id": job.job_id, "state": job.state.value}, status=202)
    if spec.stream or NDJSON in request.headers.get("Accept", ""):
        return await stream_results(request, job)
    await job.done.wait()
    return encoded(job_body(job, binary=wants_msgpack(request)), binary=wants_msgpack(request))


async def stream_results(request: web.Request, job: Job) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "X-Job-Id": job.job_id})
    await response.prepare(request)
    finished = False
    try:
        async for piece in job.pieces_as_delivered():
            await response.write(json_line(piece_body(piece, binary=False)))
        await job.done.wait()
        await response.write(json_line({"done": True, **job_body(job, results=False)}))
        finished = True
    finally:
        if not finished and not job.state.finished:
            # The requester went away: nobody will read these results.
            coordinator_of(request).cancel(job.job_id)
    await response.write_eof()
    return response


async def get_jobs(request: web.Request) -> web.Response:
    coordinator = coordinator_of(request)
    return answer(
        request,
        {
            "peers": coordinator.live_peers(),
            "running": coordinator.in_flight(),
            "recent": coordinator.recent(),
        },
    )


async def get_job(request: web.Request) -> web.Response:
    job = coordinator_of(request).get(request.match_info["job_id"])
    results = request.query.get("results", "true") != "false"
    binary = wants_msgpack(request)
    return encoded(job_body(job, results=results, binary=binary), binary=binary)


async def delete_job(request: web.Request) -> web.Response:
    job = coordinator_of(request).cancel(request.match_info["job_id"])
    return answer(request, job_body(job, results=False))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/jobs", post_jobs)
    app.router.add_get("/jobs", get_jobs)
    app.router.add_get("/jobs/{job_id}", get_job)
    app.router.add_delete("/jobs/{job_id}", delete_job)
