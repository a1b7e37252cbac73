"""``/snippets`` and snippet jobs on real peers: store, run, stay responsive, keep secrets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from disruptor.client import AsyncClient
from disruptor.errors import InvalidName, InvalidPayload, NotFound, SnippetRejected
from disruptor.home import Home
from disruptor.peer import Peer

from ..cluster import PeerProcess, eventually, item_of

DOUBLE = "def handle(item):\n    return item * 2\n"


async def post_job(client: AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await client.request_json("POST", "/jobs", json_body=body)
    return result


async def test_snippet_job_maps_items(peer: Peer, home: Home) -> None:
    async with AsyncClient(peer.url, home=home) as client:
        reply = await post_job(client, {"snippet": DOUBLE, "items": [1, 2, "ab", [0]]})
    assert reply["values"] == [2, 4, "abab", [0, 0]]


async def test_put_get_and_run_by_sha1(peer: Peer, home: Home) -> None:
    async with AsyncClient(peer.url, home=home) as client:
        sha1 = await client.put_snippet(DOUBLE)
        assert await client.get_snippet(sha1) == DOUBLE
        # Idempotent: the same source again is 204, and still the same name.
        assert await client.put_snippet(DOUBLE) == sha1
        reply = await post_job(client, {"snippet_sha1": sha1, "items": [21]})
        assert reply["values"][0] == 42
        with pytest.raises(NotFound):
            await client.get_snippet("0" * 40)
        with pytest.raises(InvalidName):
            await client.get_snippet("not-a-sha1")
        with pytest.raises(SnippetRejected):
            await client.put_snippet("import os\ndef handle(item):\n    return os.__file__\n")
        with pytest.raises(InvalidPayload):
            await client.request("PUT", "/snippets/" + "0" * 40, data=DOUBLE.encode())
    assert peer.snippets is not None and peer.snippets.stats.stored == 1


async def test_errors_carry_type_message_and_snippet_line(peer: Peer, home: Home) -> None:
    source = "def handle(item):\n    x = 1\n    return x / item\n"
    async with AsyncClient(peer.url, home=home) as client:
        reply = await post_job(client, {"snippet": source, "items": [0]})
    error = item_of(reply, 0)["error"]
    assert error["kind"] == "task-failed"
    assert error["type"] == "ZeroDivisionError"
    assert error["message"] == "division by zero (line 3)"
    assert str(Path(__file__).parents[2]) not in json.dumps(reply)


async def test_peer_answers_while_a_runaway_snippet_runs(peer: Peer, home: Home) -> None:
    # Backtracking inside the C regex engine: only the watchdog can stop it, and the peer's
    # loop must not wait for it.
    runaway_source = (
        "import re\ndef handle(item):\n    return bool(re.match('(a+)+$', 'a' * 64 + 'b'))\n"
    )
    assert peer.snippets is not None
    stats = peer.snippets.stats
    async with AsyncClient(peer.url, home=home) as client:
        runaway = asyncio.create_task(
            post_job(client, {"snippet": runaway_source, "items": [1], "timeout_s": 1.5})
        )
        await eventually(lambda: stats.batches_running >= 1, "the runaway to start", timeout_s=30)
        health = await client.request_json("GET", "/health")
        quick = await post_job(client, {"snippet": DOUBLE, "items": [5]})
        assert not runaway.done(), "the runaway should still be running"
        assert health is not None and quick["values"][0] == 10
        stopped = await runaway
    error = item_of(stopped, 0)["error"]
    assert error["kind"] == "snippet-budget" and "watchdog" in error["message"]


RUNAWAYS = [
    "def handle(item):\n    while True:\n        pass\n",
    "def f(n):\n    return f(n + 1)\ndef handle(item):\n    return f(0)\n",
    "def handle(item):\n    return 'x' * 10**10\n",
    "def handle(item):\n    return [0] * 10**10\n",
    "def handle(item):\n    return 10 ** 10 ** 10\n",
    "def handle(item):\n    return list(range(10**10))\n",
    "def handle(item):\n    return 'x'.ljust(10**10)\n",
    "def handle(item):\n    while True:\n        print('x' * 100)\n",
    # Past the checked operators: the host's memory limit stops it.
    "def handle(item):\n    return len([bytes(10**6) for i in range(10**5)])\n",
]

# Every way a snippet might try to reach the peer's secrets, keys, data directory or environment.
SNOOPS = [
    "import os\ndef handle(item):\n    return dict(os.environ)\n",
    "def handle(item):\n    return open(item).read()\n",
    "import json\ndef handle(item):\n    return getattr(json, 'codecs')\n",
    "def handle(item):\n"
    "    return getattr(getattr(handle, '__globals__'), 'get')('__builtins__')\n",
    "def handle(item):\n    return [k for k in getattr(handle, '__builtins__')]\n",
    "def g():\n    yield 1\ndef handle(item):\n    return str(getattr(g(), 'gi_frame'))\n",
    "def handle(item):\n    try:\n        1 / 0\n    except Exception as e:\n"
    "        return str(getattr(e, '__traceback__'))\n",
    "def handle(item):\n    return '{0.__init__.__globals__}'.format(handle)\n",
    "import string\ndef handle(item):\n"
    "    return string.Formatter().format('{0.__globals__}', handle)\n",
    "import re\ndef handle(item):\n    return str(re.compile)\n",
    "def handle(item):\n    return printed\n",
]


def read_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(c) for c in text)
    return children


def test_runaways_are_stopped_memory_stays_bounded_and_secrets_stay_hidden(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    canary_file = "canary-in-the-data-directory-3f9a"
    (home / "canary.txt").write_text(canary_file)
    canary_env = "canary-in-the-environment-71c2"
    peer = PeerProcess(home, env={"DISRUPTOR_CANARY": canary_env}).wait_ready()
    try:
        secret = (home / "cluster.secret").read_text().strip()
        secrets = [canary_file, canary_env, secret, peer.token]

        async def scenario() -> tuple[list[dict[str, Any]], list[str], int, int]:
            async with AsyncClient(peer.address, token=peer.token) as client:
                await post_job(client, {"snippet": DOUBLE, "items": [1]})
                rss_before = read_rss_kib(peer.proc.pid)
                stopped = []
                for source in RUNAWAYS:
                    reply = await post_job(
                        client, {"snippet": source, "items": [1], "timeout_s": 1}
                    )
                    stopped.append(item_of(reply, 0))
                rss_after = read_rss_kib(peer.proc.pid)
                texts = []
                for source in SNOOPS:
                    item = str(home / "cluster.secret")
                    try:
                        reply = await post_job(client, {"snippet": source, "items": [item]})
                        texts.append(json.dumps(reply))
                    except SnippetRejected as exc:
                        texts.append(str(exc))
                hosts = child_pids(peer.proc.pid)
                for pid in hosts:
                    texts.append(Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"))
                    for fd in Path(f"/proc/{pid}/fd").iterdir():
                        texts.append(str(fd.readlink()))
            return stopped, texts, rss_before, rss_after

        stopped, texts, rss_before, rss_after = asyncio.run(scenario())
    finally:
        peer.stop()
    for outcome in stopped:
        assert outcome.get("error", {}).get("kind") == "snippet-budget", outcome
    # The runaways' memory went to (and died with) the hosts, not the peer.
    assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)
    assert len(texts) > len(SNOOPS)
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert str(home) not in text
