from __future__ import annotations

import pytest

from disruptor.api.body_limits import BodyPace, PaceLimits, UploadGate, UploadSlots
from disruptor.errors import Unavailable

LIMITS = PaceLimits(rate_min_bytes_s=1000.0, grace_s=10.0, idle_timeout_s=30.0)


def test_a_trickle_is_late_after_the_grace() -> None:
    # One byte every 5 s (the attack): each byte buys a millisecond.
    pace = BodyPace(LIMITS, started_at=100.0)
    now, received = 100.0, 0
    while not pace.late(now):
        now += 5.0
        received += 1
        pace.observe(now, received)
    assert 110.0 <= now <= 115.0


def test_a_steady_body_at_the_minimum_rate_or_above_is_never_late() -> None:
    for rate in (1000.0, 1500.0, 100_000.0):
        pace = BodyPace(LIMITS, started_at=0.0)
        for second in range(1, 3600):
            pace.observe(float(second), int(rate * second))
            assert not pace.late(float(second)), (rate, second)


def test_a_body_that_stops_is_late_after_the_idle_timeout() -> None:
    # Front-loaded: a fast start buys hours of pace, but not hours of silence.
    pace = BodyPace(LIMITS, started_at=0.0)
    pace.observe(1.0, 50_000_000)
    assert pace.deadline() == 31.0
    assert not pace.late(30.9) and pace.late(31.0)


def test_progress_counts_when_it_is_seen() -> None:
    pace = BodyPace(LIMITS, started_at=0.0)
    assert pace.deadline() == 10.0  # the grace, nothing received yet
    pace.observe(10.0, 5000)  # looked at the deadline: 5,000 bytes came meanwhile
    assert pace.deadline() == 15.0
    pace.observe(12.0, 5000)  # no progress since: the deadline stands
    assert pace.deadline() == 15.0


def test_upload_slots_per_client_and_in_all() -> None:
    slots = UploadSlots(total_max=3, per_client_max=2)
    assert slots.take("a") is None and slots.take("a") is None
    assert "from a" in (slots.take("a") or "")
    assert slots.take("b") is None
    assert "3 uploads" in (slots.take("c") or "")
    slots.give_back("a")
    assert slots.take("c") is None
    assert slots.total == 3


def test_the_gate_keeps_the_descriptor_reserve() -> None:
    gate = UploadGate(UploadSlots(10, 10), descriptors_reserved=1 << 40)
    with pytest.raises(Unavailable, match="file descriptors") as caught:
        gate.enter("a")
    assert caught.value.retry_after_s > 0
    assert gate.slots.total == 0  # nothing taken by a refusal
    open_gate = UploadGate(UploadSlots(10, 1), descriptors_reserved=0)
    open_gate.enter("a")
    with pytest.raises(Unavailable, match="uploads from a"):
        open_gate.enter("a")
    open_gate.leave("a")
    open_gate.enter("a")
