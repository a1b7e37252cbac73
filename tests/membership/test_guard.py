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


def test_admission_authenticates_before_it_spends_a_senders_budget() -> None:
    import os

    from disruptor.membership.codec import Keyring, encode_packet
    from disruptor.membership.guard import Admission
    from disruptor.membership.messages import Packet, Ping

    keyring = Keyring("c", b"secret")
    admission = Admission(keyring, "10.0.0.1:1", 1400, 60.0, 10.0, 20)

    def sealed(sender: str, seq: int) -> bytes:
        packet = Packet(sender, 1, seq, 1_000_000, (Ping(seq, "10.0.0.1:1"),))
        return keyring.seal(encode_packet(packet), os.urandom(12))

    forged = [b"\x01" + os.urandom(100) for _ in range(1000)]
    assert {admission.admit(f, 0.0, 1000.0) for f in forged} <= {"auth", "version", "truncated"}
    # The forgeries spent nothing: the sender's whole burst is still there, and then it is spent.
    results = [admission.admit(sealed("10.0.0.2:1", seq), 0.0, 1000.0) for seq in range(1, 31)]
    assert all(isinstance(r, Packet) for r in results[:20])
    assert results[20:] == ["rate_limited"] * 10
    # Replays are dropped before the rate limit; another sender has its own budget.
    assert admission.admit(sealed("10.0.0.2:1", 1), 5.0, 1000.0) == "replay"
    assert isinstance(admission.admit(sealed("10.0.0.3:1", 1), 0.0, 1000.0), Packet)
    assert admission.admit(sealed("10.0.0.1:1", 1), 0.0, 1000.0) == "self"
    assert admission.admit(b"\x01" * 2000, 0.0, 1000.0) == "oversized"
