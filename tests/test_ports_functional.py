"""``free_port`` gives a port a peer can bind for TCP and UDP alike."""

from __future__ import annotations

import socket

from disruptor.ports import free_port


def test_free_port_is_free_for_tcp_and_udp() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", port))
