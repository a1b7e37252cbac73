"""The UDP adapter: one datagram socket on the peer's own HOST:PORT, bytes in and bytes out.

It holds no decisions: every datagram received goes to the callback it was given (the driver
checks, decrypts and counts), and ``send`` hands bytes to the kernel without waiting. Rule: the
socket binds the same port number as the HTTP server, so HOST:PORT names a peer for both.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from ..address import Address

log = logging.getLogger("disruptor.membership.udp")

# Kernel buffers sized for bursts of gossip (a full retransmit round to many peers at once).
SOCKET_BUFFER_BYTES = 1 << 20

DatagramHandler = Callable[[bytes, tuple[Any, ...]], None]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: DatagramHandler) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a dead peer surfaces here; the protocol already copes.
        log.debug("udp error: %s", exc)


class UdpEndpoint:
    def __init__(self, transport: asyncio.DatagramTransport) -> None:
        self._transport = transport

    def send(self, data: bytes, to: Address) -> None:
        if not self._transport.is_closing():
            self._transport.sendto(data, (to.host, to.port))

    def close(self) -> None:
        self._transport.close()


async def open_udp(address: Address, on_datagram: DatagramHandler) -> UdpEndpoint:
    """Bind ``address`` for UDP and deliver every datagram to ``on_datagram``."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        sock.bind((address.host, address.port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(on_datagram), sock=sock)
    return UdpEndpoint(transport)
