"""Admission checks on datagrams before the protocol sees them: size, authentication, replay
window, and a rate limit per authenticated sender.

``Admission.admit`` runs the checks in the one safe order: size (free), then the AEAD tag (a few
microseconds), then the replay window, and only then the rate limit, keyed on the sender named
*inside* the authenticated packet. A source address can be spoofed by anyone; a sender name inside
a sealed packet only by a holder of the cluster secret. So a flood of forged datagrams "from" a
member's address is dropped at the tag check and spends no budget of that member: its own
datagrams keep being admitted (a rate limit keyed on the source address and applied first let any
flood of random bytes starve a healthy peer of its acks). Replayed copies are dropped before they
can spend their sender's budget either.

``ReplayGuard`` drops a packet whose sender clock is too far from ours (an old recording) or whose
``(session, seq)`` from that sender was already seen (a copy inside the window); incarnation numbers
make any rumour that slips through harmless anyway (an older incarnation never overrides a newer
one). ``RateLimiter`` is a token bucket per key. Rule: bounded memory (the tables are capped and
pruned); time is passed in; no IO.
"""

from __future__ import annotations

from collections import OrderedDict

from .codec import CodecError, Keyring, decode_packet
from .messages import Packet

# Packet sequence numbers remembered per sender session: a copy older than this many packets is
# caught by the clock window instead.
SEQ_WINDOW = 1024
# Senders (and source addresses) remembered at most; the least recently seen are forgotten first.
TRACKED_SOURCES_MAX = 8192


class _SessionWindow:
    __slots__ = ("highest", "seen")

    def __init__(self) -> None:
        self.highest = -1
        self.seen: set[int] = set()


class ReplayGuard:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        # One window per (sender, session): a restarted sender starts a new session, and an old
        # session's packets are still caught by the clock window. Sessions are never "retired",
        # so a recorded packet of an old session cannot be used to lock out the current one.
        self._sessions: OrderedDict[tuple[str, int], _SessionWindow] = OrderedDict()

    def admit(self, sender: str, session: int, seq: int, sent_at_ms: int, now_s: float) -> str:
        """``""`` if the packet is fresh, else the reason it is dropped (``replay``/``clock``)."""
        if abs(sent_at_ms / 1000.0 - now_s) > self.window_s:
            return "clock"
        key = (sender, session)
        window = self._sessions.get(key)
        if window is None:
            window = self._sessions[key] = _SessionWindow()
        self._sessions.move_to_end(key)
        if seq <= window.highest - SEQ_WINDOW or seq in window.seen:
            return "replay"
        window.seen.add(seq)
        if seq > window.highest:
            window.highest = seq
            if len(window.seen) > 2 * SEQ_WINDOW:
                floor = window.highest - SEQ_WINDOW
                window.seen = {s for s in window.seen if s > floor}
        while len(self._sessions) > TRACKED_SOURCES_MAX:
            self._sessions.popitem(last=False)
        return ""


class RateLimiter:
    """A token bucket per source: ``rate_per_s`` sustained, ``burst`` at once."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, source: str, now_s: float) -> bool:
        tokens, last = self._buckets.get(source, (self.burst, now_s))
        tokens = min(self.burst, tokens + (now_s - last) * self.rate_per_s)
        allowed = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if allowed else tokens, now_s)
        self._buckets.move_to_end(source)
        while len(self._buckets) > TRACKED_SOURCES_MAX:
            self._buckets.popitem(last=False)
        return allowed


class Admission:
    """Every check a datagram passes before the protocol sees it, in order; see the module doc."""

    def __init__(
        self,
        keyring: Keyring,
        local: str,
        datagram_bytes_max: int,
        replay_window_s: float,
        sender_packets_per_s: float,
        sender_burst_packets: int,
    ) -> None:
        self.keyring = keyring
        self.local = local
        self.datagram_bytes_max = datagram_bytes_max
        self.replay = ReplayGuard(replay_window_s)
        self.limiter = RateLimiter(sender_packets_per_s, sender_burst_packets)

    def admit(self, data: bytes, now_s: float, wall_s: float) -> Packet | str:
        """The packet, or the reason (a drop counter's name) it is dropped. ``now_s`` is the
        monotonic clock (rate), ``wall_s`` the wall clock (the sender's stamp is compared to it)."""
        if len(data) > self.datagram_bytes_max:
            return "oversized"
        try:
            packet = decode_packet(self.keyring.open(data))
        except CodecError as exc:
            return exc.reason
        if packet.sender == self.local:
            return "self"
        reason = self.replay.admit(
            packet.sender, packet.session, packet.seq, packet.sent_at_ms, wall_s
        )
        if reason:
            return reason
        if not self.limiter.allow(packet.sender, now_s):
            return "rate_limited"
        return packet
