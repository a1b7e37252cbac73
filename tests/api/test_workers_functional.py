"""``/workers`` and ``POST /jobs`` on a real peer with a pushed, signed bundle and real workers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from disruptor.cli import main as cli_main
from disruptor.client import AsyncClient
from disruptor.home import Home
from disruptor.peer import Peer

from ..cluster import item_of

REPO_BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
WAR = "The First World War was to be the war to end all wars."


def auth(peer: Peer) -> dict[str, str]:
    return {"Authorization": f"Bearer {peer.api_token}"}


async def call(peer: Peer, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, peer.url + path, json=body, headers=auth(peer)) as r,
    ):
        text = await r.text()
        data = await r.json(content_type=None) if text else None
        return r.status, data, r.headers.get("Content-Type", "")


async def push(peer: Peer, home: Home, directory: Path) -> str:
    async with AsyncClient(peer.url, home=home) as client:
        return (await client.push_bundle(directory)).sha1


async def test_start_list_run_and_stop_workers_over_http(peer: Peer, home: Home) -> None:
    sha1 = await push(peer, home, REPO_BUNDLES / "wordcount")
    status, body, _ = await call(peer, "POST", "/workers", {"bundle": sha1, "count": 2})
    assert status == 201 and len(body["workers"]) == 2
    assert all(w["state"] == "ready" and w["bundle"] == sha1 for w in body["workers"])

    status, body, _ = await call(peer, "GET", "/workers")
    assert status == 200 and len(body["workers"]) == 2 and body["failed"] == {}
    row = body["workers"][0]
    assert {"bundle", "pid", "state", "tasks_done", "restarts", "uptime_s"} <= set(row)

    status, body, _ = await call(peer, "POST", "/jobs", {"bundle": sha1, "items": [WAR, "a b"]})
    assert status == 200
    first, second = (item_of(body, i) for i in range(2))
    assert (first["value"]["total"], first["value"]["unique"]) == (13, 9)
    assert second["value"]["total"] == 2

    _, listed, _ = await call(peer, "GET", "/workers")
    assert sum(w["tasks_done"] for w in listed["workers"]) == 2

    status, _, _ = await call(peer, "DELETE", f"/workers/{sha1}")
    assert status == 204
    _, listed, _ = await call(peer, "GET", "/workers")
    assert listed["workers"] == []


async def test_jobs_start_the_default_workers_on_demand(peer: Peer, home: Home) -> None:
    sha1 = await push(peer, home, REPO_BUNDLES / "primes")
    status, body, _ = await call(peer, "POST", "/jobs", {"bundle": sha1, "items": [10, 20]})
    assert status == 200 and [v["count"] for v in body["values"]] == [4, 8]
    _, listed, _ = await call(peer, "GET", "/workers")
    assert len(listed["workers"]) == 2, "primes asks for two warm workers"


async def test_bad_requests_are_problem_json(peer: Peer, home: Home) -> None:
    unknown = "0" * 40
    cases = [
        ("POST", "/workers", {"bundle": unknown}, 404, "not-found"),
        ("POST", "/workers", {"bundle": "nope"}, 400, "invalid-name"),
        ("POST", "/workers", {"count": 1}, 400, "invalid-payload"),
        ("POST", "/workers", {"bundle": unknown, "count": 0}, 400, "invalid-payload"),
        ("POST", "/workers", {"bundle": unknown, "count": "2"}, 400, "invalid-payload"),
        ("POST", "/workers", [1, 2], 400, "invalid-payload"),
        ("DELETE", f"/workers/{unknown}", None, 404, "not-found"),
    ]
    for method, path, body, status, slug in cases:
        got, problem, content_type = await call(peer, method, path, body)
        assert got == status, (path, body, problem)
        assert content_type.startswith("application/problem+json")
        assert problem["type"] == f"urn:disruptor:problem:{slug}" and problem["detail"]
    # The peer keeps serving.
    assert (await call(peer, "GET", "/workers"))[0] == 200


async def test_bundle_that_fails_to_unpack_is_a_4xx(peer: Peer, home: Home) -> None:
    sha1 = await push(peer, home, REPO_BUNDLES / "primes")
    assert peer.store is not None
    blob = peer.store.path(sha1)
    blob.chmod(0o600)
    blob.write_bytes(b"\x28\xb5\x2f\xfd" + b"not a zstd frame at all" * 10)
    status, problem, content_type = await call(peer, "POST", "/workers", {"bundle": sha1})
    assert 400 <= status < 500, problem
    assert content_type.startswith("application/problem+json")
    assert (await call(peer, "GET", "/health"))[0] == 200


async def test_broken_bundle_reports_its_stderr(peer: Peer, home: Home, tmp_path: Path) -> None:
    app = tmp_path / "broken"
    app.mkdir()
    (app / "bundle.toml").write_text(
        'name = "broken"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'
    )
    (app / "app.py").write_text("raise RuntimeError('model file missing')\n")
    sha1 = await push(peer, home, app)
    status, problem, _ = await call(peer, "POST", "/workers", {"bundle": sha1})
    assert status == 422 and "model file missing" in problem["detail"]


async def test_cli_start_and_stop(peer: Peer, home: Home, capsys: Any) -> None:
    sha1 = await push(peer, home, REPO_BUNDLES / "stats-perl")
    address = str(peer.address)
    code = await asyncio.to_thread(cli_main, ["start", sha1, "--peer", address, "--count", "2"])
    header, *rows = capsys.readouterr().out.splitlines()
    assert code == 0 and header.startswith("WORKER") and len(rows) == 2
    assert all(" ready " in row for row in rows)
    assert peer.pool is not None and len(peer.pool.workers()) == 2
    code = await asyncio.to_thread(cli_main, ["stop", sha1, "--peer", address])
    assert code == 0 and peer.pool.workers() == []
    code = await asyncio.to_thread(cli_main, ["stop", sha1, "--peer", address])
    assert code == 1 and "no workers" in capsys.readouterr().err
