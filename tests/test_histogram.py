from __future__ import annotations

import math

import pytest

from disruptor.histogram import LatencyHistogram


def test_observations_land_in_their_bucket_and_cumulate() -> None:
    hist = LatencyHistogram(bounds_s=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0, -1.0):
        hist.observe(value)
    assert hist.counts == [3, 1, 1]  # -1 counts as 0; 0.1 is "at or under" 0.1
    assert hist.cumulative() == [(0.1, 3), (1.0, 4), (math.inf, 5)]
    assert hist.count == 5
    assert hist.sum_s == pytest.approx(3.65)


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError):
        LatencyHistogram(bounds_s=(1.0, 0.5))
