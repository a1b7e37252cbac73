"""Gossip figures from the simulator: convergence rounds by N, crash detection, loss, stalls,
partitions and traffic, all on the virtual clock (so the figures do not depend on the machine).

Run: ``.venv/bin/python benchmarks/bench_membership.py [--quick]`` (a few minutes; ``--quick``
skips N = 1,000). Every figure is a pure function of its seeds: rerunning prints the same table.
The newcomer, crash and traffic runs at N = 1,000 start already joined (``prejoined``): their
figures are about what happens after. The join storm itself is measured on its own: N peers
started within one second, all pointed at the same single seed, until everyone lists everyone.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from disruptor.membership import scenarios as sc
from disruptor.membership.settings import LAN, LOCAL


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def main() -> None:
    quick = "--quick" in sys.argv
    # --join: only the join-through-one-seed measurement (N = 1,000 takes minutes on its own).
    join_only = "--join" in sys.argv
    started = time.monotonic()
    rows: list[tuple[str, str]] = []
    figures: dict[str, object] = {}

    sizes = [] if join_only else [(8, range(1, 11), False), (64, range(1, 6), False)]
    if not quick and not join_only:
        sizes.append((1000, range(1, 3), True))
    for n, seeds, prejoined in sizes:
        rounds: list[float] = []
        for seed in seeds:
            rounds += sc.converge(n, seed, LAN, newcomers=5, prejoined=prejoined).newcomer_rounds
        figures[f"newcomer_rounds_{n}"] = rounds
        rows.append(
            (
                f"newcomer known by all, N = {n} (lan; {len(rounds)} newcomers)",
                f"p50 {statistics.median(rounds):.2f}, p99 {p99(rounds):.2f} gossip rounds "
                f"(log10 N = {math.log10(n):.1f})",
            )
        )

    # Join through one seed: all N peers pointed at the same single seed, started within the
    # first second (seeded random times); time until every peer lists every other as alive.
    join_sizes = [(8, range(1, 6)), (64, range(1, 6))] + ([] if quick else [(1000, range(1, 4))])
    join_rounds: dict[int, list[float]] = {}
    for n, seeds in join_sizes:
        joins = [sc.join_through_one_seed(n, seed, LAN) for seed in seeds]
        print(f"join N = {n}: {[round(j.rounds, 1) for j in joins]} rounds", flush=True)
        rounds = [j.rounds for j in joins]
        join_rounds[n] = rounds
        figures[f"join_one_seed_{n}"] = [vars(j) | {"rounds": j.rounds} for j in joins]
        rows.append(
            (
                f"{n} peers join through one seed, started within 1 s (lan; {len(joins)} seeds)",
                "converged after "
                + ", ".join(f"{r:.1f}" for r in rounds)
                + " gossip rounds ("
                + ", ".join(f"{j.converged_s:.1f}" for j in joins)
                + " s; "
                + ", ".join(f"{j.after_last_start_s:.1f}" for j in joins)
                + f" s after the last start); rounds / log2 N = "
                f"{statistics.median(rounds) / math.log2(n):.1f}",
            )
        )
    # Growth like c * log N: take c from N = 8 and compare the larger N with c * log2 N.
    c = statistics.median(join_rounds[8]) / math.log2(8)
    for n, rounds in join_rounds.items():
        if n != 8:
            predicted = c * math.log2(n)
            rows.append(
                (
                    f"join through one seed, N = {n}: measured vs c * log2 N "
                    f"(c = {c:.2f} from N = 8)",
                    f"{statistics.median(rounds):.1f} vs {predicted:.1f} rounds "
                    f"({statistics.median(rounds) / predicted:.1f}x)",
                )
            )

    if join_only:
        _report(rows, figures, started, "membership_join.json")
        return

    crash_runs = [(16, range(9)), (64, range(9))] + ([] if quick else [(1000, range(1, 2))])
    for n, crash_seeds in crash_runs:
        crashes = [sc.crash(n, seed, LAN, prejoined=n > 64) for seed in crash_seeds]
        first = [c.first_suspicion_s for c in crashes]
        dead = [c.all_dead_s for c in crashes]
        bound = crashes[0].bound_s
        rows.append(
            (
                f"crash, N = {n} (lan, {len(crashes)} seeds)",
                f"first suspicion p50 {statistics.median(first):.2f} s (2 probe periods = 2 s); "
                f"all survivors mark dead p50 {statistics.median(dead):.1f} s, max "
                f"{max(dead):.1f} s (bound: first suspicion + {bound:.1f} s)",
            )
        )

    loss = [sc.lossy(16, seed, LAN, 0.10, 600.0) for seed in (11, 12, 13)]
    rows.append(
        (
            "10% loss, N = 16, 10 virtual minutes (lan, 3 seeds)",
            f"false deaths {sum(r.false_deaths for r in loss)}",
        )
    )

    whole = [sc.stalls(16, seed, LOCAL, 300.0) for seed in (21, 22, 23)]
    rows.append(
        (
            "whole-loop stalls 0.5-3 s on 4 of 16 peers, 5 virtual min (local, 3 seeds)",
            f"healthy peers declared dead {sum(r.false_deaths for r in whole)}",
        )
    )
    kwargs = {"duration_s": 300.0, "gap_mean_s": 1.0, "receive_only": True}
    for label, base in (("memberlist's retransmit budget", 0), ("our default budget", None)):
        config = LOCAL if base is None else replace(LOCAL, retransmit_base=base)
        on = off = 0
        for seed in (5, 6, 7):
            on += sc.stalls(16, seed, config, **kwargs).false_deaths  # type: ignore[arg-type]
            swim = replace(config, lifeguard=False)
            off += sc.stalls(16, seed, swim, **kwargs).false_deaths  # type: ignore[arg-type]
        figures[f"stall_false_deaths_{base}"] = {"lifeguard": on, "swim": off}
        rows.append(
            (
                f"slow processing (receive path stalled 0.5-3 s, 4 of 16 peers), 5 min x 3 seeds, "
                f"{label}",
                f"false deaths: Lifeguard {on}, plain SWIM {off}",
            )
        )

    heals = [sc.partition(16, seed, LOCAL, 60.0) for seed in (31, 32, 33)]
    rows.append(
        (
            "partition 8 / 8 for 60 s, then healed (local, push-pull 15 s, 3 seeds)",
            "one view again after "
            + ", ".join(f"{h.heal_s:.1f}" for h in heals)
            + " s (2 push-pull intervals = 30 s)",
        )
    )

    # N = 1,000 is left out: its push-pull interval stretches to 180 s, too rare to sample here.
    traffic = {n: sc.traffic(n, 4, LAN, 300.0) for n in (8, 64)}
    figures["traffic_bytes_per_peer_s"] = {n: vars(t) for n, t in traffic.items()}
    rows.append(
        (
            "membership bytes sent per peer per second, settled cluster (lan): datagrams + "
            "push-pull bodies",
            ", ".join(
                f"N = {n}: {t.datagram_bytes_per_s:.0f} + {t.sync_bytes_per_s:.0f}"
                for n, t in traffic.items()
            )
            + f" ({traffic[64].total_bytes_per_s / traffic[8].total_bytes_per_s - 1:+.0%} "
            "from 8 to 64)",
        )
    )

    _report(rows, figures, started, "membership.json")


def _report(
    rows: list[tuple[str, str]], figures: dict[str, object], started: float, file: str
) -> None:
    print("| measure | result |\n|---|---|")
    for measure, result in rows:
        print(f"| {measure} | {result} |")
    print(f"\n(wall time {time.monotonic() - started:.0f} s)")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / file).write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
