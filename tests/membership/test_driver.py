"""The driver's datagram path without sockets: datagrams handed straight to ``_on_datagram``."""

from __future__ import annotations

import os
import random
import time

from disruptor.address import Address
from disruptor.link.peer_link import PeerLink
from disruptor.membership.codec import Keyring, encode_packet
from disruptor.membership.driver import MembershipDriver
from disruptor.membership.messages import WIRE_VERSION, Alive, Packet
from disruptor.membership.protocol import Protocol
from disruptor.membership.settings import LOCAL

SECRET = b"a cluster secret of thirty-two b"
ME, B = Address("127.0.0.1", 1111), Address("127.0.0.1", 2222)


async def test_a_forged_flood_from_a_members_address_does_not_starve_its_datagrams() -> None:
    driver = MembershipDriver(ME, LOCAL, SECRET, "c", link=PeerLink(SECRET))
    driver.protocol = Protocol(str(ME), LOCAL, random.Random(1), 0.0)
    sender = Keyring("c", SECRET)
    from_b = (B.host, B.port)
    genuine = 0
    for i in range(20_000):
        if i % 100 == 0:
            # B's own datagram, each one a newer incarnation of itself.
            genuine += 1
            packet = Packet(str(B), 7, genuine, int(time.time() * 1000), (Alive(genuine, str(B)),))
            driver._on_datagram(sender.seal(encode_packet(packet), os.urandom(12)), from_b)
        else:
            # Random bytes that pass the cheap checks (right version byte) "from" B's address.
            driver._on_datagram(bytes([WIRE_VERSION]) + os.urandom(120), from_b)
    member = driver.protocol.table.get(str(B))
    assert member is not None and member.incarnation == genuine == 200
    assert driver.stats.dropped_auth == 20_000 - genuine
    assert driver.stats.dropped_rate_limited == 0
