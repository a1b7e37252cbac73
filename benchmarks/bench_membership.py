"""Gossip figures from the simulator (virtual time, the real protocol core) and from real peers.

Run (see benchmarks/README.md for the figures):

    .venv/bin/python benchmarks/bench_membership.py            # every simulated figure, N <= 1,000
    .venv/bin/python benchmarks/bench_membership.py --quick    # N <= 256 only
    .venv/bin/python benchmarks/bench_membership.py --large 10000  # prejoined: idle, a crash
    .venv/bin/python benchmarks/bench_membership.py --storm 10000   # N peers join through one seed
    .venv/bin/python benchmarks/bench_membership.py --kinship  # 16 real processes, 3 SIGKILLed,
                                                              # against kinship in the same run

Simulated figures are pure functions of their seeds (rerunning prints the same virtual times);
the wall time and memory of a large run depend on the machine and its load, and are printed with
the load average. ``--kinship`` needs the optional ``kinship`` package (the ``bench`` extra) and
is skipped with a note without it.
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disruptor.membership import scenarios as sc
from disruptor.membership.settings import LAN, LOCAL

Rows = list[tuple[str, str]]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def small(rows: Rows, figures: dict[str, object], quick: bool) -> None:
    for n, seeds in ((8, range(1, 11)), (64, range(1, 6))):
        rounds: list[float] = []
        for seed in seeds:
            rounds += sc.converge(n, seed, LAN, newcomers=5).newcomer_rounds
        figures[f"newcomer_rounds_{n}"] = rounds
        rows.append(
            (
                f"newcomer known by all, N = {n} (lan; {len(rounds)} newcomers)",
                f"p50 {statistics.median(rounds):.2f}, p99 {p99(rounds):.2f} gossip rounds",
            )
        )
    chains = [sc.chain_join(16, seed, LAN) for seed in range(200)]
    after = [c.after_last_start_s / LAN.gossip_interval_s for c in chains]
    worst = max(range(len(chains)), key=lambda i: after[i])
    rows.append(
        (
            "16 peers chain-seeded (each names the previous), started within 1 s (lan, 200 seeds)",
            "everyone lists everyone alive after the last start: "
            f"p50 {statistics.median(after):.1f}, max {max(after):.1f} gossip rounds "
            f"(seed {worst})",
        )
    )
    sizes = [(8, range(1, 6)), (64, range(1, 6)), (256, range(1, 4))]
    if not quick:
        sizes.append((1000, range(1, 4)))
    for n, seeds in sizes:
        joins = [sc.join_through_one_seed(n, seed, LAN) for seed in seeds]
        figures[f"join_one_seed_{n}"] = [vars(j) | {"rounds": j.rounds} for j in joins]
        rows.append(
            (
                f"{n} peers join through one seed, started within 1 s (lan; {len(joins)} seeds)",
                "converged after "
                + ", ".join(f"{j.rounds:.1f}" for j in joins)
                + " gossip rounds from the first start ("
                + ", ".join(f"{j.after_last_start_s:.1f}" for j in joins)
                + " s after the last)",
            )
        )
        print(rows[-1], flush=True)
    crash_runs = [(16, range(9), False), (64, range(9), False)]
    if not quick:
        crash_runs.append((1000, range(1, 3), True))
    for n, seeds, prejoined in crash_runs:
        crashes = [sc.crash(n, seed, LAN, prejoined=prejoined) for seed in seeds]
        first = [c.first_suspicion_s for c in crashes]
        dead = [c.all_dead_s for c in crashes]
        rows.append(
            (
                f"crash, N = {n} (lan, {len(crashes)} seeds)",
                f"first suspicion p50 {statistics.median(first):.2f} s; every survivor marks it "
                f"dead p50 {statistics.median(dead):.1f} s, max {max(dead):.1f} s",
            )
        )
        print(rows[-1], flush=True)
    kills = [sc.crash_many(16, seed, LAN, victims=3) for seed in range(9)]
    rows.append(
        (
            "3 of 16 crashed at once (lan, 9 seeds)",
            f"dead on every survivor p50 {statistics.median(kills):.1f} s, max {max(kills):.1f} s",
        )
    )
    loss = [sc.lossy(64, seed, LAN, 0.10, 600.0) for seed in (11, 12, 13)]
    rows.append(
        (
            "10% loss, N = 64, 10 virtual minutes (lan, 3 seeds)",
            f"false deaths {sum(r.false_deaths for r in loss)}",
        )
    )
    whole = [sc.stalls(16, seed, LAN, 300.0) for seed in (21, 22, 23)]
    rows.append(
        (
            "whole-loop stalls 0.5-3 s on 4 of 16 peers, 5 virtual min (lan, 3 seeds)",
            f"healthy peers declared dead {sum(r.false_deaths for r in whole)}",
        )
    )
    kwargs = {"duration_s": 300.0, "gap_mean_s": 1.0, "receive_only": True, "stall_max_s": 5.0}
    on = off = 0
    for seed in (5, 6, 7):
        on += sc.stalls(16, seed, LAN, **kwargs).false_deaths  # type: ignore[arg-type]
        off += sc.stalls(16, seed, replace(LAN, lifeguard=False), **kwargs).false_deaths  # type: ignore[arg-type]
    rows.append(
        (
            "slow processing (receive path stalled 0.5-5 s, 4 of 16 peers), 5 min x 3 seeds, "
            "default lan settings",
            f"false deaths: Lifeguard {on}, plain SWIM {off}",
        )
    )
    heals = [sc.partition(16, seed, LOCAL, 60.0) for seed in (31, 32, 33)]
    rows.append(
        (
            "partition 8 / 8 for 60 s, then healed (local, push-pull 15 s, 3 seeds)",
            "one view again after " + ", ".join(f"{h.heal_s:.1f}" for h in heals) + " s",
        )
    )
    for n in (64, 256):
        fresh = sc.freshness(n, 1, LAN, bundles=16, duration_s=60.0)
        figures[f"freshness_{n}"] = vars(fresh)
        rows.append(
            (
                f"metadata under load churn, N = {n}, 16 bundles a peer, load changing every 2 s "
                "(lan, 60 s)",
                f"{fresh.updates_seen:.1%} of updates held by every other peer before the next; "
                f"views current at a random instant {fresh.views_current:.1%}; "
                f"{fresh.bytes_per_peer_s:.0f} B/s a peer",
            )
        )
        print(rows[-1], flush=True)
    traffic_sizes = [8, 64] + ([] if quick else [1000])
    traffic = {n: sc.traffic(n, 4, LAN, 300.0, prejoined=n > 64) for n in traffic_sizes}
    figures["traffic_bytes_per_peer_s"] = {n: vars(t) for n, t in traffic.items()}
    rows.append(
        (
            "idle membership traffic per peer, settled cluster (lan, 300 s): datagram bytes + "
            "push-pull bytes a second, datagrams a second",
            ", ".join(
                f"N = {n}: {t.datagram_bytes_per_s:.0f} + {t.sync_bytes_per_s:.0f} B/s, "
                f"{t.datagrams_per_s:.1f}/s"
                for n, t in traffic.items()
            ),
        )
    )


def large(n: int, rows: Rows, figures: dict[str, object]) -> None:
    """A prejoined cluster of ``n``: what it costs to simulate, idle traffic, one crash."""
    gc.collect()
    cpu0, wall0 = time.process_time(), time.monotonic()
    sim = sc.start_cluster(n, 1, LAN, prejoined=True)
    built_cpu, built_wall, built_rss = (
        time.process_time() - cpu0,
        time.monotonic() - wall0,
        rss_mb(),
    )
    print(f"built {n}: {built_cpu:.0f} s CPU, {built_rss:.0f} MB ({load()})", flush=True)
    cpu1 = time.process_time()
    idle = sc.traffic_of(sim, 60.0, settle_s=10.0)
    run_cpu = time.process_time() - cpu1
    print(f"traffic {n}: {idle} ({run_cpu:.0f} s CPU)", flush=True)
    crash = sc.crash_in(sim, 1)
    print(f"crash {n}: {crash}", flush=True)
    figures[f"large_{n}"] = {
        "build_cpu_s": built_cpu,
        "build_wall_s": built_wall,
        "rss_mb": rss_mb(),
        "idle": vars(idle),
        "idle_run_cpu_s_per_virtual_s": run_cpu / 70.0,
        "crash": vars(crash),
    }
    rows.append(
        (
            f"N = {n}, prejoined (lan): cost of simulating",
            f"{rss_mb() * 1024 / n:.0f} KB of memory a peer ({rss_mb() / 1024:.1f} GB peak), "
            f"{built_cpu * 1000 / n:.1f} ms of CPU a peer to build; then "
            f"{run_cpu / 70.0:.1f} s of CPU per virtual second ({load()})",
        )
    )
    rows.append(
        (
            f"idle membership traffic per peer, N = {n} (lan, 60 s)",
            f"{idle.datagram_bytes_per_s:.0f} + {idle.sync_bytes_per_s:.0f} B/s, "
            f"{idle.datagrams_per_s:.1f} datagrams/s",
        )
    )
    rows.append(
        (
            f"crash, N = {n} (lan, seed 1)",
            f"first suspicion {crash.first_suspicion_s:.2f} s; every survivor marks it dead "
            f"{crash.all_dead_s:.1f} s",
        )
    )


def storm(n: int, seeds: range, rows: Rows, figures: dict[str, object]) -> None:
    for seed in seeds:
        gc.collect()
        cpu0 = time.process_time()
        result = sc.join_through_one_seed(n, seed, LAN)
        cpu = time.process_time() - cpu0
        figures[f"storm_{n}_{seed}"] = vars(result) | {"cpu_s": cpu, "rss_mb": rss_mb()}
        rows.append(
            (
                f"{n} peers join through one seed, started within 1 s (lan, seed {seed})",
                f"converged after {result.rounds:.1f} gossip rounds from the first start "
                f"({result.after_last_start_s:.1f} s after the last); simulated in {cpu:.0f} s "
                f"of CPU, {rss_mb() * 1024 / n:.0f} KB a peer ({load()})",
            )
        )
        print(rows[-1], flush=True)


def main() -> None:
    started = time.monotonic()
    rows: Rows = []
    figures: dict[str, object] = {}
    args = sys.argv[1:]
    if "--large" in args:
        n = int(args[args.index("--large") + 1])
        large(n, rows, figures)
        name = f"membership_large_{n}.json"
    elif "--storm" in args:
        n = int(args[args.index("--storm") + 1])
        count = int(args[args.index("--seeds") + 1]) if "--seeds" in args else 1
        storm(n, range(1, count + 1), rows, figures)
        name = f"membership_storm_{n}.json"
    elif "--kinship" in args:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_membership_real import kinship_rows

        kinship_rows(rows, figures)
        name = "membership_kinship.json"
    else:
        small(rows, figures, quick="--quick" in args)
        name = "membership.json"
    print("| measure | result |\n|---|---|")
    for measure, result in rows:
        print(f"| {measure} | {result} |")
    print(f"\n(wall time {time.monotonic() - started:.0f} s, {load()})")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / name).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
