"""Sixteen real processes on loopback, three SIGKILLed at once: how long until every survivor
marks all three dead, disruptor peers (``lan`` preset) against kinship nodes (``Config.lan()``),
interleaved in the same run (disruptor, kinship, disruptor, kinship...).

Run: ``.venv/bin/python benchmarks/bench_membership.py --kinship`` (needs the ``bench`` extra's
``kinship``; about two minutes a repetition pair). Each side's processes are started at once,
each naming the first as its seed; the clock starts at the kill. disruptor survivors are asked
``GET /peers`` every 50 ms; kinship nodes print each event with its time as it happens.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disruptor.address import free_port  # noqa: E402

PEERS = 16
KILLED = 3
POLL_S = 0.05
BOUND_S = 120.0

KINSHIP_NODE = """
import asyncio, sys, time, kinship

async def main(port, seed):
    cfg = kinship.Config.lan(
        name=f"n{port}", bind=f"127.0.0.1:{port}", seeds=[seed] if seed else [],
        insecure_plaintext=True,
    )
    async with kinship.Cluster(cfg) as cluster:
        events = cluster.events()
        others = [m.name for m in cluster.members() if m.name != cfg.name]
        print(f"{time.time():.3f} Members {','.join(others) or '-'}", flush=True)
        async for event in events:
            member = getattr(event, "member", None)
            name = member.name if member is not None else ""
            print(f"{time.time():.3f} {type(event).__name__} {name}", flush=True)

asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""))
"""


def wait(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(POLL_S)


def distinct_ports(count: int) -> list[int]:
    """``count`` different free ports (one free port, asked for twice, can come back twice)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def disruptor_run(victims: list[int]) -> float:
    home = Path(tempfile.mkdtemp(prefix="bench-membership-"))
    env = {**os.environ, "DISRUPTOR_HOME": str(home)}
    procs: list[subprocess.Popen[bytes]] = []
    ports = distinct_ports(PEERS)
    names = [f"127.0.0.1:{p}" for p in ports]
    try:
        for i, name in enumerate(names):
            seeds = [names[0]] if i else []
            cmd = [sys.executable, "-m", "disruptor", "peer", name, *seeds, "--preset", "lan"]
            log = open(home / f"peer{i}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        wait(lambda: (home / "api.token").exists(), 30.0, "the API token")
        token = (home / "api.token").read_text().strip()

        def states(i: int) -> dict[str, str]:
            request = urllib.request.Request(
                f"http://{names[i]}/peers", headers={"Authorization": f"Bearer {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=2) as r:
                    return {row["address"]: row["state"] for row in json.load(r)["peers"]}
            except OSError:
                return {}

        everyone = set(names)
        try:
            wait(
                lambda: all(
                    {a for a, s in states(i).items() if s == "alive"} == everyone
                    for i in range(PEERS)
                ),
                BOUND_S,
                "16 disruptor peers to list each other alive",
            )
        except TimeoutError:
            for i in range(PEERS):
                view = states(i)
                missing = sorted(everyone - {a for a, s in view.items() if s == "alive"})
                if missing:
                    print(f"peer {i} ({names[i]}, exit {procs[i].poll()}) lacks {missing}")
                    print((home / f"peer{i}.log").read_text(errors="replace")[-1500:])
            raise
        time.sleep(3.0)  # settle, as the simulated scenario does (three probe periods)
        killed_at = time.monotonic()
        for v in victims:
            procs[v].send_signal(signal.SIGKILL)
        gone = {names[v] for v in victims}
        survivors = [i for i in range(PEERS) if i not in victims]
        pending = set(survivors)
        while pending:
            if time.monotonic() - killed_at > BOUND_S:
                raise TimeoutError("survivors did not mark the killed peers dead")
            for i in list(pending):
                view = states(i)
                if all(view.get(g) == "dead" for g in gone):
                    pending.discard(i)
            time.sleep(POLL_S)
        return time.monotonic() - killed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def kinship_run(victims: list[int]) -> float:
    ports = distinct_ports(PEERS)
    seed = f"127.0.0.1:{ports[0]}"
    procs: list[subprocess.Popen[str]] = []
    lines: list[list[str]] = [[] for _ in range(PEERS)]

    def reader(i: int, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            lines[i].append(line.strip())

    try:
        for i, port in enumerate(ports):
            args = [sys.executable, "-c", KINSHIP_NODE, str(port)] + ([seed] if i else [])
            proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            procs.append(proc)
            threading.Thread(target=reader, args=(i, proc.stdout), daemon=True).start()

        def joined(i: int) -> int:
            seen: set[str] = set()
            for line in list(lines[i]):
                parts = line.split()
                if len(parts) == 3 and parts[1] == "Members":
                    seen |= set(parts[2].split(",")) - {"-"}
                elif len(parts) == 3 and parts[1] == "MemberJoined":
                    seen.add(parts[2])
                elif len(parts) == 3 and parts[1] in ("MemberDead", "MemberLeft"):
                    seen.discard(parts[2])
            return len(seen)

        wait(
            lambda: all(joined(i) == PEERS - 1 for i in range(PEERS)),
            BOUND_S,
            "16 kinship nodes to see each other",
        )
        time.sleep(3.0)
        killed_wall = time.time()
        killed_at = time.monotonic()
        for v in victims:
            procs[v].send_signal(signal.SIGKILL)
        gone = {f"n{ports[v]}" for v in victims}
        survivors = [i for i in range(PEERS) if i not in victims]

        def dead_at(i: int) -> float | None:
            when: dict[str, float] = {}
            for line in list(lines[i]):
                parts = line.split()
                if len(parts) == 3 and parts[1] == "MemberDead" and parts[2] in gone:
                    when[parts[2]] = float(parts[0])
            return max(when.values()) if len(when) == len(gone) else None

        wait(
            lambda: all(dead_at(i) is not None for i in survivors),
            BOUND_S,
            "kinship survivors to mark the killed nodes dead",
        )
        del killed_at
        return max(dead_at(i) or 0.0 for i in survivors) - killed_wall
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)


def kinship_rows(rows: list[tuple[str, str]], figures: dict[str, object]) -> None:
    try:
        import kinship  # noqa: F401
    except ImportError:
        print("kinship is not installed (pip install kinship==0.4.0): comparison skipped")
        return
    repetitions = int(os.environ.get("BENCH_REPETITIONS", "3"))
    rng = random.Random(1)
    ours: list[float] = []
    theirs: list[float] = []
    for rep in range(repetitions):
        victims = rng.sample(range(1, PEERS), KILLED)
        ours.append(disruptor_run(victims))
        theirs.append(kinship_run(victims))
        print(
            f"repetition {rep + 1}: disruptor {ours[-1]:.1f} s, kinship {theirs[-1]:.1f} s "
            f"(load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    figures["kill3_real"] = {"disruptor_s": ours, "kinship_s": theirs, "ratios": ratios}
    rows.append(
        (
            f"16 real processes on loopback, 3 SIGKILLed: dead on every survivor "
            f"({repetitions} interleaved repetitions, lan)",
            f"disruptor {', '.join(f'{x:.1f}' for x in ours)} s; kinship 0.4.0 "
            f"{', '.join(f'{x:.1f}' for x in theirs)} s; disruptor / kinship min "
            f"{min(ratios):.2f}, median {statistics.median(ratios):.2f} "
            f"(load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})",
        )
    )
