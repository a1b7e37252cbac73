"""``disruptor send`` and ``disruptor submit`` against a real peer process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from disruptor.client import Client
from disruptor.home import Home

from ..cluster import PeerProcess
from ..jobs.support import write_slow_bundle

DOUBLE = "def handle(item):\n    return item * 2\n"


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerProcess]:
    home = tmp_path_factory.mktemp("cli-jobs") / "home"
    Home(home).ensure()
    running = PeerProcess(home).wait_ready()
    try:
        yield running
    finally:
        running.stop()


def cli(peer: PeerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISRUPTOR_HOME": str(peer.home)}
    return subprocess.run(
        [sys.executable, "-m", "disruptor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_send_a_snippet_item(peer: PeerProcess, tmp_path: Path) -> None:
    snippet = tmp_path / "double.py"
    snippet.write_text(DOUBLE)
    done = cli(peer, "send", peer.address, "--snippet", str(snippet), "21")
    assert done.returncode == 0 and json.loads(done.stdout) == 42


def test_send_reports_the_item_error(peer: PeerProcess, tmp_path: Path) -> None:
    snippet = tmp_path / "inverse.py"
    snippet.write_text("def handle(item):\n    return 1 // item\n")
    done = cli(peer, "send", peer.address, "--snippet", str(snippet), "0")
    assert done.returncode == 1
    assert "ZeroDivisionError" in done.stderr


def test_send_bad_json_is_a_clear_error(peer: PeerProcess, tmp_path: Path) -> None:
    snippet = tmp_path / "double.py"
    snippet.write_text(DOUBLE)
    done = cli(peer, "send", peer.address, "--snippet", str(snippet), "{nope")
    assert done.returncode == 1 and "not valid JSON" in done.stderr


def test_submit_streams_ndjson_with_a_progress_bar(peer: PeerProcess, tmp_path: Path) -> None:
    snippet = tmp_path / "double.py"
    snippet.write_text(DOUBLE)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(f"{n}\n" for n in range(100)))
    done = cli(
        peer, "submit", "--snippet", str(snippet), "--peer", peer.address, "--items", str(items)
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(r["index"] for r in rows) == list(range(100))
    assert all(r["value"] == 2 * r["index"] and r["peer"] == peer.address for r in rows)
    assert "100/100" in done.stderr  # the progress bar, on stderr only


def test_submit_with_reduce_prints_the_folded_value(peer: PeerProcess, tmp_path: Path) -> None:
    snippet = tmp_path / "double.py"
    snippet.write_text(DOUBLE)
    fold = tmp_path / "sum.py"
    fold.write_text("def reduce(results):\n    return sum(results)\n")
    items = tmp_path / "items.jsonl"
    items.write_text("1\n2\n3\n")
    done = cli(
        peer,
        "submit",
        "--snippet",
        str(snippet),
        "--reduce",
        str(fold),
        "--peer",
        peer.address,
        "--items",
        str(items),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 12


def test_send_a_bundle_item(peer: PeerProcess, tmp_path: Path) -> None:
    home = Home(peer.home)
    with Client([peer.address], home=home) as client:
        sha1 = client.push_bundle(write_slow_bundle(tmp_path), home=home).sha1
    done = cli(peer, "send", peer.address, sha1, '{"x": 21}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["x"] == 42
    done = cli(peer, "send", peer.address, "0" * 40, "1")
    assert done.returncode == 1 and "no live peer holds bundle" in done.stderr
