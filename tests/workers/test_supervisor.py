"""What a dead worker's lost items are told: its death and its last stderr lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from disruptor.bundles.unpack import load_app_manifest
from disruptor.workers.model import BundleGroup, WorkerSlot
from disruptor.workers.restarts import CrashHistory
from disruptor.workers.session import Death, DeathKind
from disruptor.workers.supervisor import last_words

from .conftest import fake_sha1, write_bundle


@dataclass
class FakeSession:
    death: Death | None = None


@dataclass
class FakeProc:
    session: FakeSession = field(default_factory=FakeSession)
    stderr_tail: list[str] = field(default_factory=list)


def worker_with(tmp_path: Path, proc: FakeProc | None) -> WorkerSlot:
    root = write_bundle(tmp_path, "app", {"app.py": ""})
    group = BundleGroup(fake_sha1("app"), load_app_manifest(root), root, CrashHistory())
    return WorkerSlot(id="w0", group=group, proc=proc)  # type: ignore[arg-type]


def test_a_worker_gone_without_a_word_says_so(tmp_path: Path) -> None:
    assert last_words(worker_with(tmp_path, None)) == "worker died (no stderr output)"


def test_last_words_name_the_death_and_its_last_five_stderr_lines(tmp_path: Path) -> None:
    tail = [f"line {i}" for i in range(8)]
    worker = worker_with(tmp_path, FakeProc(stderr_tail=tail))
    words = last_words(worker, Death(DeathKind.CRASHED, "exited with status 3"))
    assert words == "exited with status 3; its last stderr lines: " + " | ".join(tail[3:])


def test_without_a_death_given_the_sessions_own_is_used(tmp_path: Path) -> None:
    session = FakeSession(Death(DeathKind.PROTOCOL, "spoke out of turn"))
    worker = worker_with(tmp_path, FakeProc(session))
    assert last_words(worker) == "spoke out of turn (no stderr output)"
