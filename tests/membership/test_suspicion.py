"""Lifeguard's suspicion timeout formula (memberlist's numbers)."""

from __future__ import annotations

import math

import pytest

from disruptor.membership.suspicion import Suspicion, remaining_timeout_s, suspicion_timeout_s


def test_minimum_timeout_grows_with_log10_n() -> None:
    assert suspicion_timeout_s(4, 1, 1.0) == 4.0
    assert suspicion_timeout_s(4, 10, 1.0) == 4.0
    assert suspicion_timeout_s(4, 100, 1.0) == pytest.approx(8.0)
    assert suspicion_timeout_s(4, 1000, 0.5) == pytest.approx(6.0)


def test_timeout_shrinks_with_confirmations_from_max_to_min() -> None:
    values = [remaining_timeout_s(c, 3, 2.0, 30.0) for c in range(5)]
    assert values[0] == 30.0
    assert values[0] > values[1] > values[2] > values[3]
    assert values[3] == values[4] == 2.0
    # The log shape: one confirmation of three buys half the way.
    assert values[1] == pytest.approx(30.0 - 28.0 * math.log(2) / math.log(4))
    assert remaining_timeout_s(0, 0, 2.0, 30.0) == 2.0


def test_confirmations_are_counted_once_per_sender_and_capped_at_k() -> None:
    s = Suspicion(100.0, "a", k=2, min_s=2.0, max_s=12.0)
    assert s.deadline == 112.0
    assert not s.confirm("a")
    assert s.confirm("b")
    assert not s.confirm("b")
    assert s.confirm("c")
    assert not s.confirm("d")
    assert s.deadline == 102.0
    assert Suspicion(0.0, "a", k=0, min_s=2.0, max_s=12.0).deadline == 2.0
