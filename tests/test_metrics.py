from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse
from prometheus_client.parser import text_string_to_metric_families

from disruptor.address import Address
from disruptor.histogram import LatencyHistogram
from disruptor.metrics import Metrics, reading
from disruptor.prometheus import metric_kind, metric_name, stats_families


@dataclass
class FakeJobStats:
    submitted: int = 7
    completed: int = 5
    failed: int = 1
    cancelled: int = 0
    running: int = 1
    tasks_serving: int = 0
    items_completed: int = 40
    items_failed: int = 2
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


@dataclass
class FakePoolStats:
    workers_running: int = 3
    restarts: int = 2
    crashes: int = 4
    tasks_done: int = 30
    cpu_ms: float = 1500.0
    name: str = "not a number"


@dataclass
class FakeMember:
    address: Address
    state: str


@dataclass
class FakeMembershipStats:
    probes: int = 12
    suspicions: int = 2
    gossip_bytes_out: int = 4096
    members_alive: int = 2  # exported as disruptor_members{state="alive"} instead
    dropped_auth: int = 3
    dropped_replay: int = 1


class FakeMembership:
    stats = FakeMembershipStats()

    def members(self) -> list[FakeMember]:
        return [
            FakeMember(Address("127.0.0.1", 1), "alive"),
            FakeMember(Address("127.0.0.1", 2), "alive"),
            FakeMember(Address("127.0.0.1", 3), "dead"),
        ]


@dataclass
class NoStats:
    pass


class BrokenStore:
    stats = NoStats()

    def list(self) -> list[Any]:
        raise RuntimeError("disk on fire")


@dataclass
class FakeSnippetStats:
    items: int = 12


def fake_parts() -> SimpleNamespace:
    """What ``Metrics`` reads of ``disruptor.parts.Parts``; the store is broken on purpose."""
    jobs_stats = FakeJobStats()
    for seconds in (0.002, 0.3, 0.3, 4.0):
        jobs_stats.latency.observe(seconds)
    return SimpleNamespace(
        address=Address("127.0.0.1", 9),
        cluster_name="blue",
        membership=FakeMembership(),
        store=BrokenStore(),
        pool=SimpleNamespace(stats=FakePoolStats()),
        snippets=SimpleNamespace(stats=FakeSnippetStats()),
        jobs=SimpleNamespace(stats=jobs_stats, in_flight=list),
    )


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_kinds_and_names_follow_the_fields() -> None:
    assert metric_kind("restarts", {}) == "counter"
    assert metric_kind("workers_running", {}) == "gauge"
    assert metric_kind("bytes_stored", {}) == "gauge"
    assert metric_kind("gossip_bytes_sent", {}) == "counter"
    assert metric_kind("restarts", {"metric": "gauge"}) == "gauge"
    assert metric_name("membership", "probe_rtt_ms") == (
        "disruptor_membership_probe_rtt_seconds",
        0.001,
    )
    assert metric_name("jobs", "submitted_total") == ("disruptor_jobs_submitted", 1.0)


def test_parts_stats_become_metrics_and_a_broken_part_is_skipped(caplog: Any) -> None:
    text = Metrics(fake_parts()).render()
    got = samples(text)
    assert got[("disruptor_members", (("state", "alive"),))] == 2
    assert got[("disruptor_members", (("state", "dead"),))] == 1
    assert got[("disruptor_members", (("state", "suspect"),))] == 0
    assert got[("disruptor_membership_probes_total", ())] == 12
    assert got[("disruptor_membership_gossip_bytes_out_total", ())] == 4096
    assert got[("disruptor_membership_dropped_total", (("reason", "auth"),))] == 3
    assert got[("disruptor_membership_dropped_total", (("reason", "replay"),))] == 1
    assert not any("members_alive" in name for name, _ in got)
    assert got[("disruptor_jobs_submitted_total", ())] == 7
    assert got[("disruptor_jobs_running", ())] == 1
    assert got[("disruptor_jobs_latency_seconds_count", ())] == 4
    assert got[("disruptor_jobs_latency_seconds_bucket", (("le", "0.5"),))] == 3
    assert got[("disruptor_jobs_latency_seconds_sum", ())] == pytest.approx(4.602)
    assert got[("disruptor_workers_restarts_total", ())] == 2
    assert got[("disruptor_workers_running", ())] == 3
    assert got[("disruptor_workers_cpu_seconds_total", ())] == pytest.approx(1.5)
    assert not any(name.startswith("disruptor_bundles") for name, _ in got)
    info = next(k for k in got if k[0] == "disruptor_peer_info")
    assert ("cluster", "blue") in info[1]
    assert "disk on fire" in caplog.text


def test_each_peer_has_its_own_registry() -> None:
    a, b = fake_parts(), fake_parts()
    b.jobs.stats.submitted = 99
    assert samples(Metrics(a).render())[("disruptor_jobs_submitted_total", ())] == 7
    assert samples(Metrics(b).render())[("disruptor_jobs_submitted_total", ())] == 99


def test_the_chart_reads_job_stats_and_the_running_jobs_progress() -> None:
    # Jobs, items and latency from the coordinator (finished jobs' items plus the running one's
    # progress); items run here from the workers (30) and the snippet hosts (12).
    parts = fake_parts()
    parts.jobs.in_flight = lambda: [{"id": "j", "progress": {"total": 9, "done": 5, "failed": 0}}]
    metrics = Metrics(parts)
    assert dataclasses.astuple(reading(parts, metrics.http)) == (
        6,
        47,
        4,
        pytest.approx(4.602),
        42,
        True,  # a job is running here
    )


@dataclass
class DescribedStats:
    queue_items: int = 4  # described in metric_help.py
    spins: int = field(default=2, metadata={"help": "Spins of the wheel"})  # by the part itself
    wobbles: int = 1  # by nobody yet


def test_help_comes_from_the_part_then_the_table_then_a_marked_fallback() -> None:
    helps = {f.name: f.documentation for f in stats_families("workers", DescribedStats())}
    queue = "Items waiting in the pool's queues for a free worker (items)"
    assert helps == {
        "disruptor_workers_queue_items": queue,
        "disruptor_workers_spins": "Spins of the wheel",
        "disruptor_workers_wobbles": "workers wobbles (undescribed)",
    }


def test_openmetrics_is_served_to_whoever_asks_for_it() -> None:
    metrics = Metrics(fake_parts())
    text, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert {f.name for f in parse(text.decode())} >= {
        "disruptor_jobs_submitted",
        "process_cpu_seconds",
    }
    plain, plain_type = metrics.exposition("")
    assert plain_type.startswith("text/plain; version=0.0.4") and b"# EOF" not in plain
