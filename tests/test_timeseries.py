from __future__ import annotations

import pytest

from disruptor.timeseries import Reading, Series


def test_rates_over_the_window_and_mean_latency_per_step() -> None:
    series = Series(window_s=10.0)
    assert series.sample(100.0, Reading(10, 100, 10, 1.0, 50)) is None
    point = series.sample(102.0, Reading(14, 140, 14, 1.8, 56))
    assert point is not None
    assert point.jobs_per_s == pytest.approx(2.0)
    assert point.items_per_s == pytest.approx(20.0)
    assert point.latency_ms == pytest.approx(200.0)
    assert point.local_items_per_s == pytest.approx(3.0)
    quiet = series.sample(104.0, Reading(14, 140, 14, 1.8, 56))
    assert quiet is not None and quiet.latency_ms is None
    assert quiet.jobs_per_s == pytest.approx(1.0)  # 4 jobs over the 4 s known so far
    assert series.to_json() == [[102.0, 2.0, 20.0, 200.0, 3.0], [104.0, 1.0, 10.0, None, 1.5]]
    # Once the window has passed with nothing done and nothing running, it reads idle.
    for t in range(105, 116):
        idle = series.sample(float(t), Reading(14, 140, 14, 1.8, 56))
    assert idle is not None and idle.jobs_per_s == 0 and idle.items_per_s == 0


def test_results_arriving_a_task_at_a_time_read_as_a_steady_rate_not_spikes() -> None:
    # A job delivers 60 items every 2 s: per step that read 0, 60, 0, 60... items/s.
    series = Series(window_s=10.0)
    rates = []
    for t in range(0, 41):
        done = 60 * ((t + 1) // 2)
        point = series.sample(float(t), Reading(items_done=done, busy=True))
        if point is not None and t >= 10:
            rates.append(point.items_per_s)
    assert min(rates) >= 24.0 and max(rates) <= 36.0
    assert sum(rates) / len(rates) == pytest.approx(30.0, rel=0.1)


def test_while_work_runs_the_rate_never_reads_idle_after_its_first_result() -> None:
    series = Series(window_s=10.0)
    for t in range(0, 30):  # idle for half a minute
        series.sample(float(t), Reading(items_done=500))
    # A job starts at t=30; nothing has finished yet: nothing to report.
    start = series.sample(30.0, Reading(items_done=500, busy=True))
    assert start is not None and start.items_per_s == 0
    # Its first task of 60 items ends at t=32: measured from the last idle reading (t=29), not
    # diluted by the idle seconds before it (60 / 10 s).
    first = series.sample(32.0, Reading(items_done=560, busy=True))
    assert first is not None and first.items_per_s == pytest.approx(20.0)
    # A long task: nothing more for 20 s. The rate slows, but does not read idle.
    for t in range(33, 53):
        later = series.sample(float(t), Reading(items_done=560, busy=True))
        assert later is not None and later.items_per_s > 0
    assert later.items_per_s == pytest.approx(60 / (52 - 30))  # since the reading before it
    # Work ended: the window empties and the rate falls to zero.
    for t in range(53, 64):
        done = series.sample(float(t), Reading(items_done=560))
    assert done is not None and done.items_per_s == 0


def test_a_new_run_of_work_does_not_reach_back_to_results_of_the_last() -> None:
    series = Series(window_s=10.0)
    series.sample(0.0, Reading(items_done=0, busy=True))
    series.sample(1.0, Reading(items_done=100, busy=True))
    for t in range(2, 30):
        series.sample(float(t), Reading(items_done=100))
    fresh = series.sample(30.0, Reading(items_done=100, busy=True))
    assert fresh is not None and fresh.items_per_s == 0


def test_a_counter_going_back_restarts_instead_of_charting_negative_rates() -> None:
    series = Series()
    series.sample(1.0, Reading(50, 0, 50, 5.0))
    assert series.sample(2.0, Reading(3, 0, 3, 0.3)) is None
    point = series.sample(3.0, Reading(5, 0, 5, 0.5))
    assert point is not None and point.jobs_per_s == pytest.approx(2.0)


def test_the_history_is_bounded() -> None:
    series = Series(points_max=5, readings_max=4)
    for t in range(20):
        series.sample(float(t), Reading(t, t, t, float(t), busy=True))
    assert len(series.points()) == 5
    assert series.points()[-1].t_s == 19.0
    assert series.points()[-1].items_per_s == pytest.approx(1.0)  # over the 3 s it still holds
