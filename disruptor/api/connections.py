"""How many connections the peer holds: per client address and in all, within its descriptors.

Every connection costs a file descriptor, and so does everything else the peer does (store files,
workers' pipes, gossip push-pull, calls to other peers). ``ConnectionTable`` (sans-IO) admits a
new connection only while its client holds fewer than ``connections_per_client_max`` and the peer
fewer than its descriptor limit less ``descriptors_reserved``: one client opening thousands of
connections is refused its extra ones, and no flood can take the descriptors the peer's own work
needs. A refused connection is answered 503 with ``Retry-After`` and closed at once, before a
byte of its request is read (``header_timeout.HeaderTimeoutHandler`` does that).

``raise_descriptor_limit`` lifts the soft ``RLIMIT_NOFILE`` to the hard one when the server starts,
as servers do: the soft default (often 1,024) is far below what a busy peer needs.

Rule: the table only counts and answers; the protocol adapter opens and closes.
"""

from __future__ import annotations

import json
import resource

from ..errors import PROBLEM_CONTENT_TYPE, Unavailable

CONNECTION_RETRY_AFTER_S = 5


class ConnectionTable:
    def __init__(self, per_client_max: int, total_max: int) -> None:
        self.per_client_max = per_client_max
        self.total_max = total_max
        self._by_client: dict[str, int] = {}
        self.total = 0
        self.refused = 0

    def open(self, client: str) -> bool:
        """Admit one more connection from ``client``, or count a refusal."""
        held = self._by_client.get(client, 0)
        if self.total >= self.total_max or held >= self.per_client_max:
            self.refused += 1
            return False
        self._by_client[client] = held + 1
        self.total += 1
        return True

    def close(self, client: str) -> None:
        held = self._by_client.get(client, 0)
        if held <= 1:
            self._by_client.pop(client, None)
        else:
            self._by_client[client] = held - 1
        self.total = max(0, self.total - 1)


def connections_max(descriptors_reserved: int) -> int:
    """Connections the peer may hold: its descriptor limit less the reserve (at least half)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 30
    return max(soft // 2, soft - descriptors_reserved)


def raise_descriptor_limit() -> int:
    """Lift the soft descriptor limit to the hard one; returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return int(soft)


def refusal_bytes() -> bytes:
    """The whole HTTP response a refused connection gets: 503, problem+json, then closed."""
    error = Unavailable(
        "too many connections from this address, or to this peer; try again shortly",
        retry_after_s=CONNECTION_RETRY_AFTER_S,
    )
    body = json.dumps(error.to_problem()).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Retry-After: {CONNECTION_RETRY_AFTER_S}\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body
