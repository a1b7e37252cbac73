"""Four hosts in network namespaces; one host is cut off mid-job; the job still completes.

Reuses the membership tests' namespace rig (a bridge in a namespace of its own, one namespace and
veth pair per peer, everything deleted at the end). The requester runs inside host 0's namespace
and streams the job's results; after the first results, host 3's link goes down (no RST, no FIN:
its connections just go silent). Needs root and ``ip``; skipped otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from disruptor.home import Home

from ..cluster import rows_of_piece
from ..membership.test_netns_functional import HUB, PEERS, Hosts, can_use_netns, ip
from .support import write_slow_bundle

pytestmark = pytest.mark.netns

ITEMS = 160
BOUND_S = 150.0

# Runs in host 0's namespace: wait for four live peers, push the bundle, stream one job.
REQUESTER = """
import json, sys, time, urllib.request
from disruptor.client import Client
from disruptor.errors import PeerUnreachable
from disruptor.home import Home

home, app, first = Home.from_env(), sys.argv[1], sys.argv[2]
with Client([first], home=home) as client:
    deadline = time.monotonic() + 120
    while True:
        try:
            if len(client.request_json("GET", "/jobs")["peers"]) >= 4:
                break
        except PeerUnreachable:
            pass  # not serving yet
        if time.monotonic() > deadline:
            raise SystemExit("the four hosts never saw each other")
        time.sleep(0.2)
    sha1 = client.push_bundle(app, home=home).sha1
    print(json.dumps({"pushed": sha1}), flush=True)
    items = [{"x": i, "sleep": 0.05} for i in range(int(sys.argv[3]))]
    body = {"bundle": sha1, "items": items, "chunk_size": 2, "policy": "round-robin",
            "timeout_s": 2}
    request = urllib.request.Request(
        "http://" + first + "/jobs", data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + home.api_token(), "Content-Type": "application/json",
                 "Accept": "application/x-ndjson"})
    with urllib.request.urlopen(request, timeout=300) as response:
        for line in response:
            sys.stdout.write(line.decode())
            sys.stdout.flush()
"""


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    if not can_use_netns():
        pytest.skip("needs root and ip netns")
    home = tmp_path / "home"
    Home(home).ensure().api_token()
    h = Hosts(home)
    try:
        h.build()
        h.start()
        yield h
    finally:
        h.cleanup()


def test_host_cut_off_mid_job_every_item_exactly_once(hosts: Hosts, tmp_path: Path) -> None:
    script = tmp_path / "requester.py"
    script.write_text(REQUESTER)
    app = write_slow_bundle(tmp_path)
    cut = PEERS - 1
    requester = subprocess.Popen(
        ["ip", "netns", "exec", hosts.ns(0), sys.executable, str(script), str(app),
         hosts.addresses[0], str(ITEMS)],
        env={"DISRUPTOR_HOME": str(hosts.home), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    seen: Counter[int] = Counter()
    rows: list[dict[str, object]] = []
    tail: dict[str, object] = {}
    cut_done = False
    try:
        assert requester.stdout is not None
        for raw in requester.stdout:
            row = json.loads(raw)
            if "pushed" in row:
                continue
            if row.get("done"):
                tail = row
                break
            for item in rows_of_piece(row):
                rows.append(item)
                seen[int(str(item["index"]))] += 1
            if len(rows) >= 20 and not cut_done:
                cut_done = True
                ip("-n", HUB, "link", "set", f"port{cut}", "down")
        requester.wait(BOUND_S)
    finally:
        if requester.poll() is None:
            requester.kill()
            requester.wait(10)
        errors = requester.stderr.read().decode() if requester.stderr else ""
        if requester.stdout is not None:
            requester.stdout.close()
        if requester.stderr is not None:
            requester.stderr.close()
    assert tail.get("state") == "completed", errors[-2000:]
    assert int(str(tail["replaced"])) >= 1, "the lost peer's attempts were placed again"
    assert sorted(seen) == list(range(ITEMS))
    assert set(seen.values()) == {1}, "an item's result was delivered twice"
    assert all("error" not in r for r in rows), [r for r in rows if "error" in r][:3]
    assert {r["index"]: r["value"]["x"] for r in rows} == {i: 2 * i for i in range(ITEMS)}  # type: ignore[index]
    ran_on = Counter(r["peer"] for r in rows)
    assert len(ran_on) >= 3, ran_on
    for proc in hosts.procs:
        assert proc.poll() is None, "a peer exited"
