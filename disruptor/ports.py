"""Finding a free port: for tests, benchmarks and ``disruptor demo``, never for a running peer.

Rule: this is socket IO, so it lives here and not in ``address.py``, which stays plain data.
"""

from __future__ import annotations

import socket

from .errors import PeerUnreachable

# Tries before giving up: a port free for TCP is nearly always free for UDP too.
FREE_PORT_TRIES = 100


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for TCP and UDP alike on ``host`` (a peer uses the same number for both)."""
    for _ in range(FREE_PORT_TRIES):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise PeerUnreachable(f"no port free for both TCP and UDP on {host}")
