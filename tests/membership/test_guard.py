"""Replay window and per-source rate limit."""

from __future__ import annotations

from disruptor.membership.guard import SEQ_WINDOW, RateLimiter, ReplayGuard


def test_fresh_packets_pass_and_copies_do_not() -> None:
    g = ReplayGuard(60.0)
    assert g.admit("a:1", 1, 1, 1_000_000, 1000.0) == ""
    assert g.admit("a:1", 1, 2, 1_000_000, 1000.0) == ""
    assert g.admit("a:1", 1, 1, 1_000_000, 1000.0) == "replay"
    # Another sender, or the same sender restarted (new session), is independent.
    assert g.admit("b:1", 1, 1, 1_000_000, 1000.0) == ""
    assert g.admit("a:1", 2, 1, 1_000_000, 1000.0) == ""
    # An old session's unseen packet is still admitted (harmless: incarnations rule) and does
    # not lock out the current session.
    assert g.admit("a:1", 1, 3, 1_000_000, 1000.0) == ""
    assert g.admit("a:1", 2, 2, 1_000_000, 1000.0) == ""


def test_old_recordings_fail_the_clock_window() -> None:
    g = ReplayGuard(60.0)
    assert g.admit("a:1", 1, 1, 1_000_000, 1061.0) == "clock"
    assert g.admit("a:1", 1, 1, 1_000_000, 939.0) == "clock"


def test_sequence_far_behind_the_window_is_a_replay() -> None:
    g = ReplayGuard(60.0)
    for seq in range(1, SEQ_WINDOW * 3):
        assert g.admit("a:1", 1, seq, 0, 0.0) == ""
    assert g.admit("a:1", 1, 5, 0, 0.0) == "replay"


def test_token_bucket_per_source() -> None:
    r = RateLimiter(10.0, 20)
    assert sum(r.allow("a", 0.0) for _ in range(100)) == 20
    assert r.allow("b", 0.0)
    assert sum(r.allow("a", 1.0) for _ in range(100)) == 10
