"""``disruptor start|stop``: a table of the workers started (``--json`` for the peer's answer)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from disruptor.cli import main
from disruptor.cli.workers_cmd import format_peers_workers, format_workers
from disruptor.client import AsyncClient
from disruptor.peer import Peer

PRIMES = Path(__file__).resolve().parents[2] / "bundles" / "primes"
WORKER = {
    "id": "ab12-0", "bundle": "ab12", "name": "primes", "pid": 4242, "state": "ready",
    "tasks_done": 3, "restarts": 1, "uptime_s": 1.5, "isolation": "bwrap", "uid": 2000000007,
}  # fmt: skip


def test_workers_table() -> None:
    header, row = format_workers([WORKER]).splitlines()
    assert header.split() == ["WORKER", "NAME", "PID", "STATE", "ISOLATION", "UID", "DONE",
                              "RESTARTS"]  # fmt: skip
    assert row.split() == ["ab12-0", "primes", "4242", "ready", "bwrap", "2000000007", "3", "1"]
    assert format_workers([]) == "no workers"


def test_peers_table_names_each_peer_and_why_it_failed() -> None:
    table = format_peers_workers(
        {"127.0.0.1:1": {"workers": [WORKER]}, "127.0.0.1:2": {"error": {"detail": "no room"}}}
    ).splitlines()
    assert table[0].split()[:2] == ["PEER", "WORKER"]
    assert table[1].startswith("127.0.0.1:1  ab12-0")
    assert table[2] == "not started on 127.0.0.1:2: no room"


async def test_start_prints_a_table_and_json_on_request(
    peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncClient(peer.url, home=peer.home) as client:
        sha1 = (await client.push_bundle(PRIMES)).sha1
    address = str(peer.address)
    assert await asyncio.to_thread(main, ["start", sha1, "--count", "1", "--peer", address]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[0] == "WORKER" and " primes " in row and " ready " in row
    code = await asyncio.to_thread(main, ["start", sha1, "--peer", address, "--json"])
    assert code == 0
    (worker, *_) = json.loads(capsys.readouterr().out)["workers"]
    assert worker["name"] == "primes"
    assert await asyncio.to_thread(main, ["stop", sha1, "--peer", address]) == 0
    assert capsys.readouterr().out.strip() == f"stopped the workers of {sha1}"
