"""The state machine, driven by hand: incarnation rules, refutation, probes, leave, join."""

from __future__ import annotations

import random

from disruptor.membership.messages import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    MemberState,
    Meta,
    Nack,
    Ping,
    Suspect,
)
from disruptor.membership.meta import MetaDigest, PeerLoad, PeerMeta, SectionId
from disruptor.membership.protocol import (
    INCARNATION_JUMP_MAX,
    MemberChanged,
    MetaChanged,
    Protocol,
    PushPull,
    Send,
)
from disruptor.membership.sections import FetchSection
from disruptor.membership.settings import LAN

ME, A, B, C = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"
BUNDLES = tuple(f"{i:040x}" for i in range(16))


def make(*others: str, lifeguard: bool = True) -> Protocol:
    from dataclasses import replace

    p = Protocol(ME, replace(LAN, lifeguard=lifeguard), random.Random(1), 0.0)
    for o in others:
        p.receive(0.0, o, (Alive(1, o),))
    return p


def sends(outputs: list[object]) -> list[Send]:
    return [o for o in outputs if isinstance(o, Send)]


def state(p: Protocol, node: str) -> MemberState:
    member = p.table.get(node)
    assert member is not None
    return member.state


def test_alive_adds_then_only_newer_incarnations_win() -> None:
    p = make()
    out = p.receive(0.0, A, (Alive(3, A),))
    assert MemberChanged(A, None, MemberState.ALIVE, 3) in out
    p.receive(1.0, A, (Suspect(3, A, B),))
    assert state(p, A) == MemberState.SUSPECT
    p.receive(1.0, A, (Alive(3, A),))  # same incarnation: no refutation
    assert state(p, A) == MemberState.SUSPECT
    p.receive(1.0, A, (Alive(4, A),))
    assert state(p, A) == MemberState.ALIVE
    p.receive(1.0, B, (Dead(3, A, B),))  # older than what we hold: ignored
    assert state(p, A) == MemberState.ALIVE
    p.receive(1.0, B, (Dead(4, A, B),))
    assert state(p, A) == MemberState.DEAD


def test_a_you_are_dead_claim_about_us_is_refuted() -> None:
    p = make(A)
    before = p.incarnation
    p.receive(1.0, A, (Dead(before, ME, A),))
    assert p.incarnation == before + 1
    assert state(p, ME) == MemberState.ALIVE
    assert p.broadcasts.pending_about(ME) == Alive(before + 1, ME)
    # An old accusation (replayed) changes nothing.
    p.receive(2.0, A, (Suspect(before, ME, A), Dead(before, ME, A)))
    assert p.incarnation == before + 1
    assert p.counters.refutations == 1


def test_absurd_incarnations_are_ignored_and_counted() -> None:
    p = make(A)
    p.receive(1.0, B, (Suspect(INCARNATION_JUMP_MAX + 10, ME, B),))
    p.receive(1.0, B, (Alive(INCARNATION_JUMP_MAX + 10, A),))
    p.receive(1.0, B, (Dead(INCARNATION_JUMP_MAX + 10, A, B),))
    assert p.incarnation == 0
    assert state(p, A) == MemberState.ALIVE
    assert p.table.members[A].incarnation == 1
    assert p.counters.absurd_incarnations == 3


def test_leave_is_shown_as_left_not_dead() -> None:
    p = make(A)
    p.receive(1.0, A, (Dead(1, A, A),))
    assert state(p, A) == MemberState.LEFT
    q = make(A, B, C)
    out = q.leave(2.0)
    assert all(Dead(0, ME, ME) in s.messages for s in sends(out)) and sends(out)
    assert q.leave(2.0) == []


def test_probe_ack_clears_and_silence_leads_to_suspicion_then_death() -> None:
    p = make(A, B, C)
    out = p.tick(p.next_probe_at)
    ping = next(m for s in sends(out) for m in s.messages if isinstance(m, Ping))
    target = ping.target
    p.receive(p.next_probe_at, target, (Ack(ping.seq),))
    assert p.probe is None
    # Next round: stay silent; ping-req goes to others, then suspicion.
    now = p.next_probe_at
    out = p.tick(now)
    ping = next(m for s in sends(out) for m in s.messages if isinstance(m, Ping))
    out = p.tick(now + LAN.probe_timeout_s)
    indirect = [s for s in sends(out) if any(isinstance(m, IndirectPing) for m in s.messages)]
    assert indirect and all(s.to != ping.target for s in indirect)
    p.tick(now + LAN.probe_interval_s)
    assert state(p, ping.target) == MemberState.SUSPECT
    # With no confirmations it takes the longest timeout to die.
    deadline = p.suspicions[ping.target].deadline
    assert deadline - (now + LAN.probe_interval_s) == p.suspicions[ping.target].max_s
    p.tick(deadline)
    assert state(p, ping.target) == MemberState.DEAD


def test_indirect_ping_forwards_ack_or_nacks() -> None:
    p = make(A, B)
    out = p.receive(0.0, A, (IndirectPing(77, B, A, True),))
    ping = sends(out)[0]
    assert ping.to == B
    relay_seq = next(m for m in ping.messages if isinstance(m, Ping)).seq
    out = p.receive(0.1, B, (Ack(relay_seq),))
    assert [s.to for s in sends(out)] == [A] and Ack(77) in sends(out)[0].messages
    p.receive(0.2, A, (IndirectPing(78, B, A, True),))
    out = p.tick(0.2 + LAN.probe_timeout_s)
    assert any(Nack(78) in s.messages for s in sends(out))


def test_misrouted_ping_is_not_acked() -> None:
    p = make(A)
    assert p.receive(0.0, A, (Ping(1, "10.9.9.9:1"),)) == []
    assert p.counters.misrouted == 1


def test_buddy_system_tells_a_suspect_in_the_probe() -> None:
    p = make(A)
    p.receive(0.0, B, (Suspect(1, A, B),))
    out = p.tick(p.next_probe_at)
    probe = next(s for s in sends(out) if s.to == A)
    assert any(isinstance(m, Suspect) and m.node == A for m in probe.messages)


def test_join_through_seeds_retries_with_backoff_then_merges() -> None:
    p = Protocol(ME, LAN, random.Random(1), 0.0, seeds=(A, B))
    out = p.tick(0.0)
    assert {o.target for o in out if isinstance(o, PushPull)} == {A, B}
    p.push_pull_done(0.5, A, None)
    p.push_pull_done(0.5, B, None)
    assert not p.exchanges.joined and p.exchanges.next_join_at == 0.5 + LAN.join_retry_initial_s
    out = p.tick(p.exchanges.next_join_at)
    pushes = [o for o in out if isinstance(o, PushPull)]
    assert len(pushes) == 2 and all(o.state.join for o in pushes)
    remote, _ = make(C).push_pull_reply(2.0, pushes[0].state)
    p.push_pull_done(2.0, A, remote)
    assert p.exchanges.joined
    assert state(p, C) == MemberState.ALIVE


def test_push_pull_dead_is_only_suspected_and_left_is_left() -> None:
    p = make(A, B)
    remote = make(A, B, C)
    remote.receive(0.0, C, (Dead(1, A, C), Dead(1, B, B)))
    reply, _ = remote.push_pull_reply(1.0, p.local_state())
    p.push_pull_done(1.0, remote.local, reply)
    assert state(p, A) == MemberState.SUSPECT
    assert state(p, B) == MemberState.LEFT


def test_meta_update_is_a_new_digest_gossiped_apart_from_membership() -> None:
    p = make(A)
    meta = PeerMeta(PeerLoad(2, 0, 1), BUNDLES, "1")
    before = p.sections.digest
    p.update_meta(1.0, meta)
    assert p.incarnation == 0  # membership untouched
    digest = p.sections.digest
    assert digest.newer_than(before)
    assert p.meta_broadcasts.pending_about(ME) == Meta(ME, digest)
    out = p.tick(p.next_gossip_at)
    assert any(Meta(ME, digest) in s.messages for s in sends(out))
    assert all(s.size_bytes <= LAN.datagram_bytes_max for s in sends(out))


def test_a_new_digest_is_taken_then_its_large_sections_fetched_and_served() -> None:
    owner = Protocol(A, LAN, random.Random(2), 0.0, meta=PeerMeta(PeerLoad(5, 1, 0), BUNDLES, "2"))
    p = make(A)
    out = p.receive(1.0, A, (Meta(A, owner.sections.digest),))
    assert MetaChanged(A, owner.sections.digest) in out
    # Load and version ride inline: known at once; bundles once fetched.
    meta = p.full_meta(A)
    assert meta is not None and meta.load == PeerLoad(5, 1, 0) and meta.bundles == ()
    fetches = p.tick(p.fetched.next_deadline())
    fetch = next(o for o in fetches if isinstance(o, FetchSection))
    assert fetch.node == A and fetch.section == SectionId.BUNDLES
    content = owner.section_content(fetch.section)
    assert p.section_fetched(2.0, fetch, content)
    meta = p.full_meta(A)
    assert meta is not None and meta.bundles == BUNDLES
    # An older digest (a replay, a slow rumour) changes nothing.
    assert p.receive(3.0, B, (Meta(A, MetaDigest(0, 0)),)) == []


def test_a_digest_of_ours_newer_than_ours_is_outbid() -> None:
    p = make(A)
    stale = MetaDigest(p.incarnation + 2, 50)
    p.receive(1.0, A, (Meta(ME, stale),))
    assert p.incarnation > stale.incarnation
    assert p.sections.digest.newer_than(stale)


def test_summary_push_pull_sends_only_a_hash_when_tables_agree() -> None:
    p = make(A, B)
    other = Protocol(C, LAN, random.Random(3), 0.0)
    other.receive(0.0, A, (Alive(1, A), Alive(1, B), Alive(0, ME)))
    reply, _ = other.push_pull_reply(1.0, p.local_state(summary=True))
    assert not reply.summary and len(reply.members) == 4  # the hashes differ: their table
    p.exchanges.summaries.add(C)
    out = p.push_pull_done(1.0, C, reply)
    assert state(p, C) == MemberState.ALIVE
    # They lack our metadata digest: ours follows as a full exchange, and then both agree.
    push = next(o for o in out if isinstance(o, PushPull))
    assert push.target == C and not push.state.summary
    other.push_pull_reply(1.1, push.state)
    assert other.table.hash == p.table.hash
    reply, _ = other.push_pull_reply(2.0, p.local_state(summary=True))
    assert reply.summary and reply.members == ()
    assert p.push_pull_done(2.0, C, reply) == []


def test_members_learned_from_a_table_are_not_gossiped_on_but_its_owner_is() -> None:
    p = make()
    remote = make(A, B, C)
    reply, _ = remote.push_pull_reply(0.0, p.local_state())
    p.push_pull_done(0.0, remote.local, reply)
    assert {A, B, C, remote.local} <= set(p.table.members)
    assert p.broadcasts.pending_about(A) is None
    assert p.broadcasts.pending_about(remote.local) is not None


def test_a_newcomer_keeps_exchanging_tables_fast_after_joining() -> None:
    p = Protocol(ME, LAN, random.Random(1), 0.0, seeds=(A,))
    join = next(o for o in p.tick(0.0) if isinstance(o, PushPull))
    seed = make(B, C)
    seed.local = A
    reply, _ = seed.push_pull_reply(0.0, join.state)
    p.push_pull_done(0.1, A, reply)
    assert p.exchanges.joined and p.exchanges.next_fast_sync_at <= 0.1 + LAN.fast_sync_interval_s
    syncs = 0
    now = p.exchanges.next_fast_sync_at
    while now < 10.0:
        syncs += sum(isinstance(o, PushPull) for o in p.tick(now))
        now = min(p.next_deadline(), 10.0)
    assert syncs >= LAN.join_syncs_min
    assert p.exchanges.next_fast_sync_at == float(
        "inf"
    )  # nothing more learned: back to the slow pace


def test_a_failed_probe_of_a_suspect_confirms_the_suspicion() -> None:
    p = make(A, B, C)
    p.receive(0.0, B, (Suspect(1, A, B),))
    suspicion = p.suspicions[A]
    assert suspicion.confirmations == 0
    before = suspicion.deadline
    # Probe until the round reaches A, and let that probe fail.
    now = 0.0
    for _ in range(10):
        now = p.next_probe_at
        out = p.tick(now)
        if any(isinstance(m, Ping) and m.target == A for s in sends(out) for m in s.messages):
            break
        p.probe = None
    p.tick(now + LAN.probe_timeout_s)
    p.tick(now + LAN.probe_interval_s)
    assert suspicion.confirmations == 1
    assert suspicion.deadline < before
    assert p.counters.suspicions == 0  # A was suspect already: no new suspicion


def test_a_lone_suspicion_is_probed_before_it_runs_out_and_a_refuted_suspect_answers() -> None:
    p = make(A, B, C)
    a = Protocol(A, LAN, random.Random(5), 0.0)
    a.receive(0.0, B, (Suspect(0, A, B),))  # A refuted already: incarnation 1
    assert a.incarnation == 1
    p.receive(1.0, B, (Suspect(1, A, B),))
    suspicion = p.suspicions[A]
    # Nobody confirms it; shortly before it runs out, we probe A ourselves, first in line.
    now = suspicion.deadline - 2 * LAN.probe_interval_s
    p.probe = None
    p.next_probe_at = now + 0.5
    assert p.next_deadline() <= now
    p.tick(now)
    out = p.tick(p.next_probe_at)
    ping = next(s for s in sends(out) if s.to == A)
    assert any(isinstance(m, Suspect) and m.node == A for m in ping.messages)
    # A hears the stale accusation inside the ping and answers at once with its Alive.
    answer = a.receive(now + 0.6, ME, ping.messages)
    alive = [m for s in sends(answer) for m in s.messages if isinstance(m, Alive) and m.node == A]
    assert alive
    p.receive(now + 0.61, A, tuple(alive))
    assert state(p, A) == MemberState.ALIVE and A not in p.suspicions
