"""Jobs on disruptor against Ray, Dask and ``multiprocessing.Pool``, interleaved in one run.

Every system is started once and warmed up (workers running, functions shipped), then each
repetition runs each measure on each system in turn (A, B, C, A, B, C...), so load from the
rest of a shared machine falls on all of them alike. Per measure it prints each system's min and
median over the repetitions and the min and median of the ratio disruptor / other, pairing
repetition r of one with repetition r of the other; the load average at start and end; what ran
(versions, event loop, load generator). Everything also goes to ``benchmarks/out/jobs.json``.

    .venv/bin/python benchmarks/bench_jobs.py                    # several minutes
    .venv/bin/python benchmarks/bench_jobs.py --quick --reps 1   # smoke run
    .venv/bin/python benchmarks/bench_jobs.py --only items,tiny --systems disruptor,ray

Ray and Dask run when importable (``pip install -e '.[bench]'``) and are skipped with a note
otherwise. Rule: every wait is bounded, and every process the run started is ended when it
ends, Ctrl-C and SIGTERM included (graceful stop first, then SIGKILL of whatever is left below
this process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from systems import dask_system, procs, ray_system  # noqa: E402
from systems.base import Sizes, System  # noqa: E402
from systems.disruptor_system import DisruptorSystem  # noqa: E402
from systems.measures import MEASURES, Measure  # noqa: E402
from systems.pool_system import PoolSystem  # noqa: E402
from systems.report import Results, number  # noqa: E402

SYSTEMS: dict[str, type[System]] = {
    "disruptor": DisruptorSystem,
    "ray": ray_system.RaySystem,
    "dask": dask_system.DaskSystem,
    "pool": PoolSystem,
}
OPTIONAL = {"ray": ray_system.version, "dask": dask_system.version}
START_TIMEOUT_S = 300.0
WARM_UP_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0
OUT = ROOT / "benchmarks" / "out" / "jobs.json"


def names(text: str, known: list[str], what: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; choose from {known}")
    return [name for name in known if name in chosen]  # the harness's order, not the caller's


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--only",
        type=lambda text: names(text, [m.name for m in MEASURES], "measure"),
        default=[m.name for m in MEASURES],
        metavar="MEASURE[,MEASURE]",
        help="measures: " + ", ".join(m.name for m in MEASURES),
    )
    parser.add_argument(
        "--systems",
        type=lambda text: names(text, list(SYSTEMS), "system"),
        default=list(SYSTEMS),
        metavar="SYSTEM[,SYSTEM]",
        help="systems: " + ", ".join(SYSTEMS),
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON figures (default {OUT})")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.workers < 1:
        parser.error("--reps and --workers must be at least 1")
    return args


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "disruptor"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (disruptor/ modified)' if dirty else ''}"


def brief(rows: dict[str, dict[str, float]]) -> str:
    return "; ".join(
        f"{row}: " + ", ".join(f"{key} {number(value)}" for key, value in metrics.items())
        for row, metrics in rows.items()
    )


async def start_all(
    chosen: list[str],
    sizes: Sizes,
    scratch: Path,
    measures: frozenset[str],
    stopping: threading.Event,
    started: list[System],
    after_each: Callable[[], None],
) -> list[System]:
    """Start and warm up each system; an optional one that is absent or fails is left out."""
    running = []
    for name in chosen:
        if name in OPTIONAL and OPTIONAL[name]() is None:
            print(f"note: {name} is not installed (pip install -e '.[bench]'); skipped", flush=True)
            continue
        system = SYSTEMS[name](sizes, scratch, measures, stopping)
        started.append(system)  # stopped at the end even if starting fails half-way
        print(f"starting {name} ...", flush=True)
        began = time.monotonic()
        try:
            try:
                await asyncio.wait_for(system.start(), START_TIMEOUT_S)
            finally:
                after_each()  # even after a failed start, which may have replaced handlers
            await asyncio.wait_for(system.warm_up(), WARM_UP_TIMEOUT_S)
        except Exception as exc:
            if name == "disruptor":
                raise
            print(f"note: {name} did not start ({type(exc).__name__}: {exc}); skipped", flush=True)
            continue
        print(f"  {name} started and warm in {time.monotonic() - began:.1f} s", flush=True)
        running.append(system)
    return running


async def measure_once(system: System, measure: Measure, rep: int, results: Results) -> None:
    """One measure on one system, bounded; a failure is recorded and the run goes on."""
    load_1m = procs.load_average()[0]
    began = time.monotonic()
    try:
        rows = await asyncio.wait_for(
            getattr(system, measure.method_name)(), measure.timeout_s(results.sizes)
        )
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        error = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        results.fail(measure.name, system.name, rep, error)
        print(f"[{rep + 1}/{results.reps}] {measure.name} {system.name} FAILED: {error}")
        return
    if rows is None:
        return
    results.record(measure.name, system.name, rep, rows)
    results.load.append(
        {"rep": rep, "measure": measure.name, "system": system.name, "load_1m": load_1m}
    )
    print(
        f"[{rep + 1}/{results.reps}] {measure.name:<12} {system.name:<9} "
        f"({time.monotonic() - began:.1f} s, load {load_1m:.1f}) {brief(rows)}",
        flush=True,
    )


async def measure_all(systems: list[System], results: Results, only: list[str]) -> None:
    """Round by round, measure by measure, each system in turn (A, B, C, A, B, C...); the
    measures of the first and last phase take all their rounds before and after the others."""
    chosen = [m for m in MEASURES if m.name in only]
    for phase in ("first", "main", "last"):
        measures = [m for m in chosen if m.phase == phase]
        rounds = [[(m, rep) for m in measures] for rep in range(results.reps)]
        if phase != "main":  # every repetition of one measure, then the next measure
            rounds = [[(m, rep) for rep in range(results.reps)] for m in measures]
        for pairs in rounds:
            for measure, rep in pairs:
                for system in systems:
                    await measure_once(system, measure, rep, results)


async def stop_all(systems: list[System]) -> None:
    for system in reversed(systems):
        try:
            await asyncio.wait_for(system.stop(), STOP_TIMEOUT_S)
        except Exception as exc:
            print(f"note: stopping {system.name}: {type(exc).__name__}: {exc}", flush=True)


async def run(args: argparse.Namespace, scratch: Path, report: dict[str, Any]) -> Results:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    stopping = threading.Event()  # also seen by the threads that run Ray's and the pool's waits

    def request_stop() -> None:
        if not stopping.is_set():
            print("\nstopping: ending every system, then printing what was measured", flush=True)
        stopping.set()
        task.cancel()

    def catch_signals() -> None:
        # Again after each system starts: ray.init installs its own SIGTERM handler, which
        # kills the process at once, without stopping anything.
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop_signal, request_stop)

    catch_signals()
    sizes = Sizes.choose(args.quick, args.workers)
    results = Results(args.reps, sizes)
    started: list[System] = []
    only = frozenset(args.only)
    try:
        systems = await start_all(
            args.systems, sizes, scratch, only, stopping, started, catch_signals
        )
        report["notes"] = {k: v for system in systems for k, v in system.notes().items()}
        for key, value in report["notes"].items():
            print(f"  {key}: {value}")
        await measure_all(systems, results, args.only)
    except asyncio.CancelledError:
        if not stopping.is_set():
            raise
        task.uncancel()
        report["interrupted"] = True
    finally:
        await stop_all(started)
    return results


def main() -> int:
    args = parse_args()
    subreaper = procs.become_subreaper()
    load_start = procs.load_average()
    report: dict[str, Any] = {
        "command": " ".join(sys.orig_argv),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "harness event loop": "asyncio (standard)",
        },
        "commit": git_commit(),
        "reps": args.reps,
        "sizes": vars(Sizes.choose(args.quick, args.workers)),
        "load_average_start": load_start,
    }
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in load_start)}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="disruptor-bench-jobs-") as scratch:
            results = asyncio.run(run(args, Path(scratch), report))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted while stopping; every process left is killed", flush=True)
        return 130
    finally:
        for line in procs.kill_descendants():
            print(f"note: killed at exit, still running: {line}", flush=True)
        if not subreaper:
            print("note: not a child subreaper; orphans of killed processes may survive")
    load_end = procs.load_average()
    report["load_average_end"] = load_end
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"\ncommand: {report['command']}  (commit {report['commit']})")
    print(f"machine: {os.cpu_count()} cpus, Python {platform.python_version()}")
    print(f"load average: start {load_start[0]:.2f}, end {load_end[0]:.2f} (1 min)")
    samples = [sample["load_1m"] for sample in results.load]
    if samples:
        print(f"load average while measuring: {min(samples):.2f} to {max(samples):.2f}")
    for key, value in report.get("notes", {}).items():
        print(f"{key}: {value}")
    for name in args.only:
        results.print_measure(name)
    report.update(results.to_json())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfigures written to {args.out}")
    if report.get("interrupted"):
        print("interrupted: the figures above are those measured before the stop")
        return 130
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
