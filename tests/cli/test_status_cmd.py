"""``disruptor status``: the table, and the command against a real peer."""

from __future__ import annotations

import asyncio

import pytest

from disruptor.cli import main
from disruptor.cli.status_cmd import format_table
from disruptor.peer import Peer


def test_table_formats_states_times_and_load() -> None:
    rows = [
        {"address": "127.0.0.1:1", "state": "alive", "since": 0, "last_seen": 0, "self": True,
         "incarnation": 0, "load": {"tasks_running": 2}},
        {"address": "127.0.0.1:2", "state": "left", "since": 90, "last_seen": 95,
         "incarnation": 3, "load": {}},
    ]  # fmt: skip
    table = format_table(rows, now=100.0).splitlines()
    assert table[0].split()[:2] == ["ADDRESS", "STATE"]
    assert table[1].startswith("127.0.0.1:1 *") and "alive" in table[1] and "now" in table[1]
    assert "left" in table[2] and "10s ago" in table[2] and table[2].rstrip().endswith("3")


async def test_status_prints_the_peer_itself(
    peer: Peer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(main, ["status", str(peer.address)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ADDRESS")
    assert lines[1].startswith(f"{peer.address} *") and "alive" in lines[1]
