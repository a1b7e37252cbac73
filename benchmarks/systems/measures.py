"""The measures of ``bench_jobs.py``: what each one times, its figures and its ratios.

Rule: a ratio divides two figures of the same repetition (repetition r of A by repetition r
of B), never a figure by one from another moment. By default every disruptor row is divided by
every other system's row; a disruptor-only measure names its own pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .base import Sizes


@dataclass(frozen=True)
class Metric:
    key: str
    unit: str
    higher_is_better: bool
    ratio: bool = True  # whether ratios of this figure are printed


@dataclass(frozen=True)
class Measure:
    name: str  # for --only, and the System method that takes it (unless ``method`` says)
    title: Callable[[Sizes], str]
    metrics: tuple[Metric, ...]
    timeout_s: Callable[[Sizes], float]  # per system per repetition
    pairs: tuple[tuple[str, str], ...] = ()  # (numerator row, denominator row); () = default
    # When its repetitions run: "first" all of them before any other measure (right after the
    # warm-up), "main" one per round with the others, "last" all of them after every round.
    phase: str = "main"
    method: str = ""

    @property
    def method_name(self) -> str:
        return self.method or self.name


RATE_ITEMS = Metric("items_per_s", "items/s", higher_is_better=True)
RATE_JOBS = Metric("jobs_per_s", "jobs/s", higher_is_better=True)
P50 = Metric("p50_ms", "ms", higher_is_better=False)
P99 = Metric("p99_ms", "ms", higher_is_better=False)

MEMORY_METRICS = (
    Metric("rss_mb", "MB", higher_is_better=False),
    Metric("pss_mb", "MB", higher_is_better=False),
    Metric("processes", "", higher_is_better=False, ratio=False),
)

MEASURES = (
    Measure(
        "memory",
        lambda s: f"idle memory of the system's processes after the warm-up, {s.workers} workers",
        MEMORY_METRICS,
        lambda s: 60,
        phase="first",
    ),
    Measure(
        "items",
        lambda s: f"{s.items:,} tiny items (item * 2) in one job, {s.workers} workers",
        (RATE_ITEMS,),
        lambda s: 120 + s.items / 1000,
    ),
    Measure(
        "tiny",
        lambda s: f"one-item jobs, {s.tiny_callers} callers, {s.tiny_s:g} s each",
        (RATE_JOBS, Metric("refused", "", higher_is_better=False, ratio=False)),
        lambda s: s.tiny_s + 120,
    ),
    Measure(
        "round_trip",
        lambda s: f"one-item round trip, {s.round_trips} in sequence",
        (P50, P99),
        lambda s: 60 + s.round_trips * 0.5,
    ),
    Measure(
        "cold_start",
        lambda s: (
            "cold start: process spawned to ready (disruptor: /health answers;"
            " others: first task's result)"
        ),
        (
            Metric("spawn_to_ready_s", "s", higher_is_better=False),
            Metric("init_to_first_task_s", "s", higher_is_better=False, ratio=False),
        ),
        lambda s: 180,
    ),
    Measure(
        "deploy",
        lambda s: (
            f"{s.deploy_bytes // 2**20} MB bundle pushed to one peer, then its workers"
            " running on 6 peers vs 1"
        ),
        (
            Metric("push_s", "s", higher_is_better=False),
            Metric("running_s", "s", higher_is_better=False),
            Metric("spread_s", "s", higher_is_better=False),
        ),
        lambda s: 300 + s.deploy_bytes / 2**20 * 6,
        pairs=(("disruptor 6 peers", "disruptor 1 peer"),),
    ),
    Measure(
        "loop",
        lambda s: (
            f"10-step loop total += i * item over {s.loop_items:,} items, one peer,"
            f" {s.workers} snippet hosts vs {s.workers} bundle workers"
        ),
        (Metric("seconds", "s", higher_is_better=False),),
        lambda s: 120 + s.loop_items / 500,
        pairs=(("disruptor snippet", "disruptor bundle"),),
    ),
    Measure(
        "memory_after",
        lambda s: "idle memory of the system's processes after every other measure ran",
        MEMORY_METRICS,
        lambda s: 60,
        phase="last",
        method="memory",
    ),
)

BY_NAME = {measure.name: measure for measure in MEASURES}
