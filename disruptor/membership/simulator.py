"""Many peers running the real protocol core on a virtual clock and an in-memory network.

The network loses, delays and duplicates datagrams with seeded randomness, and can be cut into
partitions; peers can be crashed (silent for good) or stalled: either the whole loop is blocked
(datagrams queue up, timers fire late, and on waking the overdue timers run before the queued
datagrams, the worst order for a slow peer), or only the receive path is (timers run on time but
datagrams wait, as in a CPU-starved peer: Lifeguard's "slow message processing"). Push-pull goes
over a simulated reliable connection that fails across a partition or to a crashed peer. Invariants
are checked after every event; any failure names the seed, and the same seed replays the same run
exactly.

Rule: one ``random.Random(seed)`` drives everything (each peer gets its own generator derived from
it), and virtual time only moves forward by events, so a run is a pure function of its seed.
"""

from __future__ import annotations

import gc
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .codec import Keyring, decode_packet, encode_packet, encode_sync
from .members import Member, row_hash
from .messages import MemberState, Message, Packet, SyncState
from .meta import PeerMeta
from .protocol import MemberChanged, MetaChanged, Output, Protocol, PushPull, Send
from .sections import FetchSection
from .settings import MembershipSettings


class SimulationFailure(AssertionError):
    """An invariant broke; the message names the seed that replays it."""


@dataclass(frozen=True)
class Network:
    loss: float = 0.0
    delay_min_s: float = 0.0005
    delay_max_s: float = 0.005
    duplicate: float = 0.0
    # Round trip of a push-pull over HTTP, and how long a failed one takes to fail.
    push_pull_rtt_s: float = 0.01


@dataclass
class SimPeer:
    name: str
    protocol: Protocol
    crashed: bool = False
    stalled_until: float = 0.0
    # A stall of the receive path only: timers run, datagrams wait (a CPU-starved peer).
    stall_receive_only: bool = False
    backlog: list[tuple[str, tuple[Message, ...]]] = field(default_factory=list)
    wake_at: float = float("inf")
    wake_version: int = 0
    bytes_sent: int = 0
    packets_sent: int = 0
    # Push-pull bodies this peer sent (requests it made, replies it served), bytes.
    sync_bytes_sent: int = 0


@dataclass(frozen=True)
class DeathRecord:
    """A peer marked dead by ``observer`` at ``at`` (``healthy`` if it was not crashed)."""

    observer: str
    node: str
    at: float
    healthy: bool


class Simulator:
    def __init__(
        self,
        seed: int,
        config: MembershipSettings,
        network: Network | None = None,
        seal: bool = False,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - simulation
        self.config = config
        self.network = network or Network()
        self.now = 0.0
        self.peers: dict[str, SimPeer] = {}
        self._events: list[tuple[float, int, str, Any]] = []
        self._counter = 0
        self._groups: dict[str, int] | None = None
        self._keyring = Keyring("sim", b"simulated cluster secret") if seal else None
        self.deaths: list[DeathRecord] = []
        self.listeners: list[Callable[[str, MemberChanged, float], None]] = []
        self.meta_listeners: list[Callable[[str, MetaChanged, float], None]] = []
        self.events_processed = 0
        # Encoding every push-pull body just to count it costs time; only traffic runs want it.
        self.count_sync_bytes = False
        self.left: set[str] = set()
        # Full invariant sweeps cost O(N^2); per-event checks cover what each event changed.
        self.sweep_interval_s = 1.0 if len(self.peers) < 100 else 10.0
        self._next_sweep_at = 0.0

    # --- scenario controls ---

    def add_peer(
        self, name: str, seeds: Iterable[str] = (), meta: PeerMeta | None = None
    ) -> SimPeer:
        rng = random.Random(self.rng.getrandbits(64))  # noqa: S311 - simulation
        protocol = Protocol(name, self.config, rng, self.now, meta, tuple(seeds))
        peer = SimPeer(name, protocol)
        self.peers[name] = peer
        self._reschedule(peer)
        return peer

    def add_converged(self, names: list[str]) -> None:
        """Add peers that already know each other, as if their joins had completed (for large
        N, where replaying N joins would cost O(N^2 log N) simulated rumours first)."""
        for name in names:
            self.add_peer(name)
        digests = {n: self.peers[n].protocol.sections.digest for n in names}
        # Every table ends up the same rows, so the same hash: computed once.
        table_hash = 0
        for n in names:
            table_hash ^= row_hash(Member(n, 0, MemberState.ALIVE, self.now, digests[n]))
        for name in names:
            protocol = self.peers[name].protocol
            now = self.now
            alive = MemberState.ALIVE
            others = [Member(n, 0, alive, now, digests[n]) for n in names if n != name]
            protocol.table.add_many(others, protocol.rng, table_hash)
            # Everyone holds everyone's metadata already: nothing left to spread about it.
            protocol.meta_broadcasts = type(protocol.meta_broadcasts)(
                self.config.retransmit_mult,
                self.config.broadcast_queue_max,
                self.config.retransmit_base,
            )
            self._reschedule(self.peers[name])

    def crash(self, name: str) -> None:
        self.peers[name].crashed = True

    def stall(self, name: str, duration_s: float, receive_only: bool = False) -> None:
        """Block ``name``'s loop (or only its receive path) for ``duration_s``."""
        peer = self.peers[name]
        if peer.crashed or peer.stalled_until > self.now:
            return
        peer.stalled_until = self.now + duration_s
        peer.stall_receive_only = receive_only
        self._push(peer.stalled_until, "unstall", name)

    def leave(self, name: str) -> None:
        peer = self.peers[name]
        self.left.add(name)
        self._process(peer, peer.protocol.leave(self.now))
        self._reschedule(peer)

    def partition(self, *groups: Iterable[str]) -> None:
        self._groups = {name: i for i, group in enumerate(groups) for name in group}

    def heal(self) -> None:
        self._groups = None

    def at(self, time_s: float, action: Callable[[], None]) -> None:
        self._push(time_s, "call", action)

    # --- running ---

    def run_until(
        self, time_s: float, stop: Callable[[], bool] | None = None, stop_check_s: float = 0.02
    ) -> bool:
        """Process events up to ``time_s``; stop early (returning True) once ``stop()`` holds.

        ``stop`` is evaluated at most every ``stop_check_s`` of virtual time (it may be costly),
        so times measured with it are accurate to that step.
        """
        next_check = self.now
        # The cyclic garbage collector is paused while events run: the simulation makes no
        # cycles, and at 10,000 peers its full passes over 10^8 table rows cost more than the
        # simulation itself. Reference counting still frees everything.
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._run(time_s, stop, stop_check_s, next_check)
        finally:
            if paused:
                gc.enable()

    def _run(
        self,
        time_s: float,
        stop: Callable[[], bool] | None,
        stop_check_s: float,
        next_check: float,
    ) -> bool:
        while self._events and self._events[0][0] <= time_s:
            when, _, kind, payload = heapq.heappop(self._events)
            self.now = max(self.now, when)
            self._dispatch(kind, payload)
            self.events_processed += 1
            if stop is not None and self.now >= next_check:
                next_check = self.now + stop_check_s
                if stop():
                    return True
        self.now = max(self.now, time_s)
        return stop() if stop is not None else False

    def view(self, name: str) -> dict[str, MemberState]:
        return {n: m.state for n, m in self.peers[name].protocol.table.members.items()}

    def running(self) -> list[SimPeer]:
        return [p for p in self.peers.values() if not p.crashed and p.name not in self.left]

    def all_know(self, node: str, state: MemberState = MemberState.ALIVE) -> bool:
        """Every running peer (other than ``node``) lists ``node`` in ``state``."""
        return all(
            p.protocol.table.members.get(node) is not None
            and p.protocol.table.members[node].state == state
            for p in self.running()
            if p.name != node
        )

    def converged(self) -> bool:
        """Every running peer lists every other running peer as alive."""
        running = self.running()
        if len(running) == len(self.peers):
            # Nobody crashed or left: every table must hold exactly everyone, alive (cheap).
            n = len(running)
            return all(
                p.protocol.table.alive_count() == n == len(p.protocol.table) for p in running
            )
        return all(self.all_know(p.name) for p in running)

    def fail(self, message: str) -> SimulationFailure:
        return SimulationFailure(f"{message} (seed {self.seed}, t={self.now:.3f}s; replay with it)")

    # --- internals ---

    def _push(self, when: float, kind: str, payload: Any) -> None:
        self._counter += 1
        heapq.heappush(self._events, (when, self._counter, kind, payload))

    def reschedule(self, peer: SimPeer) -> None:
        """Wake ``peer`` at its protocol's next deadline (after a change made from outside)."""
        self._reschedule(peer)

    def _reschedule(self, peer: SimPeer) -> None:
        deadline = max(self.now, peer.protocol.next_deadline())
        if deadline != peer.wake_at:
            peer.wake_at = deadline
            peer.wake_version += 1
            self._push(deadline, "wake", (peer.name, peer.wake_version))

    def _dispatch(self, kind: str, payload: Any) -> None:
        if kind == "call":
            payload()
            return
        if kind == "wake":
            name, version = payload
            peer = self.peers[name]
            if peer.crashed or version != peer.wake_version:
                return
            if self._stalled(peer) and not peer.stall_receive_only:
                return
            peer.wake_at = float("inf")
            self._process(peer, peer.protocol.tick(self.now))
            self._reschedule(peer)
        elif kind == "deliver":
            to, source, messages = payload
            receiver = self.peers.get(to)
            if receiver is None or receiver.crashed:
                return
            if self._stalled(receiver):
                receiver.backlog.append((source, messages))
                return
            self._process(receiver, receiver.protocol.receive(self.now, source, messages))
            self._reschedule(receiver)
        elif kind == "unstall":
            peer = self.peers[payload]
            if peer.crashed or self._stalled(peer):
                return
            self._process(peer, peer.protocol.tick(self.now))
            backlog, peer.backlog = peer.backlog, []
            for source, messages in backlog:
                self._process(peer, peer.protocol.receive(self.now, source, messages))
            peer.wake_at = float("inf")
            self._reschedule(peer)
        elif kind == "push_pull":
            self._serve_push_pull(*payload)
        elif kind == "fetch":
            self._serve_fetch(*payload)
        elif kind == "fetch_done":
            source, fetch, content = payload
            peer = self.peers[source]
            if peer.crashed:
                return
            self._process(peer, peer.protocol.section_fetched(self.now, fetch, content))
            self._reschedule(peer)
        elif kind == "push_pull_done":
            source, target, reply = payload
            peer = self.peers[source]
            if peer.crashed:
                return
            self._process(peer, peer.protocol.push_pull_done(self.now, target, reply))
            self._reschedule(peer)

    def _stalled(self, peer: SimPeer) -> bool:
        return peer.stalled_until > self.now

    def _linked(self, a: str, b: str) -> bool:
        return self._groups is None or self._groups.get(a, -1) == self._groups.get(b, -2)

    def _process(self, peer: SimPeer, outputs: list[Output]) -> None:
        for output in outputs:
            if type(output) is MemberChanged:
                # The most common output by far (a join storm makes N^2): checked first.
                if output.old is None and not self.listeners:
                    # A member new to this peer: only the incarnation invariant applies.
                    self._check_member(peer, output.node)
                    continue
                self._observe(peer.name, output)
                self._check_member(peer, output.node)
            elif isinstance(output, Send):
                self._send(peer, output)
            elif isinstance(output, PushPull):
                if self.count_sync_bytes:
                    peer.sync_bytes_sent += len(encode_sync(output.state))
                rtt = self.network.push_pull_rtt_s
                self._push(
                    self.now + rtt / 2, "push_pull", (peer.name, output.target, output.state)
                )
            elif isinstance(output, FetchSection):
                self._push(
                    self.now + self.network.push_pull_rtt_s / 2, "fetch", (peer.name, output)
                )
            elif isinstance(output, MetaChanged):
                for meta_listener in self.meta_listeners:
                    meta_listener(peer.name, output, self.now)
            else:
                self._observe(peer.name, output)
                self._check_member(peer, output.node)
        me = peer.protocol.table.members[peer.name]
        if peer.name not in self.left and me.state != MemberState.ALIVE:
            raise self.fail(f"{peer.name} lists itself as {me.state.label}")
        if self.now >= self._next_sweep_at:
            self._next_sweep_at = self.now + self.sweep_interval_s
            self.check_all()

    def _send(self, peer: SimPeer, send: Send) -> None:
        if send.size_bytes > self.config.datagram_bytes_max:
            raise self.fail(f"{peer.name} built a {send.size_bytes}-byte datagram")
        peer.bytes_sent += send.size_bytes
        peer.packets_sent += 1
        messages = send.messages
        if self._keyring is not None:
            messages = self._seal_and_open(peer.name, messages)
        if not self._linked(peer.name, send.to):
            return
        copies = 2 if self.rng.random() < self.network.duplicate else 1
        for _ in range(copies):
            if self.rng.random() < self.network.loss:
                continue
            delay = self.rng.uniform(self.network.delay_min_s, self.network.delay_max_s)
            self._push(self.now + delay, "deliver", (send.to, peer.name, messages))

    def _seal_and_open(self, sender: str, messages: tuple[Message, ...]) -> tuple[Message, ...]:
        assert self._keyring is not None
        packet = Packet(sender, 1, self._counter, int(self.now * 1000), messages)
        nonce = self.rng.randbytes(12)
        frame = self._keyring.seal(encode_packet(packet), nonce)
        if len(frame) > self.config.datagram_bytes_max:
            raise self.fail(f"{sender} sealed a {len(frame)}-byte datagram")
        opened = decode_packet(self._keyring.open(frame))
        if opened != packet:
            raise self.fail("codec round trip changed a packet")
        return opened.messages

    def _serve_push_pull(self, source: str, target: str, state: SyncState) -> None:
        peer = self.peers.get(target)
        rtt = self.network.push_pull_rtt_s
        timeout = self.config.push_pull_timeout_s
        if peer is None or peer.crashed or not self._linked(source, target):
            self._push(self.now + timeout, "push_pull_done", (source, target, None))
            return
        if self._stalled(peer):
            if peer.stalled_until - self.now > timeout:
                self._push(self.now + timeout, "push_pull_done", (source, target, None))
                return
            self._push(peer.stalled_until, "push_pull", (source, target, state))
            return
        reply, outputs = peer.protocol.push_pull_reply(self.now, state)
        if self.count_sync_bytes:
            peer.sync_bytes_sent += len(encode_sync(reply))
        self._process(peer, outputs)
        self._reschedule(peer)
        self._push(self.now + rtt / 2, "push_pull_done", (source, target, reply))

    def _serve_fetch(self, source: str, fetch: FetchSection) -> None:
        peer = self.peers.get(fetch.node)
        if peer is None or peer.crashed or not self._linked(source, fetch.node):
            timeout = self.config.push_pull_timeout_s
            self._push(self.now + timeout, "fetch_done", (source, fetch, None))
            return
        content = peer.protocol.section_content(fetch.section)
        peer.sync_bytes_sent += len(content or b"")
        self._push(
            self.now + self.network.push_pull_rtt_s / 2, "fetch_done", (source, fetch, content)
        )

    def _observe(self, observer: str, change: MemberChanged) -> None:
        if change.new == MemberState.DEAD:
            healthy = not self.peers[change.node].crashed if change.node in self.peers else False
            self.deaths.append(DeathRecord(observer, change.node, self.now, healthy))
        if change.new == MemberState.LEFT and change.node not in self.left:
            raise self.fail(f"{observer} marked {change.node} as left, but it never left")
        for listener in self.listeners:
            listener(observer, change, self.now)

    def check_all(self) -> None:
        """Every invariant over every table (run every ``sweep_interval_s`` virtual seconds)."""
        for peer in self.peers.values():
            for node in peer.protocol.table.members:
                self._check_member(peer, node)

    def _check_member(self, peer: SimPeer, node: str) -> None:
        member = peer.protocol.table.members.get(node)
        if member is None:
            return
        owner = self.peers.get(node)
        if owner is None:
            raise self.fail(f"{peer.name} lists {node}, which never existed")
        # Only a peer raises its own incarnation, so nobody may hold a higher one for it.
        if member.incarnation and member.incarnation > owner.protocol.incarnation:
            raise self.fail(
                f"{peer.name} holds incarnation {member.incarnation} for {node}, "
                f"which is only at {owner.protocol.incarnation}"
            )
