"""Local health: bounded score, scaled timeouts."""

from __future__ import annotations

from disruptor.membership.awareness import Awareness


def test_score_is_bounded_and_scales_timeouts() -> None:
    a = Awareness(8)
    assert a.scale(0.5) == 0.5
    a.apply_delta(3)
    assert a.scale(0.5) == 2.0
    a.apply_delta(100)
    assert a.score == 7 and a.scale(1.0) == 8.0
    a.apply_delta(-100)
    assert a.score == 0
    assert Awareness(0).max_multiplier == 1
