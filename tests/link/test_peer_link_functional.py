"""``PeerLink`` against a real peer: signed calls accepted, errors mapped into the error tree."""

from __future__ import annotations

import pytest

from disruptor.address import Address
from disruptor.errors import NotFound, PayloadTooLarge, PeerUnreachable, Unauthorized
from disruptor.link.peer_link import PeerLink
from disruptor.peer import Peer
from disruptor.ports import free_port


async def test_every_part_calls_other_peers_through_the_one_link(peer: Peer) -> None:
    parts = peer.parts
    link = parts.membership.link
    assert parts.fetcher.link is link and parts.fanout.link is link
    assert parts.jobs.calls.link is link


async def test_a_signed_call_is_served_and_a_problem_comes_back_as_its_class(peer: Peer) -> None:
    link = PeerLink(peer.cluster_secret)
    try:
        assert await link.call_json("GET", peer.address, "/tasks") == {"serving": {}}
        with pytest.raises(NotFound):
            await link.call_json("GET", peer.address, "/jobs/nope")
        # Signed with another secret: refused like any stranger.
        stranger = PeerLink(b"x" * 32)
        try:
            with pytest.raises(Unauthorized):
                await stranger.call_json("GET", peer.address, "/tasks")
        finally:
            await stranger.close()
    finally:
        await link.close()


async def test_bodies_are_read_with_a_bound(peer: Peer) -> None:
    link = PeerLink(peer.cluster_secret)
    try:
        async with link.open("GET", peer.address, "/peers") as reply:
            assert reply.status == 200
            with pytest.raises(PayloadTooLarge):
                await reply.body(limit_bytes=10)
    finally:
        await link.close()


async def test_a_peer_that_is_not_there_is_unreachable() -> None:
    link = PeerLink(b"s" * 32, connect_timeout_s=2.0)
    try:
        with pytest.raises(PeerUnreachable):
            await link.call_json("GET", Address("127.0.0.1", free_port()), "/tasks")
    finally:
        await link.close()
