"""Sixteen real peer processes on loopback: they converge, see a crash as dead, a stop as left.

The processes share one data directory (and so one cluster secret), each started with one seed.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..cluster import PeerProcess, wait_for

PEERS = 16
BOUND_S = 90.0


def peer_states(p: PeerProcess) -> dict[str, str]:
    request = urllib.request.Request(
        p.url + "/peers", headers={"Authorization": f"Bearer {p.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return {row["address"]: row["state"] for row in json.load(r)["peers"]}
    except OSError:
        return {}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[PeerProcess]]:
    home = tmp_path / "home"
    home.mkdir()
    procs: list[PeerProcess] = []
    try:
        # All at once; each names one other peer (not always the first) as its seed, which may
        # not be up yet: the join is retried with backoff until it is.
        for i in range(PEERS):
            seeds = [procs[(i - 1) // 2].address] if i else []
            procs.append(PeerProcess(home, seeds=seeds))
        for p in procs:
            p.wait_ready(60.0)
        yield procs
    finally:
        for p in procs:
            p.kill()


def test_sixteen_processes_converge_then_see_crash_as_dead_and_stop_as_left(
    cluster: list[PeerProcess],
) -> None:
    everyone = {p.address for p in cluster}

    def all_alive(among: list[PeerProcess], expect: set[str]) -> bool:
        for p in among:
            states = peer_states(p)
            if not expect <= {a for a, s in states.items() if s == "alive"}:
                return False
        return True

    wait_for(lambda: all_alive(cluster, everyone), BOUND_S, "16 peers to list each other alive")

    crashed, stopped = cluster[5], cluster[9]
    crashed.kill()
    others = [p for p in cluster if p is not crashed]
    wait_for(
        lambda: all(peer_states(p).get(crashed.address) == "dead" for p in others),
        BOUND_S,
        "every survivor to mark the SIGKILLed peer dead",
    )
    assert stopped.terminate() == 0
    rest = [p for p in others if p is not stopped]
    wait_for(
        lambda: all(peer_states(p).get(stopped.address) == "left" for p in rest),
        BOUND_S,
        "every peer to show the SIGTERMed peer as left",
    )
    assert all_alive(rest, {p.address for p in rest})
