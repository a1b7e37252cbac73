"""The SWIM + Lifeguard state machine: ``(now, input) -> outputs``, with no IO at all.

Inputs are received messages (``receive``), the passage of time (``tick``), push-pull exchanges
(``push_pull_reply`` for the side that is asked, ``push_pull_done`` for the side that asked),
metadata changes and ``leave``. Outputs are datagrams to send (``Send``), push-pull requests for
the adapter to carry over HTTP (``PushPull``) and member state changes (``MemberChanged``).
``next_deadline`` says when ``tick`` next has work to do.

The rules are memberlist's: a rumour about a node wins only with a newer incarnation (or, for
suspect and dead, an equal one); only the node itself raises its incarnation, to refute; a dead
peer in a push-pull is merely suspected; a ``Dead`` whose sender is the node itself is a graceful
leave. Rule: time and randomness come in as arguments (``now``, ``rng``); nothing here reads a
clock or touches a socket.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .awareness import Awareness
from .broadcast import BroadcastQueue
from .codec import FRAME_OVERHEAD_BYTES, PACKET_HEADER_BYTES_MAX, encode_message
from .members import Member, MemberTable, MemberView
from .messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MemberState,
    Message,
    Nack,
    Ping,
    Rumour,
    Suspect,
    SyncState,
)
from .meta import PeerMeta
from .probe import ProbeRound, Relay
from .settings import MembershipSettings
from .suspicion import Suspicion, suspicion_timeout_s

# A rumour may raise a known member's incarnation by at most this much at once. Refutations and
# metadata changes raise it by one at a time, so only a bug or a hostile peer jumps further; a
# jump this large would otherwise let a claim about us pin our incarnation near its limit.
INCARNATION_JUMP_MAX = 1_000_000
# Peers above this count stretch the push-pull interval (log2), as memberlist does.
PUSH_PULL_SCALE_THRESHOLD = 32


@dataclass(frozen=True)
class Send:
    to: str
    messages: tuple[Message, ...]
    # The datagram's size on the wire, bytes (an upper bound; used for traffic accounting).
    size_bytes: int


@dataclass(frozen=True)
class PushPull:
    """Carry ``state`` to ``target`` over HTTP and hand the reply to ``push_pull_done``."""

    target: str
    state: SyncState


@dataclass(frozen=True)
class MemberChanged:
    node: str
    old: MemberState | None
    new: MemberState
    incarnation: int


Output = Send | PushPull | MemberChanged


@dataclass
class ProtocolCounters:
    probes: int = 0
    probes_failed: int = 0
    indirect_probes: int = 0
    suspicions: int = 0
    refutations: int = 0
    deaths_declared: int = 0
    misrouted: int = 0
    absurd_incarnations: int = 0
    push_pulls: int = 0
    push_pulls_failed: int = 0
    dead_by_state: dict[str, int] = field(default_factory=dict)


def push_pull_scale(interval_s: float, n: int) -> float:
    if n <= PUSH_PULL_SCALE_THRESHOLD:
        return interval_s
    multiplier = math.ceil(math.log2(n) - math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1
    return interval_s * multiplier


class Protocol:
    def __init__(
        self,
        local: str,
        config: MembershipSettings,
        rng: random.Random,
        now: float,
        meta: PeerMeta | None = None,
        seeds: tuple[str, ...] = (),
        incarnation: int = 0,
    ) -> None:
        self.local = local
        self.config = config
        self.rng = rng
        self.table = MemberTable(local)
        self.meta = (meta or PeerMeta()).bounded()
        self.table.add(Member(local, incarnation, MemberState.ALIVE, now, now, self.meta), rng)
        self.broadcasts = BroadcastQueue(
            config.retransmit_mult, config.broadcast_queue_max, config.retransmit_base
        )
        # Announce ourselves too (as memberlist's setAlive does): the peer that let us join
        # spreads the news, and our own copies make it unlikely any peer misses it.
        self.broadcasts.queue(Alive(incarnation, local, self.meta))
        self.awareness = Awareness(config.awareness_max_multiplier if config.lifeguard else 1)
        self.counters = ProtocolCounters()
        self.suspicions: dict[str, Suspicion] = {}
        self.probe: ProbeRound | None = None
        self.relays: dict[int, Relay] = {}
        self.leaving = False
        self._seq = 0
        # Spread the first ticks of a peer over one interval, so peers started together do not
        # probe and gossip in lock step.
        self.next_probe_at = now + rng.uniform(0, config.probe_interval_s)
        self.next_gossip_at = now + rng.uniform(0, config.gossip_interval_s)
        self.next_push_pull_at = now + config.push_pull_interval_s * rng.uniform(0.5, 1.0)
        self.next_reap_at = now + config.dead_retention_s
        self.seeds = tuple(s for s in seeds if s != local)
        self.joined = not self.seeds
        self.join_backoff_s = config.join_retry_initial_s
        self.next_join_at = now
        self._joins_in_flight = 0

    # --- queries ---

    @property
    def incarnation(self) -> int:
        return self.table.members[self.local].incarnation

    def views(self) -> list[MemberView]:
        from ..address import Address

        return [
            MemberView(
                Address.parse(m.node),
                m.state.label,
                m.incarnation,
                m.since,
                m.last_seen,
                m.meta,
                m.node == self.local,
            )
            for m in sorted(self.table.members.values(), key=lambda m: m.node)
        ]

    def local_state(self, join: bool = False) -> SyncState:
        return SyncState(self.local, join, tuple(m.record() for m in self.table.members.values()))

    def next_deadline(self) -> float:
        deadlines = [self.next_reap_at]
        if not self.leaving:
            deadlines += [self.next_probe_at, self.next_push_pull_at]
        if len(self.broadcasts):
            deadlines.append(self.next_gossip_at)
        if not self.joined and not self._joins_in_flight:
            deadlines.append(self.next_join_at)
        if self.probe is not None:
            deadlines.append(self.probe.next_deadline())
        deadlines += [r.deadline for r in self.relays.values()]
        deadlines += [s.deadline for s in self.suspicions.values()]
        return min(deadlines)

    # --- inputs ---

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        if not self.joined and not self._joins_in_flight and now >= self.next_join_at:
            out += self._start_join(now)
        if self.probe is not None:
            out += self._advance_probe(now)
        for seq in [s for s, r in self.relays.items() if now >= r.deadline]:
            relay = self.relays.pop(seq)
            if relay.want_nack:
                out.append(self._send(relay.requester, Nack(relay.requester_seq)))
        for node in [n for n, s in self.suspicions.items() if now >= s.deadline]:
            member = self.table.get(node)
            if member is not None:
                self.counters.deaths_declared += 1
                out += self._on_dead(now, Dead(member.incarnation, node, self.local))
        if not self.leaving and now >= self.next_probe_at:
            out += self._start_probe(now)
        if now >= self.next_gossip_at:
            self.next_gossip_at = now + self.config.gossip_interval_s
            out += self._gossip(now)
        if not self.leaving and now >= self.next_push_pull_at:
            n = self.table.live_count()
            self.next_push_pull_at = now + push_pull_scale(self.config.push_pull_interval_s, n)
            out += self._start_push_pull()
        if now >= self.next_reap_at:
            self.next_reap_at = now + self.config.dead_retention_s / 4
            self.table.prune(now, self.config.dead_retention_s)
        return out

    def receive(self, now: float, source: str, messages: tuple[Message, ...]) -> list[Output]:
        out: list[Output] = []
        members = self.table.members
        sender = members.get(source)
        if sender is not None:
            sender.last_seen = now
        for message in messages:
            if type(message) is Alive and message.node != self.local:
                # Most rumours are old news about a known member (a join storm delivers N^2 of
                # them): skip them here, exactly as ``_on_alive`` would, without the calls.
                member = members.get(message.node)
                if member is not None and message.incarnation <= member.incarnation:
                    continue
            out += self._handle(now, source, message)
        return out

    def push_pull_reply(self, now: float, remote: SyncState) -> tuple[SyncState, list[Output]]:
        """Serve a push-pull (or a newcomer's join): merge theirs, answer with ours."""
        reply = self.local_state()
        sender = self.table.get(remote.sender)
        if sender is not None:
            sender.last_seen = now
        return reply, self._merge(now, remote)

    def push_pull_done(self, now: float, target: str, remote: SyncState | None) -> list[Output]:
        """The reply to a ``PushPull`` we asked for (``None`` if it failed)."""
        self.counters.push_pulls += 1
        join = target in self.seeds and not self.joined
        if join:
            self._joins_in_flight = max(0, self._joins_in_flight - 1)
        if remote is None:
            self.counters.push_pulls_failed += 1
            if join and not self._joins_in_flight:
                self.next_join_at = now + self.join_backoff_s
                self.join_backoff_s = min(self.config.join_retry_max_s, 2 * self.join_backoff_s)
            return []
        if join:
            self.joined = True
        target_member = self.table.get(target)
        if target_member is not None:
            target_member.last_seen = now
        return self._merge(now, remote)

    def update_meta(self, now: float, meta: PeerMeta) -> list[Output]:
        """Gossip new local metadata (as a new incarnation, so it replaces the old everywhere)."""
        meta = meta.bounded()
        if meta == self.meta or self.leaving:
            return []
        self.meta = meta
        me = self.table.members[self.local]
        me.meta = meta
        me.incarnation += 1
        self.broadcasts.queue(Alive(me.incarnation, self.local, meta))
        return []

    def leave(self, now: float) -> list[Output]:
        """Announce a graceful leave to a few peers at once; gossip carries it on from there."""
        if self.leaving:
            return []
        self.leaving = True
        me = self.table.members[self.local]
        rumour = Dead(me.incarnation, self.local, self.local)
        self.broadcasts.queue(rumour)
        self.table.set_state(me, MemberState.LEFT, me.incarnation, now)
        count = self.config.gossip_nodes + self.config.indirect_checks
        targets = self.table.random_members(self.rng, count, now, 0.0)
        return [self._send(t.node, rumour) for t in targets]

    # --- message handling ---

    def _handle(self, now: float, source: str, message: Message) -> list[Output]:
        if isinstance(message, Ping):
            if message.target != self.local:
                self.counters.misrouted += 1
                return []
            return [self._send(source, Ack(message.seq))]
        if isinstance(message, IndirectPing):
            return self._relay(now, message)
        if isinstance(message, Ack):
            return self._on_ack(now, message.seq)
        if isinstance(message, Nack):
            if self.probe is not None and self.probe.seq == message.seq:
                self.probe.nacks += 1
            return []
        if isinstance(message, Alive):
            return self._on_alive(now, message)
        if (
            self.config.lifeguard
            and message.node == self.local
            and message.incarnation < self.incarnation
            and not self.leaving
            and source != self.local
        ):
            # A stale accusation (we refuted it already, but the accuser missed the news): tell
            # the accuser directly instead of hoping gossip reaches it before its timer fires.
            return [self._send(source, Alive(self.incarnation, self.local, self.meta))]
        if isinstance(message, Suspect):
            return self._on_suspect(now, message)
        return self._on_dead(now, message)

    def _merge(self, now: float, remote: SyncState) -> list[Output]:
        out: list[Output] = []
        for r in remote.members:
            if r.state == MemberState.ALIVE:
                out += self._on_alive(now, Alive(r.incarnation, r.node, r.meta))
            elif r.state == MemberState.LEFT:
                out += self._on_dead(now, Dead(r.incarnation, r.node, r.node))
            else:
                # Someone else's "dead" is only a suspicion here: we may still reach the peer.
                out += self._on_suspect(now, Suspect(r.incarnation, r.node, remote.sender))
        return out

    def _absurd(self, claimed: int, known: int) -> bool:
        if claimed > known + INCARNATION_JUMP_MAX:
            self.counters.absurd_incarnations += 1
            return True
        return False

    def _on_alive(self, now: float, a: Alive) -> list[Output]:
        if a.node == self.local:
            me = self.table.members[self.local]
            stale = a.incarnation < me.incarnation or (
                a.incarnation == me.incarnation and a.meta == me.meta
            )
            if stale or self.leaving or self._absurd(a.incarnation, me.incarnation):
                return []
            # Someone speaks for us with a different story: say ours, louder.
            return self._refute(now, a.incarnation)
        member = self.table.get(a.node)
        if member is None:
            member = Member(a.node, a.incarnation, MemberState.ALIVE, now, now, a.meta)
            self.table.add(member, self.rng)
            self.broadcasts.queue(a)
            return [MemberChanged(a.node, None, MemberState.ALIVE, a.incarnation)]
        if a.incarnation <= member.incarnation or self._absurd(a.incarnation, member.incarnation):
            return []
        self.suspicions.pop(a.node, None)
        old = member.state
        member.meta = a.meta
        self.broadcasts.queue(a)
        if self.table.set_state(member, MemberState.ALIVE, a.incarnation, now):
            return [MemberChanged(a.node, old, MemberState.ALIVE, a.incarnation)]
        return []

    def _on_suspect(self, now: float, s: Suspect) -> list[Output]:
        if s.node == self.local:
            me = self.table.members[self.local]
            if s.incarnation < me.incarnation or self.leaving:
                return []
            if self._absurd(s.incarnation, me.incarnation):
                return []
            return self._refute(now, s.incarnation)
        member = self.table.get(s.node)
        if member is None or s.incarnation < member.incarnation:
            return []
        suspicion = self.suspicions.get(s.node)
        if suspicion is not None:
            if suspicion.confirm(s.sender):
                self.broadcasts.queue(s)
            return []
        if member.state != MemberState.ALIVE or self._absurd(s.incarnation, member.incarnation):
            return []
        self.broadcasts.queue(s)
        n = self.table.live_count()
        k = self.config.suspicion_confirmations if self.config.lifeguard else 0
        if n - 2 < k:
            k = 0
        min_s = suspicion_timeout_s(self.config.suspicion_mult, n, self.config.probe_interval_s)
        max_s = self.config.suspicion_max_timeout_mult * min_s if self.config.lifeguard else min_s
        self.suspicions[s.node] = Suspicion(now, s.sender, k, min_s, max_s)
        self.table.set_state(member, MemberState.SUSPECT, s.incarnation, now)
        return [MemberChanged(s.node, MemberState.ALIVE, MemberState.SUSPECT, s.incarnation)]

    def _on_dead(self, now: float, d: Dead) -> list[Output]:
        if d.node == self.local:
            me = self.table.members[self.local]
            if self.leaving or d.incarnation < me.incarnation:
                return []
            if self._absurd(d.incarnation, me.incarnation):
                return []
            return self._refute(now, d.incarnation)
        member = self.table.get(d.node)
        if member is None or d.incarnation < member.incarnation or not member.is_live:
            return []
        if self._absurd(d.incarnation, member.incarnation):
            return []
        self.suspicions.pop(d.node, None)
        self.broadcasts.queue(d)
        old = member.state
        new = MemberState.LEFT if d.sender == d.node else MemberState.DEAD
        self.table.set_state(member, new, d.incarnation, now)
        self.counters.dead_by_state[new.label] = self.counters.dead_by_state.get(new.label, 0) + 1
        return [MemberChanged(d.node, old, new, d.incarnation)]

    def _refute(self, now: float, accused: int) -> list[Output]:
        me = self.table.members[self.local]
        me.incarnation = max(me.incarnation, accused) + 1
        self.counters.refutations += 1
        if self.config.lifeguard:
            # Being suspected is a sign that we, not they, are the slow one.
            self.awareness.apply_delta(1)
        self.broadcasts.queue(Alive(me.incarnation, self.local, self.meta))
        return []

    # --- probing (SWIM) ---

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _start_probe(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self.probe is not None:
            # The previous round ran past its deadline without being settled; settle it now.
            out += self._fail_probe(now)
        interval = self.awareness.scale(self.config.probe_interval_s)
        self.next_probe_at = now + interval
        target = self.table.next_probe_target(self.rng, now, self.config.gossip_to_the_dead_s)
        if target is None:
            return out
        seq = self._next_seq()
        self.probe = ProbeRound(seq, target.node, now + self.config.probe_timeout_s, now + interval)
        self.counters.probes += 1
        messages: list[Message] = [Ping(seq, target.node)]
        if target.state == MemberState.SUSPECT and self.config.lifeguard:
            # Buddy system: tell a suspect it is suspected in the very probe, so it refutes at once.
            messages.append(Suspect(target.incarnation, target.node, self.local))
        out.append(self._send_many(target.node, messages))
        return out

    def _advance_probe(self, now: float) -> list[Output]:
        probe = self.probe
        assert probe is not None
        out: list[Output] = []
        if not probe.indirect_sent and now >= probe.direct_deadline:
            probe.indirect_sent = True
            helpers = self.table.random_members(
                self.rng, self.config.indirect_checks, now, 0.0, exclude=probe.target
            )
            want_nack = self.config.lifeguard
            probe.expected_nacks = len(helpers) if want_nack else 0
            for helper in helpers:
                self.counters.indirect_probes += 1
                ping = IndirectPing(probe.seq, probe.target, self.local, want_nack)
                out.append(self._send(helper.node, ping))
        if now >= probe.deadline:
            out += self._fail_probe(now)
        return out

    def _fail_probe(self, now: float) -> list[Output]:
        probe = self.probe
        assert probe is not None
        self.probe = None
        self.counters.probes_failed += 1
        if self.config.lifeguard:
            # Missing nacks mean our own links (or our own loop) are the trouble.
            missed = probe.expected_nacks - probe.nacks if probe.expected_nacks else 1
            self.awareness.apply_delta(max(0, missed))
        member = self.table.get(probe.target)
        if member is None or not member.is_live:
            return []
        if member.state == MemberState.ALIVE:
            self.counters.suspicions += 1
        # A failed probe of a member that is already suspect is our own independent confirmation
        # (as memberlist's suspectNode counts it): the suspicion shortens towards its minimum.
        return self._on_suspect(now, Suspect(member.incarnation, member.node, self.local))

    def _on_ack(self, now: float, seq: int) -> list[Output]:
        if self.probe is not None and self.probe.seq == seq:
            self.probe = None
            if self.config.lifeguard:
                self.awareness.apply_delta(-1)
            return []
        relay = self.relays.pop(seq, None)
        if relay is not None:
            return [self._send(relay.requester, Ack(relay.requester_seq))]
        return []

    def _relay(self, now: float, ping: IndirectPing) -> list[Output]:
        if len(self.relays) >= self.config.broadcast_queue_max:
            return []
        seq = self._next_seq()
        self.relays[seq] = Relay(
            ping.requester, ping.seq, ping.want_nack, now + self.config.probe_timeout_s
        )
        return [self._send(ping.target, Ping(seq, ping.target))]

    # --- dissemination ---

    def _gossip(self, now: float) -> list[Output]:
        if not len(self.broadcasts):
            return []
        out: list[Output] = []
        targets = self.table.random_members(
            self.rng, self.config.gossip_nodes, now, self.config.gossip_to_the_dead_s
        )
        for target in targets:
            send = self._send_many(target.node, [])
            if send.messages:
                out.append(send)
        return out

    def _start_push_pull(self) -> list[Output]:
        out: list[Output] = []
        live = self.table.random_members(self.rng, 1, 0.0, 0.0)
        if live:
            out.append(PushPull(live[0].node, self.local_state()))
        # Reconnect: also try one peer we think is dead (not left), in proportion to how many are,
        # so two sides of a healed partition find each other again.
        dead = [m for m in self.table.members.values() if m.state == MemberState.DEAD]
        if dead and self.rng.random() < min(1.0, len(dead) / max(1, self.table.live_count())):
            out.append(PushPull(self.rng.choice(dead).node, self.local_state()))
        return out

    def _start_join(self, now: float) -> list[Output]:
        self._joins_in_flight = len(self.seeds)
        return [PushPull(seed, self.local_state(join=True)) for seed in self.seeds]

    def _send(self, to: str, message: Message) -> Send:
        return self._send_many(to, [message])

    def _send_many(self, to: str, messages: list[Message]) -> Send:
        """A datagram with ``messages`` first, then as many pending rumours as fit."""
        size = FRAME_OVERHEAD_BYTES + PACKET_HEADER_BYTES_MAX + 2
        for m in messages:
            size += len(encode_message(m)) + 1
        budget = self.config.datagram_bytes_max - size
        rumours: list[Rumour]
        rumours, used = self.broadcasts.take(budget, self.table.live_count())
        return Send(to, (*messages, *rumours), size + used)
