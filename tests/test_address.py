from __future__ import annotations

import pytest

from disruptor.address import Address
from disruptor.errors import BadRequest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:1111", Address("127.0.0.1", 1111)),
        ("http://localhost:2222/", Address("localhost", 2222)),
        ("[::1]:3333", Address("::1", 3333)),
    ],
)
def test_parse(text: str, expected: Address) -> None:
    assert Address.parse(text) == expected
    assert Address.parse(str(expected)) == expected


def test_default_port_only_when_given() -> None:
    assert Address.parse("example", default_port=1111) == Address("example", 1111)
    with pytest.raises(BadRequest, match="needs a port"):
        Address.parse("example")


@pytest.mark.parametrize("text", ["host:0", "host:70000", "host:http", ":1111", "[::1]"])
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        Address.parse(text)
