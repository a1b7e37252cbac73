from __future__ import annotations

import resource

from disruptor.api.connections import ConnectionTable, connections_max, refusal_bytes


def test_per_client_and_total_bounds() -> None:
    table = ConnectionTable(per_client_max=2, total_max=3)
    assert table.open("a") and table.open("a")
    assert not table.open("a")
    assert table.open("b")
    assert not table.open("c")  # the peer's total
    assert table.refused == 2
    table.close("a")
    assert table.open("c")
    assert not table.open("a")  # a still holds one of two... and the total is full again
    table.close("b")
    assert table.open("a")
    assert table.total == 3


def test_the_total_leaves_the_reserve() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        assert connections_max(100) == max(soft // 2, soft - 100)
        assert connections_max(soft * 2) == soft // 2  # never less than half


def test_a_refused_connection_gets_a_whole_503() -> None:
    raw = refusal_bytes()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: " in head and b"Connection: close" in head
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert length == len(body) and b"urn:disruptor:problem:unavailable" in body
