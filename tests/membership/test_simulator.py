"""Simulated clusters running the real core: joins, crashes, loss, stalls, partitions, metadata.

Every scenario runs on ``SIM_SEEDS`` seeds (default 3, so CI stays fast; ``SIM_SEEDS=2000 pytest
tests/membership/test_simulator.py`` runs thousands). Every failure names its seed, and
``Simulator(seed, ...)`` (or the scenario called with it) replays the run exactly. Large N lives
in ``benchmarks/bench_membership.py``.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import replace

import pytest

from disruptor.membership.messages import MemberState
from disruptor.membership.scenarios import (
    chain_join,
    converge,
    crash,
    freshness,
    join_through_one_seed,
    lossy,
    partition,
    stalls,
    start_cluster,
    traffic,
)
from disruptor.membership.settings import LAN, LOCAL
from disruptor.membership.simulator import Network, SimulationFailure, Simulator

SIM_SEEDS = int(os.environ.get("SIM_SEEDS", "3"))
SEEDS = list(range(1, SIM_SEEDS + 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_newcomers_are_known_by_all_within_ten_rounds(seed: int) -> None:
    for n in (8, 32):
        result = converge(n, seed, LAN, newcomers=4)
        assert max(result.newcomer_rounds) <= 10, f"seed {seed}, N = {n}: {result}"


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_seeded_join_converges_within_ten_rounds_of_the_last_start(seed: int) -> None:
    # Each of 16 peers names the one started before it: a newcomer must know all, and be known
    # by all, within a few rounds every time, not only at the median.
    result = chain_join(16, seed, LAN)
    rounds = result.after_last_start_s / LAN.gossip_interval_s
    assert rounds <= 10, f"seed {seed}: {rounds:.1f} rounds after the last start ({result})"


@pytest.mark.parametrize("seed", SEEDS)
def test_join_storm_through_one_seed_takes_rounds_like_log_n(seed: int) -> None:
    # 64 peers started within one second, all through one seed: 5 rounds of start spread, then
    # a few more (linear in N before: 25 rounds at 256).
    result = join_through_one_seed(64, seed, LAN)
    assert result.rounds <= 12, f"seed {seed}: {result.rounds:.1f} rounds ({result})"


def test_join_storm_of_256_through_one_seed() -> None:
    result = join_through_one_seed(256, 1, LAN)
    assert result.rounds <= 13, f"seed 1: {result.rounds:.1f} rounds ({result})"


def test_the_whole_codec_runs_in_the_loop_on_a_bad_network() -> None:
    net = Network(loss=0.05, duplicate=0.05, delay_max_s=0.05)
    sim = start_cluster(8, 7, LAN, net, seal=True)
    assert sim.converged()


@pytest.mark.parametrize("seed", SEEDS)
def test_crash_is_suspected_within_a_round_and_marked_dead_by_all_within_the_bound(
    seed: int,
) -> None:
    # Every peer probes every other once a round (N - 1 probe intervals), so someone has
    # suspected the crashed peer within one round, every time; its suspicion then runs out.
    result = crash(12, seed, LAN)
    assert result.first_suspicion_s <= 12 * LAN.probe_interval_s, f"seed {seed}: {result}"
    assert result.all_dead_s <= result.first_suspicion_s + result.bound_s, f"seed {seed}: {result}"


def test_crash_is_suspected_within_two_probe_intervals_at_the_median() -> None:
    results = [crash(12, seed, LAN) for seed in range(7)]
    assert statistics.median(r.first_suspicion_s for r in results) <= 2 * LAN.probe_interval_s


def test_graceful_leave_is_left_everywhere() -> None:
    sim = start_cluster(8, 3, LOCAL)
    leaver = next(iter(sim.peers))
    sim.leave(leaver)
    assert sim.run_until(sim.now + 10, lambda: sim.all_know(leaver, MemberState.LEFT))


@pytest.mark.parametrize("seed", SEEDS)
def test_ten_percent_loss_for_ten_minutes_kills_nobody(seed: int) -> None:
    result = lossy(16, seed, LAN, loss=0.10, duration_s=600.0)
    assert result.false_deaths == 0, f"seed {seed}: {result.examples}"


@pytest.mark.parametrize("seed", SEEDS)
def test_stalled_loops_kill_nobody_healthy(seed: int) -> None:
    result = stalls(16, seed, LAN, duration_s=200.0)
    assert result.false_deaths == 0, f"seed {seed}: {result.examples}"


def test_lifeguard_cuts_false_deaths_under_slow_processing_with_default_settings() -> None:
    # The receive path of 4 of 16 peers stalls 0.5-5 s at a time (a CPU-starved peer: its timers
    # fire, the answers to its probes wait), default lan settings: plain SWIM's slow peers accuse
    # healthy ones, which are declared dead; Lifeguard's doubt themselves instead.
    kwargs = {"duration_s": 200.0, "gap_mean_s": 1.0, "receive_only": True, "stall_max_s": 5.0}
    with_lifeguard = stalls(16, 5, LAN, **kwargs).false_deaths  # type: ignore[arg-type]
    without = stalls(16, 5, replace(LAN, lifeguard=False), **kwargs).false_deaths  # type: ignore[arg-type]
    assert with_lifeguard == 0, "seed 5"
    assert without >= 10, f"seed 5: plain SWIM {without}"


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_partition_heals_into_one_view_within_two_push_pull_intervals(seed: int) -> None:
    result = partition(10, seed + 30, LOCAL, split_for_s=60.0)
    assert result.heal_s <= 2 * result.push_pull_interval_s, f"seed {seed + 30}: {result}"


def test_per_peer_traffic_grows_at_most_a_quarter_from_8_to_64() -> None:
    # Datagrams and push-pull bodies both; long enough to average several push-pulls.
    small = traffic(8, 4, LAN, duration_s=240.0)
    large = traffic(64, 4, LAN, duration_s=240.0)
    assert large.total_bytes_per_s <= 1.25 * small.total_bytes_per_s, (small, large)
    assert large.sync_bytes_per_s > 0 and small.sync_bytes_per_s > 0


@pytest.mark.parametrize("seed", SEEDS[:1])
def test_metadata_updates_reach_every_view_before_the_next(seed: int) -> None:
    # 32 peers, 16 bundles each, every load changing every 2 s.
    result = freshness(32, seed, LAN, bundles=16, duration_s=30.0)
    assert result.updates_seen >= 0.95, f"seed {seed}: {result}"


def test_same_seed_same_run_and_failures_name_the_seed() -> None:
    runs = []
    for _ in range(2):
        sim = start_cluster(6, 99, LAN, Network(loss=0.2))
        sim.run_until(sim.now + 20)
        runs.append(
            (sim.now, sim.events_processed, sorted(sim.view(next(iter(sim.peers))).items()))
        )
    assert runs[0] == runs[1]
    sim = Simulator(1234, LAN)
    with pytest.raises(SimulationFailure, match="seed 1234"):
        raise sim.fail("boom")


def test_invariant_checker_catches_an_invented_incarnation() -> None:
    sim = start_cluster(4, 5, LAN)
    a, b = list(sim.peers)[:2]
    sim.peers[a].protocol.table.members[b].incarnation = 10**6
    with pytest.raises(SimulationFailure, match="incarnation"):
        sim.check_all()
