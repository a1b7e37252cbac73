"""Four peers on four "hosts": network namespaces joined by veth pairs to a bridge.

The bridge lives in a namespace of its own, so nothing is added to the host's network: every
address (10.213.0.0/24) exists only inside the namespaces this test creates, and they are deleted
at the end, failure or not. Cutting one peer's link shows the partition on both sides; restoring
it brings back one view. Needs root and ``ip``; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from disruptor.home import Home

from ..cluster import wait_for

pytestmark = pytest.mark.netns

PEERS = 4
PORT = 1111
BOUND_S = 120.0
PREFIX = f"dsr{os.getpid() % 100000}"
HUB = f"{PREFIX}hub"
QUERY = """
import json, sys, urllib.request
out = {}
for url in sys.argv[2:]:
    req = urllib.request.Request(url + "/peers", headers={"Authorization": "Bearer " + sys.argv[1]})
    try:
        with urllib.request.urlopen(req, timeout=3) as r:
            out[url] = {p["address"]: p["state"] for p in json.load(r)["peers"]}
    except OSError:
        out[url] = {}
print(json.dumps(out))
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=15)


def can_use_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"{PREFIX}probe"
    try:
        ip("netns", "add", probe)
    except (subprocess.SubprocessError, OSError):
        return False
    ip("netns", "del", probe)
    return True


class Hosts:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.addresses = [f"10.213.0.{i + 1}:{PORT}" for i in range(PEERS)]

    def ns(self, i: int) -> str:
        return f"{PREFIX}p{i}"

    def build(self) -> None:
        ip("netns", "add", HUB)
        self.namespaces.append(HUB)
        ip("-n", HUB, "link", "add", "br0", "type", "bridge")
        ip("-n", HUB, "link", "set", "br0", "up")
        for i in range(PEERS):
            ns = self.ns(i)
            ip("netns", "add", ns)
            self.namespaces.append(ns)
            ip(
                "link",
                "add",
                "eth0",
                "netns",
                ns,
                "type",
                "veth",
                "peer",
                "name",
                f"port{i}",
                "netns",
                HUB,
            )
            ip("-n", ns, "addr", "add", f"10.213.0.{i + 1}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", HUB, "link", "set", f"port{i}", "master", "br0")
            ip("-n", HUB, "link", "set", f"port{i}", "up")

    def start(self) -> None:
        env = {**os.environ, "DISRUPTOR_HOME": str(self.home)}
        for i in range(PEERS):
            seeds = [self.addresses[i - 1]] if i else []
            log = self.home / f"peer{i}.log"
            self.logs.append(log)
            with open(log, "wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            "ip",
                            "netns",
                            "exec",
                            self.ns(i),
                            sys.executable,
                            "-m",
                            "disruptor",
                            "peer",
                            self.addresses[i],
                            *seeds,
                            # Faster full syncs than the preset's 15 s keep the test short; the
                            # heal path is the same.
                            "--set",
                            "membership.push_pull_interval_s=5",
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    def views(self, i: int) -> dict[str, dict[str, str]]:
        """What the peers reachable from namespace ``i`` say, keyed by their address."""
        token = (self.home / "api.token").read_text().strip()
        urls = [f"http://{a}" for a in self.addresses]
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns(i), sys.executable, "-c", QUERY, token, *urls],
            capture_output=True, timeout=30, check=True,
        )  # fmt: skip
        raw = json.loads(done.stdout)
        return {url.removeprefix("http://"): states for url, states in raw.items()}

    def view_of(self, i: int) -> dict[str, str]:
        return self.views(i)[self.addresses[i]]

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=15)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    if not can_use_netns():
        pytest.skip("needs root and ip netns")
    home = tmp_path / "home"
    Home(home).ensure().api_token()  # shared by the four peers: one secret, one token
    h = Hosts(home)
    try:
        h.build()
        h.start()
        yield h
    finally:
        h.cleanup()


def test_link_cut_shows_on_both_sides_and_healing_restores_one_view(hosts: Hosts) -> None:
    everyone = set(hosts.addresses)

    def one_view() -> bool:
        views = hosts.views(0)
        return all(
            everyone == {a for a, s in states.items() if s == "alive"} for states in views.values()
        )

    wait_for(one_view, BOUND_S, "four hosts to list each other alive")
    cut = PEERS - 1
    ip("-n", HUB, "link", "set", f"port{cut}", "down")
    lonely, rest = hosts.addresses[cut], hosts.addresses[:cut]

    def split() -> bool:
        mine = hosts.view_of(cut)
        if any(mine.get(a) != "dead" for a in rest):
            return False
        theirs = hosts.views(0)
        return all(theirs[a].get(lonely) == "dead" for a in rest)

    wait_for(split, BOUND_S, "both sides of the cut to mark the other dead")
    ip("-n", HUB, "link", "set", f"port{cut}", "up")
    wait_for(one_view, BOUND_S, "one view again after the link is restored")
    for proc in hosts.procs:
        assert proc.poll() is None, "a peer exited"
