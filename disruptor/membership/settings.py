"""Gossip timings and limits: one frozen dataclass, three presets, every value explained here.

The defaults model memberlist's LAN profile (``lan``); ``local`` is tuned for peers on one machine
(loopback: tiny round trips, so failures are detected faster), and ``wan`` for peers across the
internet (long and jittery round trips, so everything is slower and more patient). Rule: a timing
or a limit used by the membership code is a field here, never a literal in the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..errors import BadRequest

PRESET_NAMES = ("local", "lan", "wan")


@dataclass(frozen=True)
class MembershipSettings:
    # --- failure detection (SWIM) ---
    # How often a peer probes one other peer (round robin over a shuffled list). A full round of
    # N peers takes N probe intervals, so a failed peer is probed by someone within about one
    # interval (every peer is probing someone).
    probe_interval_s: float = 1.0
    # How long to wait for the direct ack before asking others to probe for us. About the 99th
    # percentile of a round trip on the network, so a slow-but-alive peer is not suspected.
    probe_timeout_s: float = 0.5
    # How many peers we ask to probe an unresponsive target for us (the k of SWIM's ping-req):
    # three indirect paths make one lossy link no reason to suspect anyone.
    indirect_checks: int = 3
    # --- suspicion (Lifeguard) ---
    # The shortest suspicion timeout is suspicion_mult * max(1, log10(N)) * probe_interval: long
    # enough for the suspect to hear the rumour and refute it, growing slowly with N since the
    # rumour needs about log N rounds to reach it. memberlist's LAN value is 4; ours is lower
    # because a suspect hears of its suspicion directly (the buddy system: the next probe of it,
    # within about one probe interval at any N, carries it) and accusers of an incarnation it has
    # refuted get its Alive at once, so only the refutation's spread grows with N. 2 keeps 0
    # false deaths in 10 minutes at 10% loss and under stalls in the simulator (see
    # benchmarks/README.md) and marks a crashed peer dead everywhere within about 10 s at
    # N = 10,000.
    suspicion_mult: float = 2.0
    # A suspicion starts at its longest and reaches the shortest timeout after this many
    # independent confirmations (memberlist derives it as suspicion_mult - 2 = 2 for its LAN
    # profile). Every prober whose own probe of a suspect fails counts as one.
    suspicion_confirmations: int = 2
    # A suspicion with no independent confirmations starts at this multiple of the shortest
    # timeout and shrinks towards it as other peers confirm (Lifeguard's local-health-aware
    # suspicion): a lone suspicion from a sick peer has time to be refuted.
    suspicion_max_timeout_mult: int = 6
    # --- local health (Lifeguard) ---
    # A peer that misses acks and nacks doubts itself: its probe timeouts are multiplied by up to
    # this much, so a slow peer stops accusing healthy ones.
    awareness_max_multiplier: int = 8
    # Switch off every Lifeguard refinement (local health, nacks, growing suspicion timeouts, the
    # buddy system, answering a stale accusation straight to the accuser):
    # plain SWIM, for comparison in the simulator only.
    lifeguard: bool = True
    # --- dissemination ---
    # How often a peer sends pending rumours to a few random peers, besides piggybacking them on
    # probes and acks: rumours spread in O(log N) gossip rounds.
    gossip_interval_s: float = 0.2
    # How many random peers each gossip tick sends to (memberlist's GossipNodes).
    gossip_nodes: int = 3
    # A rumour is retransmitted retransmit_mult * ceil(log10(N + 1)) times (memberlist's budget),
    # growing only with log N...
    retransmit_mult: int = 4
    # ...plus this many more. Every peer holding a rumour sends it that often, so one given peer
    # misses it with probability about exp(-budget), and some peer of N with N * exp(-budget):
    # memberlist's formula alone gives 4 sends below 10 peers and 8 up to 99 (a 1-2% chance per
    # rumour that someone waits for push-pull); four more make it well under 0.1%.
    retransmit_base: int = 4
    # Dead peers still receive gossip this long, so a falsely-declared peer hears the news quickly
    # and refutes it.
    gossip_to_the_dead_s: float = 30.0
    # --- full state sync (push-pull over HTTP) ---
    # How often a peer exchanges its whole member table with one random peer: it repairs anything
    # gossip missed and merges the two sides of a healed partition. Scaled up above 32 peers so the
    # total sync load stays bounded.
    push_pull_interval_s: float = 30.0
    # An HTTP push-pull that takes longer than this counts as failed.
    push_pull_timeout_s: float = 10.0
    # While membership changes fast, a peer also exchanges its table every fast_sync_interval_s:
    # after it joins (a newcomer learns from more than its seed, so one rumour its seed missed
    # cannot keep it waiting for the periodic push-pull), and whenever it learned at least
    # fast_sync_members_min new members since its last exchange. A join storm of N peers is N
    # rumours for every peer, more than gossip carries in log N rounds at any rumour size; whole
    # tables merged at random spread them in O(log N) exchanges instead. A single newcomer makes
    # the others learn one member, so a settled cluster never syncs fast.
    fast_sync_interval_s: float = 0.5
    fast_sync_members_min: int = 8
    # After joining, a newcomer exchanges its table at least this many times at the fast pace.
    join_syncs_min: int = 2
    # Seeds that cannot be reached are retried with exponential backoff from here...
    join_retry_initial_s: float = 1.0
    # ...up to this interval between attempts (never given up: a seed may come back later).
    join_retry_max_s: float = 30.0
    # --- table hygiene ---
    # Dead and left peers stay listed (the status page shows them) this long, then are forgotten.
    dead_retention_s: float = 300.0
    # Local metadata (load, bundles held) is re-read this often; a change is gossiped as a new
    # metadata digest (a few tens of bytes), so this bounds metadata traffic.
    meta_refresh_s: float = 2.0
    # A metadata section too large to ride in gossip (the bundles held) is fetched over HTTP from
    # its peer when its digest changes, after a random delay of up to this (a change seen by
    # every peer at once does not bring every request at once)...
    section_fetch_jitter_s: float = 0.5
    # ...and tried again this much later if the fetch failed (three tries per version).
    section_retry_s: float = 2.0
    # On a graceful leave, wait at most this long for the leave rumour to go out before stopping.
    leave_propagate_s: float = 1.0
    # --- limits ---
    # Largest datagram sent or accepted, bytes: below the common 1,500-byte Ethernet MTU minus
    # IP/UDP headers, so no datagram is ever fragmented.
    datagram_bytes_max: int = 1400
    # Largest push-pull body accepted over HTTP, bytes: a row is about 50 bytes (name,
    # incarnation, state, metadata digest), so 4 MiB is a table of about 80,000 peers.
    sync_bytes_max: int = 4 * 1024 * 1024
    # Rumours waiting to be sent are capped; the oldest, most-sent ones are dropped first.
    broadcast_queue_max: int = 4096
    # Authenticated datagrams accepted per second from one sender (a token bucket keyed on the
    # sender named inside the sealed packet, checked after authentication and the replay window,
    # so forged or replayed datagrams cannot spend it); the rest are dropped and counted.
    # Generous: a healthy peer sends a few tens a second.
    sender_packets_per_s: float = 200.0
    # Burst allowance of that bucket.
    sender_burst_packets: int = 400
    # A packet whose sender clock differs from ours by more than this is dropped as a replay;
    # inside the window, a per-sender sequence number catches duplicates.
    replay_window_s: float = 60.0

    def validate(self) -> MembershipSettings:
        if self.probe_timeout_s <= 0 or self.probe_interval_s <= self.probe_timeout_s:
            raise BadRequest("membership: need 0 < probe_timeout_s < probe_interval_s")
        if self.gossip_interval_s <= 0 or self.push_pull_interval_s <= 0:
            raise BadRequest("membership: intervals must be positive")
        if not 576 <= self.datagram_bytes_max <= 65000:
            raise BadRequest("membership: datagram_bytes_max must be within 576..65000")
        if self.indirect_checks < 0 or self.gossip_nodes < 1 or self.suspicion_mult <= 0:
            raise BadRequest("membership: counts must be positive")
        return self


# memberlist's DefaultLANConfig: the values above.
LAN = MembershipSettings()

# memberlist's DefaultLocalConfig, for peers on one machine: round trips are sub-millisecond, so
# a short probe timeout suffices; fewer indirect checks and retransmits because loss is rare.
LOCAL = replace(
    LAN,
    probe_timeout_s=0.2,
    indirect_checks=1,
    gossip_interval_s=0.1,
    retransmit_mult=2,
    retransmit_base=4,
    push_pull_interval_s=15.0,
    gossip_to_the_dead_s=15.0,
    push_pull_timeout_s=5.0,
)

# memberlist's DefaultWANConfig: round trips of hundreds of milliseconds and more loss, so probe
# less often and wait longer; gossip to one more peer per tick to make up for the slower ticks.
WAN = replace(
    LAN,
    probe_interval_s=5.0,
    probe_timeout_s=3.0,
    suspicion_mult=6,
    suspicion_confirmations=4,
    gossip_interval_s=0.5,
    gossip_nodes=4,
    push_pull_interval_s=60.0,
    gossip_to_the_dead_s=60.0,
    push_pull_timeout_s=30.0,
    meta_refresh_s=5.0,
    fast_sync_interval_s=2.0,
    section_fetch_jitter_s=2.0,
)

PRESETS = {"local": LOCAL, "lan": LAN, "wan": WAN}


def preset(name: str) -> MembershipSettings:
    """The named preset (``local``, ``lan`` or ``wan``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise BadRequest(f"unknown gossip preset {name!r}; use one of {PRESET_NAMES}") from None


def resolve(preset_name: str, overrides: MembershipSettings | None = None) -> MembershipSettings:
    """The named preset with every field of ``overrides`` that differs from the LAN defaults
    applied on top (so ``membership.probe_interval_s = 2`` in the settings file wins over the
    preset, and an untouched ``[membership]`` section leaves the preset as it is)."""
    base = preset(preset_name)
    if overrides is None:
        return base.validate()
    changed = {
        f.name: getattr(overrides, f.name)
        for f in fields(MembershipSettings)
        if getattr(overrides, f.name) != getattr(LAN, f.name)
    }
    return replace(base, **changed).validate()
