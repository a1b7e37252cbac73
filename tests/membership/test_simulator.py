"""Simulated clusters running the real core: convergence, crashes, loss, stalls, partitions.

Each test runs a handful of seeds; a failure message names the seed, and
``Simulator(seed, ...)`` with it replays the run exactly. Large N lives in
``benchmarks/bench_membership.py``.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest

from disruptor.membership.messages import MemberState
from disruptor.membership.scenarios import (
    converge,
    crash,
    lossy,
    partition,
    stalls,
    start_cluster,
    traffic,
)
from disruptor.membership.settings import LAN, LOCAL
from disruptor.membership.simulator import Network, SimulationFailure, Simulator

SEEDS = [1, 2, 3]


@pytest.mark.parametrize("seed", SEEDS)
def test_newcomers_are_known_by_all_within_ten_rounds(seed: int) -> None:
    for n in (8, 32):
        result = converge(n, seed, LAN, newcomers=4)
        assert max(result.newcomer_rounds) <= 10, (seed, n, result)


def test_the_whole_codec_runs_in_the_loop_on_a_bad_network() -> None:
    net = Network(loss=0.05, duplicate=0.05, delay_max_s=0.05)
    sim = start_cluster(8, 7, LAN, net, seal=True)
    assert sim.converged()


def test_crash_is_suspected_fast_and_marked_dead_by_all_within_the_bound() -> None:
    results = [crash(12, seed, LAN) for seed in range(7)]
    assert statistics.median(r.first_suspicion_s for r in results) <= 2 * LAN.probe_interval_s
    for r in results:
        assert r.all_dead_s <= r.first_suspicion_s + r.bound_s, r


def test_graceful_leave_is_left_everywhere() -> None:
    sim = start_cluster(8, 3, LOCAL)
    leaver = next(iter(sim.peers))
    sim.leave(leaver)
    assert sim.run_until(sim.now + 10, lambda: sim.all_know(leaver, MemberState.LEFT))


@pytest.mark.parametrize("seed", [12])
def test_ten_percent_loss_for_ten_minutes_kills_nobody(seed: int) -> None:
    result = lossy(16, seed, LAN, loss=0.10, duration_s=600.0)
    assert result.false_deaths == 0, (seed, result.examples)


def test_stalled_loops_kill_nobody_healthy() -> None:
    result = stalls(16, 21, LOCAL, duration_s=200.0)
    assert result.false_deaths == 0, result.examples


def test_lifeguard_cuts_false_deaths_by_ten_times_under_slow_processing() -> None:
    # memberlist's own retransmit budget (no extra sends), with and without Lifeguard: with our
    # larger default budget even plain SWIM survives this run (see benchmarks/README.md).
    memberlist = replace(LOCAL, retransmit_base=0)
    kwargs = {"duration_s": 200.0, "gap_mean_s": 1.0, "receive_only": True}
    with_lifeguard = stalls(16, 5, memberlist, **kwargs)  # type: ignore[arg-type]
    without = stalls(16, 5, replace(memberlist, lifeguard=False), **kwargs)  # type: ignore[arg-type]
    assert with_lifeguard.false_deaths == 0, with_lifeguard.examples
    assert without.false_deaths >= 10 * max(1, with_lifeguard.false_deaths), without


@pytest.mark.parametrize("seed", [31, 32])
def test_partition_heals_into_one_view_within_two_push_pull_intervals(seed: int) -> None:
    result = partition(10, seed, LOCAL, split_for_s=60.0)
    assert result.heal_s <= 2 * result.push_pull_interval_s, result


def test_per_peer_traffic_grows_at_most_a_quarter_from_8_to_64() -> None:
    # Datagrams and push-pull bodies both; long enough to average several push-pulls.
    small = traffic(8, 4, LAN, duration_s=240.0)
    large = traffic(64, 4, LAN, duration_s=240.0)
    assert large.total_bytes_per_s <= 1.25 * small.total_bytes_per_s, (small, large)
    assert large.sync_bytes_per_s > small.sync_bytes_per_s > 0


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
