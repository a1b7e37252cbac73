from __future__ import annotations

import os
from pathlib import Path

import pytest

from disruptor.bundles.manifest import parse_app_manifest
from disruptor.errors import ManifestInvalid, Unprocessable
from disruptor.workers.scratch import (
    ENTRY_BYTES_MIN,
    MIB,
    ScratchQuota,
    directory_meter,
    scratch_bytes,
)
from disruptor.workers.settings import WorkerSettings

BASE = 'name = "s"\nversion = "1"\n[worker]\nhandler = "app:handle"\n'


def manifest(limits: str = "") -> object:
    return parse_app_manifest(BASE + "[limits]\n" + limits)


def test_the_quota_comes_from_the_manifest_or_the_peers_default() -> None:
    settings = WorkerSettings(scratch_mb_default=100, scratch_mb_max=500)
    assert scratch_bytes(manifest(), settings) == 100 * MIB  # type: ignore[arg-type]
    assert scratch_bytes(manifest("scratch_mb = 7"), settings) == 7 * MIB  # type: ignore[arg-type]
    with pytest.raises(Unprocessable, match=r"asks for 501 MiB.*at most 500 MiB"):
        scratch_bytes(manifest("scratch_mb = 501"), settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "-1", "1.5", '"10"', "2000000"])
def test_the_manifest_value_is_checked(value: str) -> None:
    with pytest.raises(ManifestInvalid, match=r"limits\.scratch_mb"):
        manifest(f"scratch_mb = {value}")


def test_full_is_the_quota_or_what_the_file_system_holds() -> None:
    quota = ScratchQuota(10 * MIB)
    assert not quota.full(10 * MIB - 1, 20 * MIB)
    assert quota.full(10 * MIB, 20 * MIB)
    assert quota.full(4 * MIB, 4 * MIB)  # a tmpfs rounded below the quota, and full


def test_the_directory_meter_counts_data_and_entries(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    (scratch / "deep" / "er").mkdir(parents=True)
    (scratch / "deep" / "er" / "data").write_bytes(os.urandom(3 * MIB))
    for i in range(100):
        (scratch / f"empty{i}").touch()  # inodes are disk too: a block each
    meter = directory_meter(scratch, 1 << 40)
    reading = meter()
    assert reading is not None
    used, _ = reading
    assert 3 * MIB + 100 * ENTRY_BYTES_MIN <= used < 4 * MIB + 103 * ENTRY_BYTES_MIN


def test_the_directory_meter_stops_past_the_quota(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for i in range(5000):
        (scratch / f"f{i}").touch()
    reading = directory_meter(scratch, 40 * ENTRY_BYTES_MIN)()
    assert reading is not None and 40 * ENTRY_BYTES_MIN < reading[0] <= 41 * ENTRY_BYTES_MIN


def test_a_directory_the_worker_closed_is_opened_and_counted(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    hidden = scratch / "hidden"
    hidden.mkdir(parents=True)
    (hidden / "data").write_bytes(os.urandom(MIB))
    hidden.chmod(0)
    meter = directory_meter(scratch, 1 << 40)
    meter()  # the first look reopens it (root reads it anyway)
    reading = meter()
    assert reading is not None and reading[0] >= MIB
