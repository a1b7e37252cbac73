from __future__ import annotations

import pytest

from disruptor.timeseries import Reading, Series


def test_rates_and_mean_latency_come_from_consecutive_readings() -> None:
    series = Series()
    assert series.sample(100.0, Reading(10, 100, 10, 1.0, 50)) is None
    point = series.sample(102.0, Reading(14, 140, 14, 1.8, 56))
    assert point is not None
    assert point.jobs_per_s == pytest.approx(2.0)
    assert point.items_per_s == pytest.approx(20.0)
    assert point.latency_ms == pytest.approx(200.0)
    assert point.local_items_per_s == pytest.approx(3.0)
    idle = series.sample(103.0, Reading(14, 140, 14, 1.8, 56))
    assert idle is not None and idle.jobs_per_s == 0 and idle.latency_ms is None
    assert series.to_json() == [[102.0, 2.0, 20.0, 200.0, 3.0], [103.0, 0.0, 0.0, None, 0.0]]


def test_a_counter_going_back_restarts_instead_of_charting_negative_rates() -> None:
    series = Series()
    series.sample(1.0, Reading(50, 0, 50, 5.0))
    assert series.sample(2.0, Reading(3, 0, 3, 0.3)) is None
    point = series.sample(3.0, Reading(5, 0, 5, 0.5))
    assert point is not None and point.jobs_per_s == pytest.approx(2.0)


def test_the_history_is_bounded() -> None:
    series = Series(points_max=5)
    for t in range(20):
        series.sample(float(t), Reading(t, t, t, float(t)))
    assert len(series.points()) == 5
    assert series.points()[-1].t_s == 19.0
