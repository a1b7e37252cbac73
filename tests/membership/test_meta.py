"""PeerMeta: the wire form is bounded and strict."""

from __future__ import annotations

import json

import pytest

from disruptor.membership.meta import META_BUNDLES_MAX, META_BYTES_MAX, PeerLoad, PeerMeta


def test_round_trip() -> None:
    meta = PeerMeta(PeerLoad(1, 2, 3), ("0" * 40, "f" * 40), "1.2.3")
    assert PeerMeta.from_wire(meta.to_wire()) == meta


def test_bounded_cuts_to_wire_limits() -> None:
    big = PeerMeta(PeerLoad(-5, 10**12, 1), (*(f"{i:040x}" for i in range(100)), "bad"), "v" * 99)
    meta = big.bounded()
    assert len(meta.bundles) == META_BUNDLES_MAX
    assert meta.load.tasks_running == 0
    assert len(json.dumps(meta.to_wire())) <= META_BYTES_MAX
    assert PeerMeta.from_wire(meta.to_wire()) == meta


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        [[1, 2], [], ""],
        [[1, 2, -3], [], ""],
        [[1, 2, True], [], ""],
        [[0, 0, 0], ["x"], ""],
        [[0, 0, 0], ["a" * 40] * 17, ""],
        [[0, 0, 0], [], "v" * 33],
    ],
)
def test_bad_wire_forms_raise_value_error(raw: object) -> None:
    with pytest.raises(ValueError):
        PeerMeta.from_wire(raw)
