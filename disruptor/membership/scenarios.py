"""Standard simulated scenarios, shared by the tests (small N) and the benchmarks (large N).

Each function builds a cluster in the ``Simulator``, applies one kind of trouble and returns
plain figures (times in virtual seconds, counts); the caller decides what to assert or print.
Rule: every scenario is a pure function of its arguments, seed included.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .messages import MemberState
from .meta import PeerLoad, PeerMeta
from .protocol import MemberChanged, MetaChanged
from .settings import MembershipSettings
from .simulator import Network, Simulator


def peer_name(i: int) -> str:
    return f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}:1111"


def sweep_interval_s(n: int) -> float:
    """How often a run of ``n`` peers checks every invariant over every table (an O(N^2) pass;
    every event checks what it changed in any case)."""
    return 1.0 if n <= 64 else 30.0 if n <= 1000 else 600.0


def start_cluster(
    n: int,
    seed: int,
    config: MembershipSettings,
    network: Network | None = None,
    seal: bool = False,
    prejoined: bool = False,
) -> Simulator:
    """``n`` peers started at once, every one seeded with the first; run until they converge.
    ``prejoined`` starts them knowing each other already (large N: skips the join storm)."""
    sim = Simulator(seed, config, network, seal=seal)
    if prejoined:
        sim.add_converged([peer_name(i) for i in range(n)])
    else:
        sim.add_peer(peer_name(0))
        for i in range(1, n):
            sim.add_peer(peer_name(i), seeds=[peer_name(0)])
    sim.sweep_interval_s = sweep_interval_s(n)
    if not sim.run_until(sim.now + 120.0, sim.converged, stop_check_s=0.05):
        raise sim.fail(f"{n} peers did not converge within 120 s")
    return sim


@dataclass
class ConvergeResult:
    n: int
    join_s: float
    # Gossip rounds until every peer listed each newcomer, one entry per newcomer.
    newcomer_rounds: list[float] = field(default_factory=list)


def converge(
    n: int, seed: int, config: MembershipSettings, newcomers: int = 5, prejoined: bool = False
) -> ConvergeResult:
    """Start ``n`` peers through one seed, then add newcomers one by one through a random peer."""
    sim = start_cluster(n - 1, seed, config, prejoined=prejoined)
    result = ConvergeResult(n, sim.now)
    rng = random.Random(seed)  # noqa: S311 - simulation
    for j in range(newcomers):
        name = f"192.168.{j // 250}.{j % 250 + 1}:1111"
        via = rng.choice([p.name for p in sim.running()])
        started = sim.now
        sim.add_peer(name, seeds=[via])
        known = lambda name=name: sim.all_know(name)  # noqa: E731
        if not sim.run_until(started + 60.0, known, stop_check_s=0.01):
            raise sim.fail(f"newcomer {name} not known by all within 60 s")
        result.newcomer_rounds.append((sim.now - started) / config.gossip_interval_s)
        # Let the newcomer's rumours settle before the next one, so rounds do not overlap.
        sim.run_until(sim.now + 5.0)
    return result


@dataclass
class JoinResult:
    n: int
    # Virtual seconds from the first start until every peer lists every other as alive, and from
    # the last peer's start.
    converged_s: float
    after_last_start_s: float
    gossip_interval_s: float

    @property
    def rounds(self) -> float:
        return self.converged_s / self.gossip_interval_s


def join_through_one_seed(
    n: int, seed: int, config: MembershipSettings, spread_s: float = 1.0, limit_s: float = 300.0
) -> JoinResult:
    """Start ``n`` peers, all pointed at the same single seed (peer 0, started at t = 0; the
    others at seeded random times within ``spread_s``); time full convergence."""
    sim = Simulator(seed, config)
    rng = random.Random(seed ^ 0x101)  # noqa: S311 - simulation
    seed_name = peer_name(0)
    sim.add_peer(seed_name)
    starts = sorted(rng.uniform(0.0, spread_s) for _ in range(1, n))

    def starter(name: str) -> Callable[[], None]:
        def start() -> None:
            sim.add_peer(name, seeds=[seed_name])

        return start

    for i, at in enumerate(starts, start=1):
        sim.at(at, starter(peer_name(i)))
    sim.sweep_interval_s = sweep_interval_s(n)

    def everyone() -> bool:
        return len(sim.peers) == n and sim.converged()

    if not sim.run_until(limit_s, everyone, stop_check_s=0.05):
        raise sim.fail(f"{n} peers joining through one seed did not converge within {limit_s} s")
    last = starts[-1] if starts else 0.0
    return JoinResult(n, sim.now, sim.now - last, config.gossip_interval_s)


def chain_join(
    n: int, seed: int, config: MembershipSettings, spread_s: float = 1.0, limit_s: float = 120.0
) -> JoinResult:
    """Start ``n`` peers at seeded random times within ``spread_s``, each naming the peer started
    before it as its only seed (the first names none); time until every peer lists every other
    as alive. A peer whose seed is not up yet retries its join with backoff."""
    sim = Simulator(seed, config)
    rng = random.Random(seed ^ 0xC4A1)  # noqa: S311 - simulation
    starts = sorted(rng.uniform(0.0, spread_s) for _ in range(n))

    def starter(i: int) -> Callable[[], None]:
        def start() -> None:
            sim.add_peer(peer_name(i), seeds=[peer_name(i - 1)] if i else [])

        return start

    for i, at in enumerate(starts):
        sim.at(at, starter(i))

    def everyone() -> bool:
        return len(sim.peers) == n and sim.converged()

    if not sim.run_until(limit_s, everyone, stop_check_s=0.02):
        raise sim.fail(f"{n} chain-seeded peers did not converge within {limit_s} s")
    return JoinResult(n, sim.now, sim.now - starts[-1], config.gossip_interval_s)


@dataclass
class FreshnessResult:
    # Of the metadata updates published, the share each observer held before the next one
    # replaced it, over all (update, observer) pairs.
    updates_seen: float
    # The share of (observer, peer) views holding the peer's current metadata, sampled.
    views_current: float
    updates: int
    bytes_per_peer_s: float


def freshness(
    n: int,
    seed: int,
    config: MembershipSettings,
    bundles: int = 16,
    change_every_s: float = 2.0,
    duration_s: float = 60.0,
) -> FreshnessResult:
    """A settled cluster whose every peer holds ``bundles`` bundles and changes its load every
    ``change_every_s`` (at its own phase): how current are the views of each other's metadata?"""
    rng = random.Random(seed ^ 0xF2E5)  # noqa: S311 - simulation
    names = [peer_name(i) for i in range(n)]
    held = {
        name: tuple(sorted(f"{rng.getrandbits(160):040x}" for _ in range(bundles)))
        for name in names
    }
    sim = Simulator(seed, config)
    for name in names:
        sim.add_peer(
            name, seeds=[names[0]] if name != names[0] else [], meta=PeerMeta(bundles=held[name])
        )
    if not sim.run_until(120.0, sim.converged, stop_check_s=0.05):
        raise sim.fail("the cluster did not converge")
    sim.run_until(sim.now + 10.0)  # first fetches of everyone's bundles
    # (node, seq) of each peer's current digest, and who has seen it so far.
    seen: dict[str, set[str]] = {}
    totals = {"published": 0, "delivered": 0}

    def on_meta(observer: str, change: MetaChanged, at: float) -> None:
        owner = sim.peers[change.node].protocol
        watchers = seen.get(change.node)
        if watchers is None or observer in watchers:
            return
        if change.digest is owner.sections.digest:
            fetched = sim.peers[observer].protocol.fetched
            if fetched.current(change.node, change.digest):
                watchers.add(observer)

    sim.meta_listeners.append(on_meta)

    def changer(name: str) -> Callable[[], None]:
        def change() -> None:
            peer = sim.peers[name]
            totals["delivered"] += len(seen.get(name, ()))
            load = PeerLoad(rng.randrange(1000), rng.randrange(1000), rng.randrange(64))
            peer.protocol.update_meta(sim.now, PeerMeta(load, held[name], ""))
            sim.reschedule(peer)
            totals["published"] += n - 1
            seen[name] = set()

        return change

    start = sim.now
    for name in names:
        when = start + rng.uniform(0, change_every_s)
        while when < start + duration_s:
            sim.at(when, changer(name))
            when += change_every_s
    samples: list[float] = []
    bytes_before = sum(p.bytes_sent + p.sync_bytes_sent for p in sim.peers.values())
    t = start + change_every_s
    while t < start + duration_s:
        sim.run_until(t)
        current = 0
        for observer in sim.peers.values():
            for name in names:
                if name != observer.name:
                    digest = sim.peers[name].protocol.sections.digest
                    member = observer.protocol.table.members.get(name)
                    if member is not None and member.meta is digest:
                        current += observer.protocol.fetched.current(name, digest)
        samples.append(current / (n * (n - 1)))
        t += 0.5
    sim.run_until(start + duration_s)
    sent = sum(p.bytes_sent + p.sync_bytes_sent for p in sim.peers.values()) - bytes_before
    # Updates still current at the end are not counted: their window was cut short.
    published = totals["published"]
    return FreshnessResult(
        totals["delivered"] / max(1, published - sum((n - 1) for _ in seen)),
        sum(samples) / len(samples),
        published // max(1, n - 1),
        sent / n / duration_s,
    )


@dataclass
class CrashResult:
    first_suspicion_s: float
    all_dead_s: float
    # The suspicion formula's longest timeout for this N (no confirmations) plus one probe period.
    bound_s: float


def crash(n: int, seed: int, config: MembershipSettings, prejoined: bool = False) -> CrashResult:
    """Crash one peer of a settled cluster; time the first suspicion and the last dead mark."""
    sim = start_cluster(n, seed, config, prejoined=prejoined)
    return crash_in(sim, seed)


def crash_in(sim: Simulator, seed: int) -> CrashResult:
    """Crash one peer (chosen by ``seed``) of the settled cluster ``sim``; time the first
    suspicion and the last dead mark."""
    from .suspicion import suspicion_timeout_s

    config = sim.config
    sim.run_until(sim.now + 3 * config.probe_interval_s)
    victim_rng = random.Random(seed)  # noqa: S311 - simulation
    victim = victim_rng.choice([p.name for p in sim.running()][1:])
    first: list[float] = []

    def listen(observer: str, change: MemberChanged, at: float) -> None:
        if change.node == victim and change.new == MemberState.SUSPECT and not first:
            first.append(at)

    sim.listeners.append(listen)
    crashed_at = sim.now
    sim.crash(victim)
    n = len(sim.peers)
    min_s = suspicion_timeout_s(config.suspicion_mult, n, config.probe_interval_s)
    max_s = min_s * (config.suspicion_max_timeout_mult if config.lifeguard else 1)
    if not sim.run_until(crashed_at + 120.0, lambda: sim.all_know(victim, MemberState.DEAD)):
        raise sim.fail(f"crashed {victim} not marked dead by all within 120 s")
    sim.listeners.remove(listen)
    return CrashResult(
        first[0] - crashed_at if first else float("inf"),
        sim.now - crashed_at,
        max_s + config.probe_interval_s,
    )


def crash_many(n: int, seed: int, config: MembershipSettings, victims: int = 3) -> float:
    """Crash ``victims`` peers of a settled cluster of ``n`` at once; the virtual seconds until
    every survivor lists every one of them as dead."""
    sim = start_cluster(n, seed, config)
    sim.run_until(sim.now + 3 * config.probe_interval_s)
    rng = random.Random(seed)  # noqa: S311 - simulation
    chosen = rng.sample([p.name for p in sim.running()][1:], victims)
    crashed_at = sim.now
    for name in chosen:
        sim.crash(name)

    def all_dead() -> bool:
        return all(sim.all_know(v, MemberState.DEAD) for v in chosen)

    if not sim.run_until(crashed_at + 120.0, all_dead):
        raise sim.fail(f"{chosen} not marked dead by every survivor within 120 s")
    return sim.now - crashed_at


@dataclass
class TroubleResult:
    false_deaths: int
    # (observer, node) pairs, for the report.
    examples: list[tuple[str, str]]
    bytes_per_peer_s: float


def lossy(
    n: int, seed: int, config: MembershipSettings, loss: float, duration_s: float
) -> TroubleResult:
    """Run a settled cluster on a network losing ``loss`` of its datagrams; count false deaths."""
    sim = start_cluster(n, seed, config)
    sim.network = replace(sim.network, loss=loss)
    sim.run_until(sim.now + duration_s)
    return _trouble(sim, duration_s)


def stalls(
    n: int,
    seed: int,
    config: MembershipSettings,
    duration_s: float,
    stressed: int = 4,
    stall_min_s: float = 0.5,
    stall_max_s: float = 3.0,
    gap_mean_s: float = 2.0,
    receive_only: bool = False,
) -> TroubleResult:
    """Block the loops of a few stressed peers for 0.5-3 s now and then (gaps exponential with
    ``gap_mean_s``); count the other, healthy, peers wrongly declared dead by anyone."""
    sim = start_cluster(n, seed, config)
    rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - simulation
    end = sim.now + duration_s
    names = [p.name for p in sim.running()]
    slow = rng.sample(names, stressed)
    for name in slow:
        when = sim.now + rng.uniform(0, gap_mean_s)
        while when < end:
            length = rng.uniform(stall_min_s, stall_max_s)
            sim.at(when, lambda name=name, length=length: sim.stall(name, length, receive_only))  # type: ignore[misc]
            when += length + rng.expovariate(1.0 / gap_mean_s)
    sim.run_until(end)
    return _trouble(sim, duration_s, exclude=set(slow))


def _trouble(sim: Simulator, duration_s: float, exclude: set[str] | None = None) -> TroubleResult:
    false = [d for d in sim.deaths if d.healthy and d.node not in (exclude or set())]
    sent = sum(p.bytes_sent for p in sim.peers.values())
    return TroubleResult(
        len(false), [(d.observer, d.node) for d in false[:5]], sent / len(sim.peers) / duration_s
    )


@dataclass
class PartitionResult:
    split_s: float
    heal_s: float
    push_pull_interval_s: float


def partition(n: int, seed: int, config: MembershipSettings, split_for_s: float) -> PartitionResult:
    """Cut the cluster in two until each side marks the other dead, heal, time one view again."""
    sim = start_cluster(n, seed, config)
    names = [p.name for p in sim.running()]
    left, right = names[: n // 2], names[n // 2 :]
    sim.partition(left, right)
    cut_at = sim.now

    def split() -> bool:
        return all(
            sim.peers[a].protocol.table.members[b].state == MemberState.DEAD
            and sim.peers[b].protocol.table.members[a].state == MemberState.DEAD
            for a in left
            for b in right
        )

    if not sim.run_until(cut_at + split_for_s + 120.0, split):
        raise sim.fail("the two sides did not mark each other dead")
    split_s = sim.now - cut_at
    sim.run_until(cut_at + split_for_s)
    sim.heal()
    healed_at = sim.now
    if not sim.run_until(healed_at + 300.0, sim.converged, stop_check_s=0.1):
        raise sim.fail("no single view within 300 s of healing")
    return PartitionResult(split_s, sim.now - healed_at, config.push_pull_interval_s)


@dataclass
class TrafficResult:
    # Bytes sent per peer per second: gossip datagrams, and push-pull bodies over HTTP.
    datagram_bytes_per_s: float
    sync_bytes_per_s: float
    datagrams_per_s: float = 0.0

    @property
    def total_bytes_per_s(self) -> float:
        return self.datagram_bytes_per_s + self.sync_bytes_per_s


def traffic(
    n: int, seed: int, config: MembershipSettings, duration_s: float, prejoined: bool = False
) -> TrafficResult:
    """Membership bytes sent per peer per second by a settled cluster of ``n``."""
    return traffic_of(start_cluster(n, seed, config, prejoined=prejoined), duration_s)


def traffic_of(sim: Simulator, duration_s: float, settle_s: float = 30.0) -> TrafficResult:
    """Membership bytes sent per peer per second by the settled cluster ``sim``."""
    sim.count_sync_bytes = True
    sim.run_until(sim.now + settle_s)
    peers = sim.peers.values()
    n = len(sim.peers)
    udp_before = sum(p.bytes_sent for p in peers)
    sync_before = sum(p.sync_bytes_sent for p in peers)
    packets_before = sum(p.packets_sent for p in peers)
    sim.run_until(sim.now + duration_s)
    udp = sum(p.bytes_sent for p in peers) - udp_before
    sync = sum(p.sync_bytes_sent for p in peers) - sync_before
    packets = sum(p.packets_sent for p in peers) - packets_before
    sim.count_sync_bytes = False
    return TrafficResult(udp / n / duration_s, sync / n / duration_s, packets / n / duration_s)
