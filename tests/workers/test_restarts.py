"""Restart backoff and crash-loop detection, on explicit time."""

from __future__ import annotations

import random

from disruptor.workers.restarts import CrashHistory


def test_backoff_doubles_up_to_the_cap_and_resets_after_recovery() -> None:
    history = CrashHistory(
        crashes_max=100,
        window_s=1.0,
        backoff_initial_s=1.0,
        backoff_max_s=4.0,
        rng=random.Random(1),
    )
    delays = [history.record(float(t * 10)) for t in range(5)]
    assert all(d is not None for d in delays)
    bases = [1.0, 2.0, 4.0, 4.0, 4.0]
    for delay, base in zip(delays, bases, strict=True):
        assert delay is not None and 0.75 * base <= delay <= base
    history.recovered()
    first = history.record(100.0)
    assert first is not None and first <= 1.0


def test_crash_loop_within_the_window_gives_up() -> None:
    history = CrashHistory(crashes_max=3, window_s=60.0)
    assert history.record(0.0) is not None
    assert history.record(1.0) is not None
    assert history.record(2.0) is None


def test_crashes_spread_beyond_the_window_do_not_count_as_a_loop() -> None:
    history = CrashHistory(crashes_max=3, window_s=10.0)
    assert all(history.record(t * 11.0) is not None for t in range(20))


def test_reset_forgets_everything() -> None:
    history = CrashHistory(crashes_max=2, window_s=60.0)
    history.record(0.0)
    history.reset()
    assert history.record(1.0) is not None and history.streak == 1
