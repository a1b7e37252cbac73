"""The jobs simulator: many seeds of faults against the real dispatcher, invariants every step.

``SIM_SEEDS`` sets how many seeds run (the same variable the membership simulator reads); CI
runs the default. A failure names its seed; ``JobSimulator(seed).run()`` replays it exactly.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from disruptor.jobs.model import JobState
from disruptor.jobs.simulator import Faults, InvariantBroken, JobSimulator

SEEDS = int(os.environ.get("SIM_SEEDS", "200"))


def test_every_seed_keeps_every_invariant() -> None:
    broken: list[str] = []
    seen: Counter[str] = Counter()
    for seed in range(SEEDS):
        try:
            result = JobSimulator(seed).run()
        except InvariantBroken as error:
            broken.append(f"{error} (replay: JobSimulator({seed}).run())")
            continue
        seen.update(state.value for state in result.states.values())
        seen.update(
            deaths=result.deaths,
            duplicates=result.duplicates,
            late=result.late_answers,
            jumps=result.clock_jumps,
        )
    assert broken == [], "\n".join(broken[:10])
    # The faults really happened (else the invariants were never tested).
    if SEEDS >= 100:
        assert all(seen[k] > 0 for k in ("deaths", "duplicates", "late", "jumps", "cancelled"))
        assert seen["completed"] > seen["failed"] + seen["cancelled"]


def test_a_run_replays_from_its_seed() -> None:
    first, second = JobSimulator(7).run(), JobSimulator(7).run()
    assert first == second


def test_without_faults_every_job_completes() -> None:
    calm = Faults(**{name: 0.0 for name in Faults.__dataclass_fields__ if name != "notice_s"})
    for seed in range(20):
        states = JobSimulator(seed, faults=calm).run().states
        assert set(states.values()) == {JobState.COMPLETED}, seed


@pytest.mark.parametrize("jobs", [1, 8])
def test_few_or_many_jobs_at_once(jobs: int) -> None:
    for seed in range(20):
        assert len(JobSimulator(seed, jobs=jobs).run().states) == jobs
