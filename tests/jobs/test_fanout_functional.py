"""Workers across the cluster: start on all or N peers (deploying the bundle), list, stop."""

from __future__ import annotations

from pathlib import Path

from disruptor.home import Home

from .support import client_for, open_cluster, write_slow_bundle


async def test_start_list_stop_workers_across_the_cluster(home: Home, tmp_path: Path) -> None:
    async with open_cluster(home) as peers, client_for(peers[:1], home) as client:
        addresses = sorted(str(p.address) for p in peers)
        sha1 = (await client.push_bundle(write_slow_bundle(tmp_path), home=home)).sha1
        assert [p.store is not None and p.store.has(sha1) for p in peers] == [True, False, False]

        started = await client.start_workers_on(sha1, "all", count=1)
        assert sorted(started) == addresses
        assert all(len(reply["workers"]) == 1 for reply in started.values()), started
        # The peers that lacked the bundle fetched it (deployed peer to peer) before starting.
        assert all(p.store is not None and p.store.has(sha1) for p in peers)

        listing = await client.cluster_workers()
        assert sorted(listing) == addresses
        assert all([w["bundle"] for w in reply["workers"]] == [sha1] for reply in listing.values())

        stopped = await client.stop_workers_on(sha1, "all")
        assert sorted(stopped) == addresses
        listing = await client.cluster_workers()
        assert all(reply["workers"] == [] for reply in listing.values())


async def test_start_on_n_peers_prefers_the_receiving_peer(home: Home, tmp_path: Path) -> None:
    async with open_cluster(home) as peers, client_for(peers[:1], home) as client:
        sha1 = (await client.push_bundle(write_slow_bundle(tmp_path), home=home)).sha1
        started = await client.start_workers_on(sha1, 2, count=1)
        assert len(started) == 2 and str(peers[0].address) in started
        other = next(a for a in started if a != str(peers[0].address))
        stopped = await client.stop_workers_on(sha1, [str(peers[0].address), other])
        assert sorted(stopped) == sorted(started)
