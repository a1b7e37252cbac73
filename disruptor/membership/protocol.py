"""The SWIM + Lifeguard state machine: ``(now, input) -> outputs``, with no IO at all.

Inputs are received messages (``receive``), the passage of time (``tick``), push-pull exchanges
(``push_pull_reply`` for the side that is asked, ``push_pull_done`` for the side that asked),
metadata changes (``update_meta``), fetched metadata sections (``section_fetched``) and ``leave``.
Outputs are datagrams to send (``Send``), push-pull requests and section fetches for the adapter to
carry over HTTP (``PushPull``, ``FetchSection``), member state changes (``MemberChanged``) and
metadata changes (``MetaChanged``). ``next_deadline`` says when ``tick`` next has work to do.

The rules are memberlist's: a rumour about a node wins only with a newer incarnation (or, for
suspect and dead, an equal one); only the node itself raises its incarnation, to refute; a dead
peer in a push-pull is merely suspected; a ``Dead`` whose sender is the node itself is a graceful
leave. Rule: time and randomness come in as arguments (``now``, ``rng``); nothing here reads a
clock or touches a socket.
"""

from __future__ import annotations

import random

from .awareness import Awareness
from .broadcast import BroadcastQueue
from .codec import FRAME_OVERHEAD_BYTES, PACKET_HEADER_BYTES_MAX, encode_message
from .exchanges import Exchanges
from .members import Member, MemberTable, MemberView
from .messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MemberState,
    Message,
    Meta,
    Nack,
    Ping,
    Rumour,
    Suspect,
    SyncState,
)
from .meta import EMPTY_DIGEST, MetaDigest, PeerMeta
from .outputs import (
    MemberChanged,
    MetaChanged,
    Output,
    ProtocolCounters,
    PushPull,
    Send,
)
from .probe import ProbeRound, Relay
from .sections import FetchSection, LocalSections, SectionCache
from .settings import MembershipSettings
from .suspicion import Suspicion, suspicion_timeout_s

__all__ = [
    "INCARNATION_JUMP_MAX",
    "FetchSection",
    "MemberChanged",
    "MetaChanged",
    "Output",
    "Protocol",
    "ProtocolCounters",
    "PushPull",
    "Send",
]

# A rumour may raise a known member's incarnation by at most this much at once. Refutations and
# metadata changes raise it by one at a time, so only a bug or a hostile peer jumps further; a
# jump this large would otherwise let a claim about us pin our incarnation near its limit.
INCARNATION_JUMP_MAX = 1_000_000
# A relayed probe waits this share of the probe timeout for the target before it nacks.
RELAY_NACK_SHARE = 0.8
# A lone suspicion (no confirmation) is probed by us this many probe intervals before it runs out.
LONE_CHECK_INTERVALS = 2


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
        self.sections = LocalSections(incarnation)
        self.sections.update(self.meta.sections(), incarnation)
        self.table.add(
            Member(local, incarnation, MemberState.ALIVE, now, self.sections.digest), rng
        )
        self.fetched = SectionCache(config.section_fetch_jitter_s, config.section_retry_s)
        self.broadcasts: BroadcastQueue[Rumour] = BroadcastQueue(
            config.retransmit_mult, config.broadcast_queue_max, config.retransmit_base
        )
        self.meta_broadcasts: BroadcastQueue[Meta] = BroadcastQueue(
            config.retransmit_mult, config.broadcast_queue_max, config.retransmit_base
        )
        # Announce ourselves too (as memberlist's setAlive does): the peer that let us join
        # spreads the news, and our own copies make it unlikely any peer misses it.
        self.broadcasts.queue(Alive(incarnation, local))
        self.meta_broadcasts.queue(Meta(local, self.sections.digest))
        self.awareness = Awareness(config.awareness_max_multiplier if config.lifeguard else 1)
        self.counters = ProtocolCounters()
        self.suspicions: dict[str, Suspicion] = {}
        self.probe: ProbeRound | None = None
        self.relays: dict[int, Relay] = {}
        # Suspects to probe before the round robin comes to them (see ``_check_lone``).
        self._probe_first: list[str] = []
        self.leaving = False
        self._seq = 0
        # Spread the first ticks of a peer over one interval, so peers started together do not
        # probe and gossip in lock step.
        self.next_probe_at = now + rng.uniform(0, config.probe_interval_s)
        self.next_gossip_at = now + rng.uniform(0, config.gossip_interval_s)
        seeds = tuple(s for s in seeds if s != local)
        self.exchanges = Exchanges(config, rng, now, seeds, self.counters)
        self.next_reap_at = now + config.dead_retention_s

    # --- queries ---

    @property
    def incarnation(self) -> int:
        return self.table.members[self.local].incarnation

    def full_meta(self, node: str) -> PeerMeta | None:
        """``node``'s full metadata: small sections from its digest, large ones as fetched."""
        if node == self.local:
            return self.meta
        member = self.table.get(node)
        if member is None:
            return None
        return self.fetched.meta(node, member.meta)

    def views(self) -> list[MemberView]:
        from ..address import Address

        seen = self.table.last_seen
        return [
            MemberView(
                Address.parse(m.node),
                m.state.label,
                m.incarnation,
                m.since,
                seen.get(m.node, m.since),
                self.full_meta(m.node) or PeerMeta(),
                m.node == self.local,
            )
            for m in sorted(self.table.members.values(), key=lambda m: m.node)
        ]

    def local_state(self, join: bool = False, summary: bool = False) -> SyncState:
        # The rows themselves, not copies: the adapter encodes them at once (and the simulator
        # delivers them as they are then, which is as if the body were sent a moment later).
        rows = () if summary else tuple(self.table.members.values())
        return SyncState(self.local, join, rows, self.table.hash, summary)

    def next_deadline(self) -> float:
        deadline = min(self.next_reap_at, self.fetched.next_deadline())
        if not self.leaving:
            deadline = min(deadline, self.next_probe_at, self.exchanges.next_deadline())
        if len(self.broadcasts) or len(self.meta_broadcasts):
            deadline = min(deadline, self.next_gossip_at)
        if self.probe is not None:
            deadline = min(deadline, self.probe.next_deadline())
        for r in self.relays.values():
            deadline = min(deadline, r.next_deadline())
        check_s = LONE_CHECK_INTERVALS * self.config.probe_interval_s
        for sus in self.suspicions.values():
            due = sus.deadline
            if not sus.checked and sus.confirmations == 0:
                due -= check_s
            deadline = min(deadline, due)
        return deadline

    # --- inputs ---

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self.probe is not None:
            out += self._advance_probe(now)
        for seq, relay in list(self.relays.items()):
            if relay.want_nack and now >= relay.nack_at:
                relay.want_nack = False
                out.append(self._send(relay.requester, Nack(relay.requester_seq)))
            if now >= relay.deadline:
                del self.relays[seq]
        self._check_lone(now)
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
        if not self.leaving and now >= self.exchanges.next_deadline():
            out += self.exchanges.due(now, self.table, self._state_of)
        if now >= self.fetched.next_deadline():
            out += self.fetched.due(now)
        if now >= self.next_reap_at:
            self.next_reap_at = now + self.config.dead_retention_s / 4
            for node in self.table.prune(now, self.config.dead_retention_s):
                self.fetched.forget(node)
        return out

    def receive(self, now: float, source: str, messages: tuple[Message, ...]) -> list[Output]:
        out: list[Output] = []
        members = self.table.members
        if source in members:
            self.table.last_seen[source] = now
        for message in messages:
            kind = type(message)
            if kind is Alive and message.node != self.local:  # type: ignore[union-attr]
                # Most rumours are old news about a known member (a join storm delivers N^2 of
                # them): skip them here, exactly as ``_on_alive`` would, without the calls.
                member = members.get(message.node)  # type: ignore[union-attr]
                if member is not None and message.incarnation <= member.incarnation:  # type: ignore[union-attr]
                    continue
            elif kind is Meta:
                out += self._on_meta(now, message)  # type: ignore[arg-type]
                continue
            out += self._handle(now, source, message)
        return out

    def push_pull_reply(self, now: float, remote: SyncState) -> tuple[SyncState, list[Output]]:
        """Serve a push-pull (or a newcomer's join): merge theirs, answer with ours. A summary
        whose hash equals ours is answered with a summary: nothing to exchange."""
        if remote.sender in self.table.members:
            self.table.last_seen[remote.sender] = now
        if remote.summary:
            same = remote.table_hash == self.table.hash
            return self.local_state(summary=same), []
        out = self._merge(now, remote)
        return self.local_state(), out

    def push_pull_done(self, now: float, target: str, remote: SyncState | None) -> list[Output]:
        """The reply to a ``PushPull`` we asked for (``None`` if it failed)."""
        self.counters.push_pulls += 1
        sent_summary = self.exchanges.answered(now, target, remote is not None)
        if remote is None:
            self.counters.push_pulls_failed += 1
            return []
        if target in self.table.members:
            self.table.last_seen[target] = now
        if remote.summary:
            self.counters.push_pulls_hash_only += 1
            return []
        out = self._merge(now, remote)
        if sent_summary and remote.table_hash != self.table.hash and not self.leaving:
            # They answered a summary with their table: it differed. Ours may hold what theirs
            # lacks, so send it (a full exchange; it is answered with theirs again).
            out.append(PushPull(target, self.local_state()))
        return out

    def update_meta(self, now: float, meta: PeerMeta) -> list[Output]:
        """Publish new local metadata: a new digest, gossiped as a ``Meta`` rumour."""
        meta = meta.bounded()
        if meta == self.meta or self.leaving:
            return []
        self.meta = meta
        self._publish(self.incarnation)
        return []

    def section_content(self, section: int) -> bytes | None:
        """Our own content of ``section`` (what ``GET /membership/sections/<n>`` serves)."""
        return self.sections.content(section)

    def section_fetched(
        self, now: float, fetch: FetchSection, content: bytes | None
    ) -> list[Output]:
        """The answer to a ``FetchSection`` (``None`` if it failed)."""
        member = self.table.get(fetch.node)
        current = member.meta if member is not None else None
        if self.fetched.fetched(fetch, content, current, now) and current is not None:
            return [MetaChanged(fetch.node, current)]
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
        if isinstance(message, Meta):
            return self._on_meta(now, message)
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
            return [self._send(source, Alive(self.incarnation, self.local))]
        if isinstance(message, Suspect):
            return self._on_suspect(now, message)
        return self._on_dead(now, message)

    def _merge(self, now: float, remote: SyncState) -> list[Output]:
        out: list[Output] = []
        if remote.table_hash == self.table.hash:
            return out  # the same table: nothing to learn
        members = self.table.members
        sender = remote.sender
        local = self.local
        alive = MemberState.ALIVE
        for r in remote.members:
            node = r.node
            member = members.get(node)
            state = r.state
            if member is None:
                if state == alive and node != local:
                    # New to us (most rows of a join storm): added here, without the calls. A
                    # member learned from a table is not gossiped on unless the table is its
                    # own: its own peer and whoever heard of it first-hand spread it, and tables
                    # spread tables. Re-gossiping every row of every table learned in a join
                    # storm is what made storms take rounds linear in N.
                    out.append(self._add(now, node, r.incarnation, r.meta, gossip=node == sender))
                    continue
            elif node != local:
                meta = r.meta
                if meta is not member.meta and meta.newer_than(member.meta):
                    out += self._take_meta(now, member, meta, gossip=False)
                if r.incarnation < member.incarnation or (
                    r.incarnation == member.incarnation
                    and (state == alive or state == member.state)
                ):
                    continue  # old news, the common case
            if state == alive:
                out += self._on_alive(now, Alive(r.incarnation, node))
            elif state == MemberState.LEFT:
                out += self._on_dead(now, Dead(r.incarnation, node, node))
            else:
                # Someone else's "dead" is only a suspicion here: we may still reach the peer.
                out += self._on_suspect(now, Suspect(r.incarnation, node, sender))
        return out

    def _add(
        self, now: float, node: str, incarnation: int, meta: MetaDigest, gossip: bool
    ) -> MemberChanged:
        self.table.add(Member(node, incarnation, MemberState.ALIVE, now, meta), self.rng)
        if gossip:
            self.broadcasts.queue(Alive(incarnation, node))
        if meta.large:
            self.fetched.note(node, meta, now, self.rng)
        self.exchanges.learned_member(now)
        return MemberChanged(node, None, MemberState.ALIVE, incarnation)

    def _absurd(self, claimed: int, known: int) -> bool:
        if claimed > known + INCARNATION_JUMP_MAX:
            self.counters.absurd_incarnations += 1
            return True
        return False

    def _on_alive(self, now: float, a: Alive) -> list[Output]:
        if a.node == self.local:
            me = self.table.members[self.local]
            if a.incarnation <= me.incarnation or self.leaving:
                return []
            if self._absurd(a.incarnation, me.incarnation):
                return []
            # Someone speaks for us with a newer incarnation (we restarted): say ours, louder.
            return self._refute(now, a.incarnation)
        member = self.table.get(a.node)
        if member is None:
            return [self._add(now, a.node, a.incarnation, EMPTY_DIGEST, gossip=True)]
        if a.incarnation <= member.incarnation or self._absurd(a.incarnation, member.incarnation):
            return []
        self.suspicions.pop(a.node, None)
        old = member.state
        self.broadcasts.queue(a)
        if self.table.set_state(member, MemberState.ALIVE, a.incarnation, now):
            if old in (MemberState.DEAD, MemberState.LEFT):
                self.exchanges.learned_member(now)
            return [MemberChanged(a.node, old, MemberState.ALIVE, a.incarnation)]
        return []

    def _on_meta(self, now: float, m: Meta) -> list[Output]:
        if m.node == self.local:
            mine = self.sections.digest
            if (
                m.digest.newer_than(mine)
                and not self.leaving
                and not self._absurd(m.digest.incarnation, mine.incarnation)
            ):
                # A digest of ours newer than ours: we restarted. Outbid it.
                return self._refute(now, max(m.digest.incarnation, self.incarnation))
            return []
        member = self.table.get(m.node)
        if member is None or not m.digest.newer_than(member.meta):
            return []
        if self._absurd(m.digest.incarnation, member.incarnation):
            return []
        return self._take_meta(now, member, m.digest, gossip=True, rumour=m)

    def _take_meta(
        self,
        now: float,
        member: Member,
        digest: MetaDigest,
        gossip: bool,
        rumour: Meta | None = None,
    ) -> list[Output]:
        self.table.set_meta(member, digest)
        if gossip:
            self.meta_broadcasts.queue(rumour or Meta(member.node, digest))
        self.fetched.note(member.node, digest, now, self.rng)
        return [MetaChanged(member.node, digest)]

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
        self.table.set_state(me, MemberState.ALIVE, max(me.incarnation, accused) + 1, now)
        self.counters.refutations += 1
        if self.config.lifeguard:
            # Being suspected is a sign that we, not they, are the slow one.
            self.awareness.apply_delta(1)
        self.broadcasts.queue(Alive(me.incarnation, self.local))
        # Our metadata digest follows the new incarnation, so it outbids any older one held.
        self._publish(me.incarnation)
        return []

    def _publish(self, incarnation: int) -> None:
        if self.sections.update(self.meta.sections(), incarnation):
            me = self.table.members[self.local]
            self.table.set_meta(me, self.sections.digest)
            self.meta_broadcasts.queue(Meta(self.local, self.sections.digest))

    # --- probing (SWIM) ---

    def _check_lone(self, now: float) -> None:
        """A suspicion about to run out with no confirmation is probed by us first. If its
        suspect is alive and refuted already, our probe carries the suspicion (buddy system) and
        it answers us with its current ``Alive`` at once; a refutation that gossip happened to
        miss us with no longer kills it. (Nobody else doubts it, so this is rare and cheap.)"""
        check_s = LONE_CHECK_INTERVALS * self.config.probe_interval_s
        for node, sus in self.suspicions.items():
            if not sus.checked and sus.confirmations == 0 and now >= sus.deadline - check_s:
                sus.checked = True
                self._probe_first.append(node)

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
        target = None
        while self._probe_first and target is None:
            first = self.table.get(self._probe_first.pop())
            if first is not None and first.state == MemberState.SUSPECT:
                target = first
        if target is None:
            target = self.table.next_probe_target(self.rng)
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
                self.rng, self.config.indirect_checks, now, 0.0, probe.target, alive_only=True
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
        # The requester asked us one probe timeout into its round and settles it one interval
        # in; with lan timings (0.5 s, 1 s) a nack sent a whole timeout after the ask would land
        # just after that, every time, and count as missing against the requester's own health.
        # An ack is still forwarded until the whole timeout.
        timeout = self.config.probe_timeout_s
        self.relays[seq] = Relay(
            ping.requester,
            ping.seq,
            ping.want_nack,
            now + timeout,
            now + timeout * RELAY_NACK_SHARE,
        )
        return [self._send(ping.target, Ping(seq, ping.target))]

    # --- dissemination ---

    def _gossip(self, now: float) -> list[Output]:
        if not len(self.broadcasts) and not len(self.meta_broadcasts):
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

    def _state_of(self, join: bool, summary: bool) -> SyncState:
        return self.local_state(join, summary)

    def _send(self, to: str, message: Message) -> Send:
        return self._send_many(to, [message])

    def _send_many(self, to: str, messages: list[Message]) -> Send:
        """A datagram with ``messages`` first, then as many pending rumours as fit: membership
        rumours first, metadata digests in the room left."""
        size = FRAME_OVERHEAD_BYTES + PACKET_HEADER_BYTES_MAX
        for m in messages:
            size += len(encode_message(m))
        budget = self.config.datagram_bytes_max - size
        n = self.table.live_count()
        rumours: list[Message] = list(messages)
        taken, used = self.broadcasts.take(budget, n)
        rumours += taken
        metas, meta_used = self.meta_broadcasts.take(budget - used, n)
        rumours += metas
        return Send(to, tuple(rumours), size + used + meta_used)
